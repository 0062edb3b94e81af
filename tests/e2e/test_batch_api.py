#!/usr/bin/env python3
"""--batch-api: the requests go through fake_provider's /v1/files and
/v1/batches (a fast clock), the output and errors are those of a normal run,
and an interrupted run resumes its job by the id kept beside the checkpoint,
without uploading again."""

import json
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, base_args, check, corpus, eq, main, run, spawn,  # noqa: E402
                     test, tmpdir, verify)


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


@test
def batch_api_needs_a_checkpoint():
    r = run(["--batch-api"], stdin=b'{"id":1,"text":"a"}\n')
    eq(r.rc, 1, "exit status")
    check("--batch-api needs --checkpoint" in r.err_text, r.err_text)


if __name__ == "__main__":
    main()
