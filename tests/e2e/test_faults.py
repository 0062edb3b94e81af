#!/usr/bin/env python3
"""embedpipe end to end against a misbehaving server: every retried fault,
timeouts, fatal errors (quota, 401, 404), and a 400 isolated by bisection."""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (KEY, Server, base_args, check, eq, jsonl, main, no_key_leak,  # noqa: E402
                     run, test, tmpdir, verify)

DIMS = 8
TEXTS = ["record %d: %s" % (i, t) for i, t in enumerate(
    ["plain English", "caf\u00e9 cr\u00e8me", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
     "\u0645\u0631\u062d\u0628\u0627", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35", "emoji \U0001F680",
     "\u041f\u0440\u0438\u0432\u0435\u0442", "tab\there", "x" * 300, "last one"] * 3)]
STDIN = jsonl(*({"id": "r%02d" % i, "text": t} for i, t in enumerate(TEXTS)))
ITEMS = [('"r%02d"' % i, t) for i, t in enumerate(TEXTS)]


def by_n(log):
    return sorted(log, key=lambda e: e["n"])


def retried_fault(kind, status, encoding="base64", nth=2, extra=(), server_extra=()):
    """Request `nth` of 3 batches (10 records each, -j 1) gets `kind`; the run
    must still embed everything, and the log must show exactly one retry of
    that batch."""
    with Server("--faults", "%d:%s" % (nth, kind), *server_extra) as srv:
        r = run(base_args(srv, DIMS, "--batch-inputs", "10", "-j", "1", "--encoding", encoding,
                          *extra), stdin=STDIN)
        log = by_n(srv.requests())
    r.expect_rc(0)
    verify(r.out, ITEMS, DIMS, python_check=True)
    eq([(e["n"], e["fault"], e["status"]) for e in log],
       [(n, kind if n == nth else None, status if n == nth else 200) for n in range(1, 5)],
       "requests (n, fault, status)")
    # The failed batch is sent again (other batches may go first meanwhile).
    faulted = log[nth - 1]["texts"]
    eq(len(faulted), 10, "inputs of the faulted request")
    eq([e["n"] for e in log if e["texts"] == faulted], [nth, max(e["n"] for e in log
                                                                 if e["texts"] == faulted)],
       "requests with the faulted batch")
    eq(sorted(t for e in log if e["n"] != nth for t in e["texts"]), sorted(TEXTS),
       "texts of the good requests: each once")
    eq(r.summary()[:5], (30, 0, 4, 1, 1 if kind == "429" else 0), "summary numbers")
    return r


def _fault_test(kind, status, encoding="base64"):
    def f():
        retried_fault(kind, status, encoding)
    f.__name__ = "retried_%s%s" % (kind, "" if encoding == "base64" else "_" + encoding)
    return test(f)


for _kind, _status in (("429", 429), ("500", 500), ("502", 502), ("503", 503), ("reset", 200),
                       ("truncate", 200), ("badjson", 200), ("wrongcount", 200),
                       ("dupindex", 200), ("wrongdims", 200), ("nan", 200)):
    _fault_test(_kind, _status)
for _kind in ("badjson", "wrongcount", "dupindex", "wrongdims", "nan", "truncate"):
    _fault_test(_kind, 200, "float")


@test
def hang_is_timed_out_and_retried():
    r = retried_fault("hang", None, nth=1, extra=("--timeout", "1"))
    check("retrying" in r.err_text, "a warning says the request is retried: %r" % r.err_text)


@test
def retries_run_out_and_records_are_rejected():
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server("--faults", "every:1:503") as srv:
        r = run(base_args(srv, DIMS, "--max-attempts", "3", "-j", "1", "--errors", errors),
                stdin=STDIN[:STDIN.index(b"\n", STDIN.index(b"\n") + 1) + 1])
        log = by_n(srv.requests())
    r.expect_rc(2)
    eq([(e["inputs"], e["status"]) for e in log], [(2, 503)] * 3, "requests")
    eq(r.out, b"", "stdout")
    errs = [o for _, o in r.errors()]
    eq([(o["line"], o["id"]) for o in errs], [(1, "r00"), (2, "r01")], "rejected records")
    for o in errs:
        check(o["error"].startswith("gave up after 3 attempts: HTTP 503"), "reason %r" % o["error"])


