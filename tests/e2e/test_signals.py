#!/usr/bin/env python3
"""embedpipe end to end: a reader that goes away early, and SIGTERM/SIGINT
during a run against a slow server."""

import json
import os
import select
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, base_args, check, corpus, eq, jsonl, main, run,  # noqa: E402
                     spawn, split_lines, test, tmpdir, verify)

DIMS = 8


def items(c):
    return list(zip(c.expected_id_text, [e["text"] for e in c.expected]))


@test
def closed_stdout_like_head_1_ends_quietly_with_0_and_a_valid_checkpoint():
    c = corpus(300, seed=6)
    d = tmpdir()
    first = os.path.join(d, "first.jsonl")
    journal = os.path.join(d, "j")
    with Server() as srv:
        # Native 1536 dimensions: megabytes of output, far more than a pipe
        # holds, so writes after head has gone are certain.
        script = '"$0" "$@" < "$CORPUS" | head -1 > "$FIRST"; echo "${PIPESTATUS[0]}"'
        p = spawn(base_args(srv, None, "--checkpoint", journal),
                  command=["bash", "-c", script, "embedpipe"],
                  env={"CORPUS": c.path, "FIRST": first},
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=120)
    # A server of its own for the rerun: requests the first run left in
    # flight may still be logged after it has gone.
    with Server() as srv:
        again = run(base_args(srv, None, "--checkpoint", journal, c.path))
        log = srv.requests()
    eq(out, b"0\n", "embedpipe's exit status in the pipeline (stderr %r)" % err[-500:])
    check(b"error" not in err and b"Broken pipe" not in err, "no error message: %r" % err[-500:])
    with open(first, "rb") as f:
        out = f.read()
    verify(out, items(c)[:1], None, python_check=True)
    # The journal it left opens clean and serves what was saved.
    again.expect_rc(0)
    check("warning" not in again.err_text, "the journal opens clean: %r" % again.err_text[:300])
    eq(again.stats["records"]["embedded"], 300, "every record on the rerun")
    check(again.stats["records"]["from_checkpoint"] >= 1, "what the first run saved is reused")
    eq(len(log), again.stats["requests"]["sent"], "rerun requests")


