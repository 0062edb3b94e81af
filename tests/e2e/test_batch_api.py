#!/usr/bin/env python3
"""--batch-api: the requests go through fake_provider's /v1/files and
/v1/batches (a fast clock), the output and errors are those of a normal run,
and an interrupted run resumes its job by the id kept beside the checkpoint,
without uploading again."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (KEY, MODEL, Server, base_args, check, corpus, eq, jsonl, main,  # noqa: E402
                     run, spawn, test, tmpdir, verify)


def calls(entries, what):
    return [e for e in entries if e.get("batch_api") == what]


def good_items(c):
    """What a run over corpus `c` (without bad lines) writes."""
    return [(i, e["text"]) for i, e in zip(c.expected_id_text, c.expected)]


@test
def batch_mode_writes_what_a_normal_run_writes():
    c = corpus(1500, seed=41, bad=30)
    d = tmpdir()
    ckpt = os.path.join(d, "ckpt")
    with Server("--shuffle") as srv:
        normal = run(base_args(srv, 64, "--batch-inputs", "100", "--errors",
                               os.path.join(d, "normal.err"), c.path))
    with Server("--shuffle", "--batch-delay-ms", "50") as srv:
        batch = run(base_args(srv, 64, "--batch-inputs", "100", "--batch-api", "--checkpoint",
                              ckpt, "--errors", os.path.join(d, "batch.err"), c.path))
        log = srv.stop()
    normal.expect_rc(2)  # the bad lines
    batch.expect_rc(2)
    eq(batch.out, normal.out, "output of the batch run")
    eq(batch.errors_text, normal.errors_text, "errors of the batch run")
    eq(len(calls(log, "upload")), 1, "uploads")
    eq(len(calls(log, "create")), 1, "jobs created")
    # (A normal run may cut its last batches into shares for its slots,
    # sending a few more requests than it formed batches.)
    eq(calls(log, "create")[0]["requests"], normal.stats["requests"]["batches"],
       "requests in the file (as many as a normal run forms batches)")
    check(not any("texts" in e for e in log), "nothing went to /v1/embeddings")
    check(not os.path.exists(ckpt + ".batch"), "job ids dropped after a complete run")
    eq(batch.stats["cost"]["usd_per_million_tokens"],
       normal.stats["cost"]["usd_per_million_tokens"] / 2, "Batch API price")
    check("(Batch API: half the list price)" in batch.err_text, batch.err_text[-600:])
    requests = calls(log, "create")[0]["requests"]
    check("1 batch job (1 completed), {0:,} of {0:,} requests completed, 0 failed".format(
        requests) in batch.err_text, batch.err_text[-600:])
    eq((batch.stats["cost"]["batch_api"], normal.stats["cost"]["batch_api"]), (True, False),
       "cost.batch_api in --stats")
    # A rerun answers everything from the checkpoint and uploads nothing.
    with Server("--batch-delay-ms", "50") as srv:
        again = run(base_args(srv, 64, "--batch-inputs", "100", "--batch-api", "--checkpoint",
                              ckpt, c.path))
        log = srv.stop()
    again.expect_rc(2)
    eq(again.out, normal.out, "output of the rerun")
    eq(log, [], "calls made by the rerun")


@test
def an_interrupted_poll_resumes_without_a_second_upload():
    c = corpus(800, seed=42)
    d = tmpdir()
    ckpt = os.path.join(d, "ckpt")
    args = ["--batch-api", "--checkpoint", ckpt, "--batch-inputs", "64", c.path]
    with Server("--shuffle", "--batch-delay-ms", "1500") as srv:
        p = spawn(base_args(srv, 32, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        srv.wait_for(lambda es: calls(es, "retrieve"), what="a first poll")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        eq(p.returncode, 130, "exit status after SIGINT: " + err.decode()[-500:])
        eq(out, b"", "output of the interrupted run")
        check(b"goes on at the server" in err, err.decode()[-500:])
        with open(ckpt + ".batch") as f:
            stored = [json.loads(l) for l in f]
        eq(len(stored), 1, "jobs kept")
        eq(stored[0]["batch_id"], calls(srv.entries, "create")[0]["batch_id"], "job id kept")
        eq(os.stat(ckpt + ".batch").st_mode & 0o777, 0o600, "mode of the job-id sidecar")
        resumed = run(base_args(srv, 32, *args))
        log = srv.stop()
    resumed.expect_rc(0)
    check("resuming batch job batch_fake000001" in resumed.err_text, resumed.err_text[-600:])
    verify(resumed.out, good_items(c), 32)
    eq(len(calls(log, "upload")), 1, "uploads over both runs")
    eq(len(calls(log, "create")), 1, "jobs created over both runs")
    check(not os.path.exists(ckpt + ".batch"), "job ids dropped once collected")


@test
def failed_requests_are_rejected_and_a_rerun_sends_only_them():
    c = corpus(600, seed=43)
    d = tmpdir()
    ckpt = os.path.join(d, "ckpt")
    args = ["--batch-api", "--checkpoint", ckpt, "--batch-inputs", "50", c.path]
    with Server("--batch-delay-ms", "20", "--batch-fail-every", "4") as srv:
        first = run(base_args(srv, 16, "--errors", os.path.join(d, "err"), *args))
        first_log = srv.stop()
    first.expect_rc(2)
    requests = calls(first_log, "create")[0]["requests"]
    failed = requests // 4
    check(failed >= 2, "some requests failed: %d of %d" % (failed, requests))
    reasons = {e["error"] for _, e in first.errors()}
    eq(reasons, {"fake_provider failed this request on purpose"}, "rejection reasons")
    eq(len(first.lines) + len(first.errors()), 600, "every record written or rejected")
    with Server("--batch-delay-ms", "20") as srv:
        second = run(base_args(srv, 16, *args))
        log = srv.stop()
    second.expect_rc(0)
    eq(calls(log, "create")[0]["requests"], failed, "requests in the rerun's file")
    verify(second.out, good_items(c), 16)


def lines_as_read(data):
    """`data`'s lines as embedpipe reads them, each ended by a newline: no
    byte order mark, no CR before a newline."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return b"".join((l[:-1] if l.endswith(b"\r") else l) + b"\n" for l in lines)