@test
def quota_stops_the_run_with_exit_3():
    with Server("--faults", "2:quota") as srv:
        r = run(base_args(srv, DIMS, "--batch-inputs", "10", "-j", "1"), stdin=STDIN)
        log = by_n(srv.requests())
    r.expect_rc(3)
    eq([(e["n"], e["status"], e["fault"]) for e in log], [(1, 200, None), (2, 429, "quota")],
       "requests: none after the quota error")
    check("quota" in r.err_text, "message mentions the quota: %r" % r.err_text)
    # What was received before is written.
    verify(r.out, ITEMS[:10], DIMS, python_check=True)


@test
def quota_with_requests_in_flight_writes_an_in_order_prefix():
    with Server("--faults", "3:quota", "--latency-ms", "30") as srv:
        r = run(base_args(srv, DIMS, "--batch-inputs", "2", "-j", "4"), stdin=STDIN)
        log = srv.requests()
    r.expect_rc(3)
    n_out = len(r.lines)
    check(n_out < 30, "not everything can have been embedded (%d lines)" % n_out)
    verify(r.out, ITEMS[:n_out], DIMS, python_check=True)
    check(len(log) < 15, "requests went on after the quota error: %d" % len(log))


@test
def wrong_key_401_exits_3_and_names_the_variable():
    with Server("--require-key", "sk-the-right-one-0000") as srv:
        r = run(base_args(srv, DIMS, "--batch-inputs", "10", "-j", "1"), stdin=STDIN)
        log = srv.requests()
    r.expect_rc(3)
    eq([(e["status"], e["auth"]) for e in log], [(401, "present")], "requests")
    check("OPENAI_API_KEY" in r.err_text, "message names OPENAI_API_KEY: %r" % r.err_text)
    eq(r.out, b"", "stdout")
    with Server("--require-key", "sk-the-right-one-0000") as srv:
        r = run(base_args(srv, DIMS, "--api-key-env", "EMBED_KEY"), stdin=STDIN, key=None,
                env={"EMBED_KEY": KEY})
    r.expect_rc(3)
    check("EMBED_KEY" in r.err_text, "message names EMBED_KEY: %r" % r.err_text)
    no_key_leak(r.out, r.err)


@test
def unknown_model_404_exits_3():
    with Server() as srv:
        r = run(base_args(srv, DIMS, "-m", "no-such-model", "-j", "1", "--batch-inputs", "10"),
                stdin=STDIN)
        log = srv.requests()
    r.expect_rc(3)
    eq([e["status"] for e in log], [404], "requests")
    check("no-such-model" in r.err_text, "message names the model: %r" % r.err_text)


@test
def a_400_on_one_record_is_isolated_by_bisection():
    poison = "a" + " a" * 9000  # 9001 tokens: over the server's 8192
    texts = TEXTS[:4] + [poison] + TEXTS[4:8]
    stdin = jsonl(*({"id": "poison" if i == 4 else i, "text": t} for i, t in enumerate(texts)))
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--max-input-tokens", "100000", "--errors", errors),
                stdin=stdin)
        log = srv.requests()
    r.expect_rc(2)
    verify(r.out, [(str(i), t) for i, t in enumerate(texts) if i != 4], DIMS, python_check=True)
    errs = [o for _, o in r.errors()]
    eq(len(errs), 1, "rejected records")
    o = errs[0]
    eq((o["line"], o["source"], o["id"], o["field"]), (5, "-", "poison", "text"),
       "rejected record")
    check("maximum context length is 8192 tokens" in o["error"] and "400" in o["error"],
          "reason passes on the API's: %r" % o["error"])
    ok = sorted(t for e in log if e["status"] == 200 for t in e["texts"])
    eq(ok, sorted(t for i, t in enumerate(texts) if i != 4), "texts embedded, each once")
    eq([e["inputs"] for e in log if e["status"] == 400 and e["inputs"] == 1], [1],
       "the poisoned record alone, sent once")
    check(all(poison in e["texts"] for e in log if e["status"] == 400),
          "every 400 was for a batch with the poisoned record")


if __name__ == "__main__":
    main()
