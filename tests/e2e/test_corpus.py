#!/usr/bin/env python3
"""embedpipe end to end on generated corpora: every bad-line kind, the
errors file and stderr messages, and the request limits seen by the server."""

import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SUMMARY_RE, Server, base_args, check, corpus, eq, gencorpus, jsonl, main,  # noqa: E402
                     run, test, tmpdir, check_sent, verify)

DIMS = 16
TOKENS_RE = re.compile(r"text has (\d+) tokens, over --max-input-tokens 8191 \(--overlong skip\)")


def bad_corpus():
    c = corpus(150, seed=11, bad=30, long_=2)
    kinds = {e["kind"] for e in c.manifest}
    missing = (set(gencorpus.BAD_KINDS) | {"invalid_utf8", "too_long", "blank"}) - kinds
    eq(sorted(missing), [], "bad kinds missing from the generated corpus")
    return c


def good_lines(c):
    """For each expected.jsonl entry, its corpus line (bytes, no ending)."""
    bad = {e["line"] for e in c.manifest if e["bad"] or e["mode"] == "never"}
    out = []
    for n, line in enumerate(c.data.split(b"\n")[:-1], 1):
        if n not in bad:
            out.append(line[:-1] if line.endswith(b"\r") else line)
    eq(len(out), len(c.expected), "good lines in the corpus")
    return out


def expected_error(e, source):
    want = {"line": e["line"], "source": source}
    if "id" in e:
        want["id"] = e["id"]
    if "field" in e:
        want["field"] = e["field"]
    return want


def check_corpus_run(c, r, source="-", reject=False, carry=False):
    """Checks one run over c: every error line exactly as the manifest says,
    in input order; the output verified against expected.jsonl less the
    lines rejected. Returns the expected indexes that were rejected."""
    got = [o for _, o in r.errors()]
    lines = [o["line"] for o in got]
    eq(lines, sorted(set(lines)), "error line numbers in input order, once each")
    got_by_line = {o["line"]: o for o in got}
    manifest = {e["line"]: e for e in c.manifest}
    for n in got_by_line:
        check(n in manifest, "line %d rejected but it is good: %r" % (n, got_by_line[n]))
    dropped = set()
    for e in c.manifest:
        g = got_by_line.get(e["line"])
        mode = e["mode"]
        if mode == "never" or (mode == "reject" and not reject):
            check(g is None, "line %d (%s) rejected: %r" % (e["line"], e["kind"], g))
            continue
        if mode == "maybe" and g is None:
            continue
        check(g is not None, "line %d (%s) not rejected; want %r" % (e["line"], e["kind"], e))
        want = expected_error(e, source)
        if "error" in e:
            want["error"] = e["error"]
            eq(list(g.items()), list(want.items()), "error line for line %d (%s)" % (
                e["line"], e["kind"]))
        else:
            eq(list(g.keys()), list(want.keys()) + ["error"], "error line keys for line %d" % e["line"])
            eq({k: g[k] for k in want}, want, "error line for line %d (%s)" % (e["line"], e["kind"]))
            m = re.fullmatch(e["error_re"], g["error"])
            check(m, "line %d (%s): error %r does not match %r" % (
                e["line"], e["kind"], g["error"], e["error_re"]))
            tokens = int(m.group(1).replace(",", ""))
            check(8191 < tokens <= e["bytes"], "line %d: %d tokens for %d bytes" % (
                e["line"], tokens, e["bytes"]))
            if "min_tokens" in e:
                check(tokens >= e["min_tokens"], "line %d: %d tokens, at least %d digit pieces"
                      % (e["line"], tokens, e["min_tokens"]))
        if "expected_index" in e:
            dropped.add(e["expected_index"])
    carries = None
    items = [(c.expected_id_text[i], c.expected[i]["text"]) for i in range(len(c.expected))
             if i not in dropped]
    if carry:
        carries = []
        for i, line in enumerate(good_lines(c)):
            if i in dropped:
                continue
            obj = json.loads(line.decode("utf-8", "replace"))
            meta = obj.get("meta")
            carries.append('"meta.title":%s' % json.dumps(meta["title"], ensure_ascii=False)
                           if isinstance(meta, dict) and "title" in meta else "")
    verify(r.out, items, DIMS, carries=carries)
    eq(r.summary()[:2], (len(items), len(got)), "summary counts")
    return dropped