@test
def closed_stdout_with_errors_file_ends_quietly_with_0():
    c = corpus(150, seed=11, bad=30, long_=2)
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        p = spawn(base_args(srv, None, "--errors", errors, c.path),
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stdout.readline()
        p.stdout.close()
        err = p.stderr.read()
        rc = p.wait(timeout=60)
    eq(rc, 0, "exit status after the reader went away (stderr %r)" % err[-300:])
    check(b"error" not in err, "no error message: %r" % err[-300:])
    verify(line, items(c)[:1], None, python_check=True)


def interrupted_run(sig):
    """A run against a server that answers after 300 ms: the signal comes
    once the first answer is in the log (not after a sleep)."""
    c = corpus(200, seed=5)
    d = tmpdir()
    out_path = os.path.join(d, "out.jsonl")
    err_path = os.path.join(d, "err.txt")
    with Server("--latency-ms", "300") as srv:
        with open(c.path, "rb") as fin, open(out_path, "wb") as fout, open(err_path, "wb") as ferr:
            with spawn(base_args(srv, DIMS, "--batch-inputs", "10", "-j", "2"),
                       stdin=fin, stdout=fout, stderr=ferr) as p:
                srv.wait_for(lambda entries: len(entries) >= 1, what="the first request")
                p.send_signal(sig)
                rc = p.wait(timeout=30)
        log = srv.requests()
    with open(out_path, "rb") as f:
        out = f.read()
    with open(err_path, "rb") as f:
        err = f.read().decode()
    eq(rc, 130, "exit status after %s (stderr %r)" % (sig.name, err[-500:]))
    lines = split_lines(out)
    n = len(lines)
    total = len(c.expected)
    check(10 <= n < total, "%d output lines after %s, want a proper prefix of %d"
          % (n, sig.name, total))
    verify(out, items(c)[:n], DIMS)
    # Requests in flight were finished and their records written; nothing
    # else was sent.
    eq(sorted(set(t for _, t in items(c)[:n])),
       sorted(t for e in log if e["status"] == 200 for t in e["texts"]),
       "texts of the output lines = texts answered by the server")
    check(len(log) <= 4, "%d requests: sending went on after the signal" % len(log))
    check("interrupted" in err, "stderr says interrupted: %r" % err[-300:])


@test
def sigterm_finishes_requests_in_flight_and_exits_130():
    interrupted_run(signal.SIGTERM)


@test
def sigint_finishes_requests_in_flight_and_exits_130():
    interrupted_run(signal.SIGINT)


def answers_after_a_gap(sig):
    """Issue 22, item 3: the second of three batches hangs; the signal comes
    once the server has logged all three requests (a hang is logged as it
    arrives). The third batch's answer, after the gap, is written; the
    unanswered records are listed in --errors."""
    texts = ["record %d: some text" % i for i in range(30)]
    stdin = jsonl(*({"id": i, "text": t} for i, t in enumerate(texts)))
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with open(os.path.join(d, "in.jsonl"), "wb") as f:
        f.write(stdin)
    with Server("--faults", "text:record 12:hang") as srv:
        with spawn(base_args(srv, DIMS, "--batch-inputs", "10", "-j", "3", "--errors", errors,
                             f.name), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
            srv.wait_for(lambda entries: len(entries) >= 3, what="three requests")
            p.send_signal(sig)
            out, err = p.communicate(timeout=30)
        log = srv.requests()
    eq(p.returncode, 130, "exit status (stderr %r)" % err[-500:])
    eq(sorted((e["texts"][0], e["status"]) for e in log),
       [(texts[0], 200), (texts[10], None), (texts[20], 200)], "requests (first text, status)")
    verify(out, [(str(i), t) for i, t in enumerate(texts) if not 10 <= i < 20], DIMS,
           python_check=True)
    reason = "not embedded: the run stopped (interrupted by %s)" % sig.name
    source = json.dumps(f.name)
    with open(errors) as f:
        eq(f.read(), "".join('{"line":%d,"source":%s,"id":%d,"error":"%s"}\n'
                             % (i + 1, source, i, reason) for i in range(10, 20)), "--errors")


@test
def sigint_writes_the_answers_received_after_a_gap():
    answers_after_a_gap(signal.SIGINT)


@test
def sigterm_writes_the_answers_received_after_a_gap():
    answers_after_a_gap(signal.SIGTERM)


@test
def second_signal_ends_at_once():
    c = corpus(200, seed=5)
    # Every request hangs; a hang is logged as soon as it arrives, so the log
    # tells when a request is in flight.
    with Server("--faults", "every:1:hang") as srv:
        with spawn(base_args(srv, DIMS, "-q", c.path), stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE) as p:
            srv.wait_for(lambda entries: len(entries) >= 1, what="a hanging request")
            p.send_signal(signal.SIGTERM)
            # Two signals sent at once may merge into one delivery: send the
            # second once the first has been taken, which /proc shows as
            # SIGTERM leaving the caught set (the handler is SA_RESETHAND) or
            # as the process having ended.
            deadline = time.monotonic() + 10
            while p.poll() is None and _catches(p.pid, signal.SIGTERM):
                check(time.monotonic() < deadline, "the first SIGTERM was never taken")
                time.sleep(0.001)
            start = time.monotonic()
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=30)
            elapsed = time.monotonic() - start
            p.stdout.close()
            p.stderr.close()
    eq(rc, -signal.SIGTERM, "exit by the second SIGTERM")
    check(elapsed < 10, "took %.1f s" % elapsed)


def _catches(pid, sig):
    """True while process pid has a handler for sig (SigCgt in /proc)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for row in f:
                if row.startswith("SigCgt:"):
                    return bool(int(row.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


@test
def one_signal_with_a_hanging_request_gives_up_on_it():
    # The first signal gives the request in flight a short time to finish;
    # this one never will (and --timeout is the default 300 s), so the run
    # must abandon it and end with 130: communicate() would time out if not.
    c = corpus(50, seed=5)
    with Server("--faults", "every:1:hang") as srv:
        with spawn(base_args(srv, DIMS, "-j", "1", c.path), stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE) as p:
            srv.wait_for(lambda entries: len(entries) >= 1, what="a hanging request")
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=30)
        log = srv.requests()
    eq(p.returncode, 130, "exit status (stderr %r)" % err[-300:])
    eq(out, b"", "stdout")
    eq(len(log), 1, "requests: none after the signal")


@test
def trickling_input_is_sent_before_stdin_closes():
    # A producer that writes a few records and keeps stdin open (tail -f):
    # they must be embedded and written without waiting for end of input or
    # a full batch.
    records = [{"id": i, "text": "record %d" % i} for i in range(3)]
    with Server() as srv:
        with spawn(base_args(srv, DIMS, "-q"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE) as p:
            for r in records:
                p.stdin.write((json.dumps(r) + "\n").encode())
            p.stdin.flush()
            out = b""
            deadline = time.monotonic() + 30  # only stops a broken run
            while out.count(b"\n") < len(records):
                left = deadline - time.monotonic()
                check(left > 0, "no output while stdin stayed open: %r" % out)
                ready, _, _ = select.select([p.stdout], [], [], left)
                if ready:
                    chunk = p.stdout.read1(65536)
                    check(chunk, "embedpipe closed stdout early")
                    out += chunk
            check(p.poll() is None, "embedpipe still runs while stdin is open")
            p.stdin.close()
            rest = p.stdout.read()
            rc = p.wait(timeout=30)
    eq(rc, 0, "exit status")
    eq(rest, b"", "nothing more after stdin closed")
    verify(out, [(str(r["id"]), r["text"]) for r in records], DIMS)


if __name__ == "__main__":
    main()