def batch_run_on_stdin(srv, c, d, stdin, while_polling):
    """A --batch-api run over corpus `c` given on `stdin`; `while_polling()`
    is called once the job was first polled. Returns (out, errors, rc)."""
    p = spawn(base_args(srv, 32, "--batch-inputs", "100", "--batch-api", "--checkpoint",
                        os.path.join(d, "ckpt"), "--errors", os.path.join(d, "batch.err")),
              stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdin.close()
    srv.wait_for(lambda es: calls(es, "retrieve"), what="a first poll")
    while_polling()
    out, err = p.communicate(timeout=60)
    with open(os.path.join(d, "batch.err"), "rb") as f:
        errors = f.read()
    return out, errors, p.returncode, err


def normal_run(c, d):
    """A run without --batch-api over corpus `c` on stdin."""
    with Server("--shuffle") as srv:
        r = run(base_args(srv, 32, "--batch-inputs", "100", "--errors",
                          os.path.join(d, "normal.err")), stdin=c.data)
    r.expect_rc(2)
    return r


@test
def a_piped_input_is_spilled_beside_the_checkpoint_and_read_again():
    # The output is written after the jobs end, from a second reading of
    # the input: a pipe's lines wait in a spill file meanwhile, not in
    # memory. Bad lines and split over-long texts go through both passes.
    c = corpus(1200, seed=44, bad=20, long_=3)
    d = tmpdir()
    normal = normal_run(c, d)
    spill = os.path.join(d, "ckpt.batch.input-0")

    def spilled():
        with open(spill, "rb") as f:
            eq(f.read(), lines_as_read(c.data), "the spill: the input's lines")
        eq(os.stat(spill).st_mode & 0o777, 0o600, "mode of the spill")

    with Server("--shuffle", "--batch-delay-ms", "1500") as srv:
        cat = subprocess.Popen(["cat", c.path], stdout=subprocess.PIPE)
        out, errors, rc, err = batch_run_on_stdin(srv, c, d, cat.stdout, spilled)
        cat.wait()
        log = srv.stop()
    eq(rc, 2, "exit status: " + err.decode()[-600:])
    eq(out, normal.out, "output of the batch run on a pipe")
    eq(errors.decode(), normal.errors_text, "errors of the batch run on a pipe")
    eq((len(calls(log, "upload")), len(calls(log, "create"))), (1, 1), "uploads and jobs")
    eq(sorted(os.listdir(d)), ["batch.err", "ckpt", "normal.err"],
       "files beside the checkpoint after the run")


@test
def a_regular_file_on_stdin_is_read_again_without_a_spill():
    c = corpus(1200, seed=44, bad=20, long_=3)
    d = tmpdir()
    normal = normal_run(c, d)

    def not_spilled():
        check(not os.path.exists(os.path.join(d, "ckpt.batch.input-0")), "no spill")

    with Server("--shuffle", "--batch-delay-ms", "1500") as srv:
        out, errors, rc, err = batch_run_on_stdin(srv, c, d, open(c.path, "rb"),
                                                  not_spilled)
    eq(rc, 2, "exit status: " + err.decode()[-600:])
    eq(out, normal.out, "output of the batch run on a redirected file")
    eq(errors.decode(), normal.errors_text, "errors of the batch run on a redirected file")


def small_corpus(n=20):
    """n records of distinct texts: with --batch-inputs 1, request k of the
    job's file is record k."""
    d = tmpdir()
    path = os.path.join(d, "in.jsonl")
    with open(path, "wb") as f:
        f.write(jsonl(*({"id": i, "text": "section %d on the subject of %d" % (i, i * 37)}
                        for i in range(1, n + 1))))
    return path


def normal_file_run(srv_args, path):
    """A run without --batch-api over the file `path`, which succeeded."""
    with Server(*srv_args) as srv:
        r = run(base_args(srv, 8, "--batch-inputs", "1", path))
    r.expect_rc(0)
    return r


def normal_lines(srv_args, path):
    """The output of a run without --batch-api, line by line."""
    return normal_file_run(srv_args, path).lines


def error_line(path, n, reason, field=None):
    """The --errors line of record n of small_corpus (its line n)."""
    e = {"line": n, "source": path, "id": n}
    if field:
        e["field"] = field
    e["error"] = reason
    return json.dumps(e, separators=(",", ":"))


def batch_args(srv, path, d, *more):
    return base_args(srv, 8, "--batch-inputs", "1", "--batch-api", "--checkpoint",
                     os.path.join(d, "ckpt"), "--errors", os.path.join(d, "err"), *more, path)


def batch_run(srv, path, d, *more):
    return run(batch_args(srv, path, d, *more))


EXPIRED = "This request could not be executed before the completion window expired."
CANCELLED = "This request was not executed because the batch was cancelled."


def check_partial_end(end, reason, summary):
    """A job that ends `end` with the first half of its requests answered:
    those are written, the rest rejected; a rerun sends only the rest."""
    path = small_corpus(20)
    normal = normal_lines([], path)
    d = tmpdir()
    with Server("--batch-delay-ms", "20", "--batch-end", end) as srv:
        first = batch_run(srv, path, d)
        log = srv.stop()
    first.expect_rc(2)
    eq(first.lines, normal[:10], "output: the requests the job finished")
    eq([l for l, _ in first.errors()],
       [error_line(path, n, reason) for n in range(11, 21)], "--errors")
    check(summary in first.err_text, first.err_text[-800:])
    check("the same command with the same --checkpoint sends only those" in first.err_text,
          first.err_text[-800:])
    eq(calls(log, "retrieve")[-1]["status"], end, "the job's last status")
    check(not os.path.exists(os.path.join(d, "ckpt.batch")), "job ids dropped")
    # Nothing lost: the rerun sends the other half only, and writes all.
    with Server("--batch-delay-ms", "20") as srv:
        second = batch_run(srv, path, d)
        log = srv.stop()
    second.expect_rc(0)
    eq(second.lines, normal, "output of the rerun")
    eq([c["requests"] for c in calls(log, "create")], [10], "requests in the rerun's job")
    return first


@test
def an_expired_job_keeps_what_it_finished_and_rejects_the_rest():
    check_partial_end("expired", EXPIRED,
                      "1 batch job (1 expired), 10 of 20 requests completed, 0 failed")


@test
def a_job_cancelled_elsewhere_keeps_what_it_finished_and_rejects_the_rest():
    first = check_partial_end(
        "cancelled", CANCELLED,
        "1 batch job (1 cancelled), 10 of 20 requests completed, 0 failed")
    check("batch_fake000001: cancelling" in first.err_text, first.err_text[-800:])
    check("was cancelled (not by embedpipe)" in first.err_text, first.err_text[-800:])


@test
def a_job_that_fails_validation_rejects_every_record_with_its_errors():
    path = small_corpus(6)
    d = tmpdir()
    with Server("--batch-delay-ms", "20", "--batch-end", "failed") as srv:
        r = batch_run(srv, path, d)
    r.expect_rc(2)
    eq(r.out, b"", "output")
    why = "fake_provider failed this batch's validation on purpose"
    eq([l for l, _ in r.errors()],
       [error_line(path, n, "batch batch_fake000001 ended failed without an answer: " + why)
        for n in range(1, 7)], "--errors")
    check("batch batch_fake000001 failed: %s: its 6 requests are rejected" % why in r.err_text,
          r.err_text[-800:])
    check("1 batch job (1 failed), 0 of 0 requests completed, 0 failed" in r.err_text,
          r.err_text[-800:])


@test
def result_lines_with_an_error_or_a_refusal_go_to_errors_the_rest_is_written():
    path = small_corpus(20)
    normal = normal_lines([], path)
    d = tmpdir()
    # Request n: n % 4 == 0 an error line (no response), else n % 3 == 0
    # a 400 response; both in the error file.
    with Server("--batch-delay-ms", "20", "--batch-error-every", "4",
                "--batch-fail-every", "3") as srv:
        r = batch_run(srv, path, d)
    r.expect_rc(2)
    timeout = "The underlying call to the model timed out."
    refused = "fake_provider failed this request on purpose"
    want_errors, want_out = [], []
    for n in range(1, 21):
        if n % 4 == 0:
            want_errors.append(error_line(path, n, timeout))
        elif n % 3 == 0:
            want_errors.append(error_line(path, n, refused, field="text"))
        else:
            want_out.append(normal[n - 1])
    eq(r.lines, want_out, "output")
    eq([l for l, _ in r.errors()], want_errors, "--errors")
    check("1 batch job (1 completed), 10 of 20 requests completed, 10 failed" in r.err_text,
          r.err_text[-800:])


@test
def progress_log_lines_give_the_jobs_states_and_counts():
    path = small_corpus(20)
    d = tmpdir()
    with Server("--batch-delay-ms", "1500") as srv:
        r = batch_run(srv, path, d, "--progress", "log", "--progress-interval", "0.2")
    r.expect_rc(0)
    progress = [l for l in r.err_text.splitlines() if l.startswith("embedpipe: [")]
    check(any(l.endswith("; 1 batch job (1 validating), 0 of 0 requests completed, 0 failed")
              for l in progress), "\n".join(progress))
    check(any("; 1 batch job (1 in_progress), " in l for l in progress), "\n".join(progress))
    check("1 batch job (1 completed), 20 of 20 requests completed, 0 failed" in r.err_text,
          r.err_text[-800:])


QUEUE_FULL = "token_limit_exceeded"


def jobs_by_file(log):
    """Each input file's job creations, in order: [(refused?, requests)]."""
    jobs = {}
    for c in calls(log, "create"):
        jobs.setdefault(c["input_file_id"], []).append((c.get("error") == QUEUE_FULL,
                                                        c["requests"]))
    return jobs


def check_queue_run(r, normal, log, d, others=()):
    """A run that met the batch queue limit wrote what a normal run writes,
    each file uploaded once, and each file's jobs are refused ones then one
    live one, but for a file that was split: refused ones only. Returns
    jobs_by_file of the run's files (not `others`, files of other clients)."""
    r.expect_rc(0)
    eq(r.lines, normal, "output")
    eq(r.errors(), [], "--errors")
    check(not any("texts" in e for e in log), "nothing went to /v1/embeddings")
    uploads = [u["file_id"] for u in calls(log, "upload") if u["file_id"] not in others]
    eq(len(set(uploads)), len(uploads), "each file uploaded once")
    jobs = {f: js for f, js in jobs_by_file(log).items() if f not in others}
    split = [f for f in uploads if "split" in r.err_text and ("%s holds" % f) in r.err_text]
    for file_id in uploads:
        refused = [q for q, _ in jobs.get(file_id, [])]
        check(refused and all(refused[:-1]) and (refused[-1] == (file_id in split)),
              "%s: refused jobs, then one live one unless split: %s" % (file_id, refused))
    eq(sum(n for js in jobs.values() for q, n in js if not q), len(normal),
       "requests in live jobs (each once)")
    eq(sorted(os.listdir(d)), ["ckpt", "err"], "files beside the checkpoint after the run")
    return jobs


@test
def a_file_over_the_batch_queue_limit_is_split_and_its_parts_run_in_turn():
    # One file of 20 requests holds 3 times the queue limit: its job is
    # refused, the message tells the limit, and the file is split into files
    # within it, whose jobs run one after the other.
    path = small_corpus(20)
    normal = normal_file_run([], path)
    limit = normal.stats["tokens"]["sent"] // 3 + 1
    d = tmpdir()
    with Server("--batch-delay-ms", "20", "--batch-queue-tokens", str(limit)) as srv:
        r = batch_run(srv, path, d)
        log = srv.stop()
    first = calls(log, "create")[0]
    eq((first.get("error"), first["requests"]), (QUEUE_FULL, 20), "the first job")
    jobs = check_queue_run(r, normal.lines, log, d)
    eq([q for q, _ in jobs[first["input_file_id"]]], [True], "the split file's jobs")
    parts = [c for c in calls(log, "create") if c["input_file_id"] != first["input_file_id"]]
    check(len(parts) >= 3, "files after the split: %d" % len(parts))
    check(all(c["tokens"] <= limit for c in parts), "each part within the limit")
    eq([c["enqueued"] for c in parts], [0] * len(parts),
       "a part's job created only once the one before it ended")
    check("holds %s tokens, more than the batch queue's %s: split into %d files"
          % (format(first["tokens"], ","), format(limit, ","), len(parts)) in r.err_text,
          r.err_text[-800:])


@test
def one_request_over_the_batch_queue_limit_is_rejected_and_said_so():
    # All six records in one request, over the queue limit alone: it cannot
    # be split, so its records are rejected, and the refusal says that.
    path = small_corpus(6)
    d = tmpdir()
    with Server("--batch-delay-ms", "20", "--batch-queue-tokens", "5") as srv:
        r = run(base_args(srv, 8, "--batch-inputs", "100", "--batch-api", "--checkpoint",
                          os.path.join(d, "ckpt"), "--errors", os.path.join(d, "err"), path))
        log = srv.stop()
    r.expect_rc(2)
    eq(len(r.errors()), 6, "records rejected")
    eq([c.get("error") for c in calls(log, "create")], [QUEUE_FULL], "one job, refused")
    refusals = [l for l in r.err_text.splitlines() if "refused, the batch queue is full" in l]
    eq(len(refusals), 1, r.err_text[-800:])
    check(refusals[0].endswith("; its file is one request over the limit: it is rejected"),
          refusals[0])


def occupy_queue(srv, texts):
    """Creates a job of one request of `texts`, as another client of the
    same organization would."""
    def call(method, path, body, content_type):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        conn.request(method, "/v1" + path, body=body,
                     headers={"Authorization": "Bearer " + KEY, "Content-Type": content_type})
        resp = conn.getresponse()
        answer = (resp.status, json.loads(resp.read()))
        conn.close()
        eq(answer[0], 200, "answer to %s %s: %s" % (method, path, answer[1]))
        return answer[1]
    line = json.dumps({"custom_id": "other", "method": "POST", "url": "/v1/embeddings",
                       "body": {"model": MODEL, "input": texts}})
    body = ('--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            '--b\r\nContent-Disposition: form-data; name="file"; filename="other.jsonl"'
            '\r\n\r\n' + line + '\n\r\n--b--\r\n')
    file_id = call("POST", "/files", body, "multipart/form-data; boundary=b")["id"]
    call("POST", "/batches", json.dumps({"input_file_id": file_id, "endpoint": "/v1/embeddings",
                                         "completion_window": "24h"}), "application/json")
    return file_id


@test
def a_queue_full_of_other_jobs_is_waited_for_with_backoff():
    # Another client's job holds the queue, the jobs' clock stopped until
    # ours was refused, however slow the machine; ours is created again for
    # the same file once that one has ended.
    path = small_corpus(6)
    normal = normal_file_run([], path)
    tokens = normal.stats["tokens"]["sent"]
    d = tmpdir()
    with Server("--batch-delay-ms", "200", "--batch-queue-tokens", str(tokens + 5)) as srv:
        srv.control("stop-clock")
        other = occupy_queue(srv, ["hello"] * 10)
        with spawn(batch_args(srv, path, d), stats=True, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE) as p:
            srv.wait_for(lambda es: any(c.get("error") == QUEUE_FULL for c in calls(es, "create")
                                        if c["input_file_id"] != other),
                         what="our job refused")
            srv.control("start-clock")
            out, err = p.communicate(timeout=90)
        p.search()
        r = p.result(out, err)
        log = srv.stop()
    jobs = check_queue_run(r, normal.lines, log, d, others=[other])
    ours = list(jobs.values())
    eq(len(ours), 1, "our files")
    refusals = sum(q for q, _ in ours[0])
    check(refusals >= 1, "our job was refused: %s" % ours[0])
    waits = [l for l in r.err_text.splitlines() if "refused, the batch queue is full" in l]
    eq(len(waits), refusals, "one line per wait: " + "\n".join(waits))
    check(all("(the queue holds other jobs)" in l for l in waits), "\n".join(waits))
    check("Limit: %s enqueued tokens" % format(tokens + 5, ",") in waits[0], waits[0])
    # How many waits there are depends on timing; each is longer than the
    # one before.
    seconds = [float(re.search(r" again in ([0-9.]+) s ", l).group(1)) for l in waits]
    check(all(a < b for a, b in zip(seconds, seconds[1:])), "waits grow: %s" % seconds)


@test
def batch_api_needs_a_checkpoint():
    r = run(["--batch-api"], stdin=b'{"id":1,"text":"a"}\n')
    eq(r.rc, 1, "exit status")
    check("--batch-api needs --checkpoint" in r.err_text, r.err_text)


if __name__ == "__main__":
    main()