@test
def every_bad_line_kind_is_reported_exactly():
    c = bad_corpus()
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--overlong", "skip", "--errors", errors, "--batch-inputs", "40",
                          "--carry", "meta.title"), stdin=c.data)
        log = srv.requests()
    r.expect_rc(2)
    dropped = check_corpus_run(c, r, carry=True)
    # The server got the good texts, none more often than it occurs.
    sent = [t for e in sorted(log, key=lambda e: e["n"]) for t in e["texts"]]
    want = [c.expected[i]["text"] for i in range(len(c.expected)) if i not in dropped]
    check_sent(sent, want, "good texts sent")
    check(all(e["max_input_tokens"] <= 8191 for e in log), "an input over 8191 tokens was sent")


@test
def bad_lines_from_a_named_file():
    c = bad_corpus()
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--overlong", "skip", "--errors", errors, "-j", "3", c.path))
    r.expect_rc(2)
    check_corpus_run(c, r, source=c.path)


@test
def invalid_utf8_reject_mode():
    c = bad_corpus()
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--overlong", "skip", "--errors", errors, "--invalid-utf8", "reject"),
                stdin=c.data)
    r.expect_rc(2)
    dropped = check_corpus_run(c, r, reject=True)
    n_invalid = sum(1 for e in c.manifest if e["kind"] == "invalid_utf8")
    check(n_invalid >= 1 and len(dropped) >= n_invalid, "invalid UTF-8 lines were dropped")


@test
def without_errors_file_20_messages_on_stderr():
    c = bad_corpus()
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        ref = run(base_args(srv, DIMS, "--overlong", "skip", "--errors", errors), stdin=c.data)
        r = run(base_args(srv, DIMS, "--overlong", "skip"), stdin=c.data)
    ref.expect_rc(2)
    r.expect_rc(2)
    eq(r.out == ref.out, True, "same output with and without --errors")
    errs = [o for _, o in ref.errors()]
    check(len(errs) > 20, "corpus has over 20 bad lines")
    want = []
    for o in errs[:20]:
        # src/output/record_writer.h: `<source>:<line>: id <id>: <reason>`, the id
        # part only when known; reasons name their field themselves.
        id_part = "id %s: " % json.dumps(o["id"], ensure_ascii=False) if "id" in o else ""
        want.append("embedpipe: error: -:%d: %s%s" % (o["line"], id_part, o["error"]))
    lines = r.err_text.rstrip("\n").split("\n")
    eq(lines[:20], want, "the first 20 stderr messages")
    check(SUMMARY_RE.match(lines[20]) and lines[20].endswith(", %d rejected" % len(errs)),
          "summary after the messages: %r" % lines[20:])
    eq(lines[23:], ["embedpipe: {:,} more rejected records not shown; use --errors FILE to "
                    "keep them all".format(len(errs) - 20)], "closing lines")


@test
def batches_respect_inputs_and_both_token_counts():
    c = corpus(300, seed=3)
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--batch-inputs", "12", "--batch-tokens", "9000", "-j", "1"),
                stdin=c.data)
        log = srv.requests()
    r.expect_rc(0)
    verify(r.out, list(zip(c.expected_id_text, [e["text"] for e in c.expected])), DIMS)
    log.sort(key=lambda e: e["n"])
    check_sent([t for e in log for t in e["texts"]], [e["text"] for e in c.expected])
    by_inputs = by_exact = by_estimate = 0
    for e in log:
        est = sum((len(t.encode("utf-8")) + 3) // 4 for t in e["texts"])
        check(e["inputs"] <= 12, "request %d has %d inputs" % (e["n"], e["inputs"]))
        check(e["tokens"] <= 9000, "request %d has %d tokens" % (e["n"], e["tokens"]))
        check(est <= 9000, "request %d has %d bytes/4 tokens" % (e["n"], est))
        check(e["max_input_tokens"] <= 8191, "request %d has a %d-token input"
              % (e["n"], e["max_input_tokens"]))
        by_inputs += e["inputs"] == 12
        by_exact += e["tokens"] > 8000
        by_estimate += est > 8000
    check(by_inputs and by_exact and by_estimate,
          "each limit should bind at least once (%d, %d, %d)" % (by_inputs, by_exact, by_estimate))
    eq(r.summary()[2], len(log), "requests in the summary")


@test
def default_limit_of_2048_inputs():
    stdin = jsonl(*({"id": i, "text": "t%d" % i} for i in range(5000)))
    with Server() as srv:
        r = run(base_args(srv, 4, "-j", "1"), stdin=stdin)
        log = srv.requests()
    r.expect_rc(0)
    eq([e["inputs"] for e in sorted(log, key=lambda e: e["n"])], [2048, 2048, 904],
       "inputs per request")
    verify(r.out, [(str(i), "t%d" % i) for i in range(5000)], 4)


@test
def default_limit_of_300000_tokens_per_request():
    # "a a a ... a" is one token per word in cl100k_base: 8000 tokens each;
    # a distinct first word keeps the texts apart (identical ones are sent once).
    texts = ["a" + " a" * i + " b" + " a" * (7998 - i) for i in range(40)]
    stdin = jsonl(*({"id": i, "text": t} for i, t in enumerate(texts)))
    with Server() as srv:
        r = run(base_args(srv, 4, "-j", "1"), stdin=stdin)
        log = srv.requests()
    r.expect_rc(0)
    log.sort(key=lambda e: e["n"])
    eq([(e["inputs"], e["tokens"], e["max_input_tokens"], e["status"]) for e in log],
       [(37, 296000, 8000, 200), (3, 24000, 8000, 200)], "requests")
    verify(r.out, [(str(i), t) for i, t in enumerate(texts)], 4)


@test
def max_input_tokens_rejects_longer_texts():
    texts = ["a" + " a" * (n - 1) for n in (99, 100, 101, 5)]
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, 4, "--overlong", "skip", "--max-input-tokens", "100", "--errors", errors),
                stdin=jsonl(*({"id": i, "text": t} for i, t in enumerate(texts))))
        log = srv.requests()
    r.expect_rc(2)
    eq([o for _, o in r.errors()], [{"line": 3, "source": "-", "id": 2, "field": "text",
                                     "error": "text has 101 tokens, over --max-input-tokens 100 "
                                              "(--overlong skip)"}], "errors")
    verify(r.out, [("0", texts[0]), ("1", texts[1]), ("3", texts[3])], 4)
    eq(log[0]["max_input_tokens"], 100, "longest input sent")


@test
def line_longer_than_a_read_is_counted_and_rejected():
    big = "a" + " a" * 150000  # 300 KB on one line, 150001 tokens
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, 4, "--overlong", "skip", "--errors", errors),
                stdin=jsonl({"id": "big", "text": big}, {"id": "after", "text": "after"}))
        log = srv.requests()
    r.expect_rc(2)
    eq([o for _, o in r.errors()], [{"line": 1, "source": "-", "id": "big", "field": "text",
                                     "error": "text has 150,001 tokens, over --max-input-tokens 8191 "
                                              "(--overlong skip)"}], "errors")
    verify(r.out, [('"after"', "after")], 4)
    eq([e["texts"] for e in log], [["after"]], "texts sent")


@test
def empty_and_all_bad_inputs():
    with Server() as srv:
        r = run(base_args(srv, 4), stdin=b"")
        r2 = run(base_args(srv, 4), stdin=b"\n  \n")
        r3 = run(base_args(srv, 4), stdin=b"[]\n{}\n")
        log = srv.requests()
    r.expect_rc(0)
    r2.expect_rc(0)
    r3.expect_rc(2)
    eq((r.out, r2.out, r3.out), (b"", b"", b""), "outputs")
    eq(r.summary()[:3], (0, 0, 0), "summary of empty input")
    eq(r3.summary()[:3], (0, 2, 0), "summary of bad input")
    eq(log, [], "requests")


if __name__ == "__main__":
    main()
