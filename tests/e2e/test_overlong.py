#!/usr/bin/env python3
"""embedpipe end to end: sections of 8,000 to 30,000 tokens under each
--overlong policy, against the fake server that counts tokens exactly as the
API does (cl100k_base), and --count-tokens."""

import json
import math
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakevec  # noqa: E402
from harness import (MODEL, Server, base_args, check, eq, jsonl, main, run,  # noqa: E402
                     split_lines, split_output_line, test, tmpdir)

DIMS = 8
CAP = 8191


def long_text(seed, words):
    """About `words` tokens of mixed English, digits and CJK, deterministic."""
    vocab = ["river", "stone", "light", "quiet", "market", "engine", "paper",
             "4096", "31337", "中文", "東京", "مرحبا", "naïve", "x=y+1;"]
    out, state = [], seed
    for _ in range(words):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append(vocab[(state >> 33) % len(vocab)])
    return " ".join(out)


RECORDS = [{"id": "short-1", "text": "a short section"}] + [
    {"id": "long-%d" % n, "text": long_text(n, n)} for n in (3700, 4200, 6500, 13900)
] + [{"id": 7, "text": "another short one"}]


def counts(texts):
    """Token counts of `texts` from embedpipe --count-tokens (no server)."""
    r = run(["--count-tokens"], stdin=jsonl(*({"id": i, "text": t} for i, t in enumerate(texts))))
    r.expect_rc(0)
    return [json.loads(l)["tokens"] for l in r.lines]


TOKENS = None


def tokens():
    global TOKENS
    if TOKENS is None:
        TOKENS = counts([r["text"] for r in RECORDS])
    return TOKENS


def received_texts(log):
    """Every input the server received, in request order."""
    return [t for e in sorted(log, key=lambda e: e["n"]) for t in e["texts"]]


def check_caps(log):
    for e in log:
        check(e["status"] == 200, "request %d answered 200: %r" % (e["n"], e["status"]))
        check(e["max_input_tokens"] <= CAP, "request %d: an input of %d tokens"
              % (e["n"], e["max_input_tokens"]))
        check(e["tokens"] <= 300000 and (e["text_bytes"] + 3) // 4 <= 300000 + e["inputs"],
              "request %d within the per-request cap" % e["n"])


def output_vectors(out):
    lines = split_lines(out)
    return [split_output_line(l) for l in lines]


def weighted(pieces, weights):
    """The split policy's vector, recomputed from its written definition."""
    acc = [0.0] * DIMS
    for piece, w in zip(pieces, weights):
        v = fakevec.vector(MODEL, DIMS, piece)
        for d in range(DIMS):
            acc[d] += w * v[d]
    squares = 0.0
    for x in acc:
        squares += x * x
    norm = math.sqrt(squares)
    return [fakevec._f32(x / norm) for x in acc]


@test
def count_tokens_needs_no_key_or_server():
    r = run(["--count-tokens"], stdin=jsonl({"id": "a", "text": "hello world"},
                                            {"id": 2, "text": "<|endoftext|>"}), key=None)
    r.expect_rc(0)
    # encode_ordinary semantics: the special token's text is plain text.
    eq(r.out, b'{"id":"a","tokens":2}\n{"id":2,"tokens":7}\n', "counts")
    check(all(t > 0 for t in tokens()), "counts of the test records")
    eq([t > CAP for t in tokens()], [False, False, True, True, True, False],
       "which test records are over the cap")


@test
def split_embeds_every_piece_and_averages():
    with Server() as srv:
        r = run(base_args(srv, DIMS, "-j", "1", "--overlong", "split"), stdin=jsonl(*RECORDS))
        log = srv.requests()
    r.expect_rc(0)
    check_caps(log)
    got = received_texts(log)
    outs = output_vectors(r.out)
    eq([o[0] for o in outs], [json.dumps(rec["id"]) for rec in RECORDS], "ids in order")
    eq((r.stats["records"]["truncated"], r.stats["records"]["split"]), (0, 3), "truncated, split")
    check(b"3 split)" in r.err, "the summary says so: %r" % r.err[-300:])
    for rec, n, (_, arr, _) in zip(RECORDS, tokens(), outs):
        if n <= CAP:
            eq(got.pop(0), rec["text"], "a short text is sent whole")
            fakevec.check_embedding_text(arr, fakevec.vector(MODEL, DIMS, rec["text"]))
            continue
        pieces = []
        while "".join(pieces) != rec["text"]:
            check(got and rec["text"].startswith("".join(pieces) + got[0]),
                  "pieces of %s are consecutive and cover its text" % rec["id"])
            pieces.append(got.pop(0))
        check(len(pieces) >= math.ceil(n / CAP), "enough pieces for %d tokens" % n)
        fakevec.check_embedding_text(arr, weighted(pieces, counts(pieces)))
    eq(got, [], "nothing else was sent")


@test
def truncate_sends_the_longest_prefix_within_the_cap():
    with Server() as srv:
        r = run(base_args(srv, DIMS, "-j", "1", "--overlong", "truncate"), stdin=jsonl(*RECORDS))
        log = srv.requests()
    r.expect_rc(0)
    check_caps(log)
    got = received_texts(log)
    eq(len(got), len(RECORDS), "one input per record")
    eq((r.stats["records"]["truncated"], r.stats["records"]["split"]), (3, 0), "truncated, split")
    check(b"3 truncated)" in r.err, "the summary says so: %r" % r.err[-300:])
    prefix_tokens = counts(got)
    for rec, n, sent, m, (_, arr, _) in zip(RECORDS, tokens(), got, prefix_tokens,
                                            output_vectors(r.out)):
        if n <= CAP:
            eq(sent, rec["text"], "a short text is sent whole")
        else:
            check(rec["text"].startswith(sent) and len(sent) < len(rec["text"]),
                  "%s: a proper prefix is sent" % rec["id"])
            # Cut at a token boundary, stepped back at most to a character.
            check(CAP - 4 <= m <= CAP, "%s: prefix has %d tokens" % (rec["id"], m))
        fakevec.check_embedding_text(arr, fakevec.vector(MODEL, DIMS, sent))


@test
def a_text_the_server_finds_too_long_is_split_below_its_limit():
    # Issue 22, item 6: a server whose window (3,000 tokens) is smaller than
    # the cap embedpipe counts against (8,191). Each refusal names the input,
    # which is taken out of its batch at once (the others are sent again)
    # and split below what the server refused; stderr says so once.
    recs = [RECORDS[0], {"id": "mid-11", "text": long_text(11, 1700)},
            {"id": "mid-12", "text": long_text(12, 1900)}, RECORDS[5]]
    n = counts([rec["text"] for rec in recs])
    check(3000 < n[1] < n[2] <= CAP, "the long records are within the cap: %r" % n)
    with Server("--max-input-tokens", "3000") as srv:
        r = run(base_args(srv, DIMS, "-j", "1"), stdin=jsonl(*recs))
        log = sorted(srv.requests(), key=lambda e: e["n"])
    r.expect_rc(0)
    eq([(e["inputs"], e["status"]) for e in log],
       [(4, 400), (3, 400), (2, 200), (2, 200), (2, 200)], "requests (inputs, status)")
    text = [rec["text"] for rec in recs]
    eq(log[1]["texts"], [text[0], text[2], text[3]], "the others, without the input named")
    eq(log[2]["texts"], [text[0], text[3]], "the others, without the second input named")
    outs = output_vectors(r.out)
    eq([o[0] for o in outs], [json.dumps(rec["id"]) for rec in recs], "ids in order")
    for i in (0, 3):
        fakevec.check_embedding_text(outs[i][1], fakevec.vector(MODEL, DIMS, text[i]))
    for i, e in ((1, log[3]), (2, log[4])):
        pieces = e["texts"]
        eq("".join(pieces), text[i], "the pieces of record %d cover its text" % i)
        # Two pieces, the first cut at the lowered cap: the server's counts
        # of them (--count-tokens would count each as a normalized record).
        eq(e["max_input_tokens"], 3000 * 7 // 8, "the longest piece of record %d" % i)
        piece_tokens = [e["max_input_tokens"], e["tokens"] - e["max_input_tokens"]]
        fakevec.check_embedding_text(outs[i][1], weighted(pieces, piece_tokens))
    eq(r.stats["records"]["split"], 2, "records split")
    eq([l for l in r.err_text.splitlines() if "warning" in l],
       ["embedpipe: warning: the server refused -:2 as too long (its limit: 3000 tokens), "
        "though it has %d tokens by embedpipe's count; a text it refuses so is split below "
        "what it refused (--overlong split)" % n[1]], "warnings")


def refused_by_a_smaller_window(policy):
    """A run with --overlong `policy` whose second record (3,569 tokens) the
    server refuses as over its 3,000: (result, log sorted by n, records)."""
    recs = [RECORDS[0], {"id": "mid-11", "text": long_text(11, 1700)}, RECORDS[5]]
    d = tmpdir()
    with Server("--max-input-tokens", "3000") as srv:
        r = run(base_args(srv, DIMS, "-j", "1", "--overlong", policy, "--errors",
                          os.path.join(d, "errors.jsonl")), stdin=jsonl(*recs))
        log = sorted(srv.requests(), key=lambda e: e["n"])
    return r, log, recs


@test
def a_text_the_server_finds_too_long_is_truncated_below_its_limit():
    r, log, recs = refused_by_a_smaller_window("truncate")
    r.expect_rc(0)
    eq([(e["inputs"], e["status"]) for e in log], [(3, 400), (2, 200), (1, 200)],
       "requests (inputs, status)")
    sent = log[2]["texts"][0]
    check(recs[1]["text"].startswith(sent) and len(sent) < len(recs[1]["text"]),
          "a proper prefix is sent")
    check(2600 <= log[2]["tokens"] <= 3000 * 7 // 8, "prefix of %d tokens" % log[2]["tokens"])
    outs = output_vectors(r.out)
    eq([o[0] for o in outs], [json.dumps(rec["id"]) for rec in recs], "ids in order")
    fakevec.check_embedding_text(outs[1][1], fakevec.vector(MODEL, DIMS, sent))
    eq(r.stats["records"]["truncated"], 1, "records truncated")


@test
def a_record_truncated_twice_counts_once():
    """Cut to --max-input-tokens 3300 here, then refused at the server's
    3,000 and cut again: one record truncated, not two."""
    with Server("--max-input-tokens", "3000") as srv:
        r = run(base_args(srv, DIMS, "--overlong", "truncate", "--max-input-tokens", "3300"),
                stdin=jsonl({"id": "mid-11", "text": long_text(11, 1700)}))
        log = sorted(srv.requests(), key=lambda e: e["n"])
    r.expect_rc(0)
    eq([e["status"] for e in log], [400, 200], "request statuses")
    eq(r.stats["records"]["truncated"], 1, "records truncated")


@test
def a_text_the_server_finds_too_long_stops_the_run_under_fail():
    r, log, recs = refused_by_a_smaller_window("fail")
    r.expect_rc(2)
    eq([(e["inputs"], e["status"]) for e in log], [(3, 400), (2, 200)],
       "requests (inputs, status)")
    reason = ("rejected by the API (HTTP 400): Invalid 'input[1]': maximum context length is "
              "3000 tokens. (--overlong fail)")
    eq([o for _, o in r.errors()], [{"line": 2, "source": "-", "id": "mid-11", "field": "text",
                                     "error": reason}], "errors")
    check("embedpipe: error: stopped at -:2: %s\n" % reason in r.err_text,
          "says where it stopped: %r" % r.err_text[-500:])
    eq([o[0] for o in output_vectors(r.out)], [json.dumps(rec["id"]) for rec in recs[::2]],
       "the records read before it are embedded")


@test
def skip_rejects_the_long_records_and_embeds_the_rest():
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--overlong", "skip", "--errors", errors),
                stdin=jsonl(*RECORDS))
        log = srv.requests()
    r.expect_rc(2)
    check_caps(log)
    eq(sorted(received_texts(log)), sorted(rec["text"] for rec, n in zip(RECORDS, tokens())
                                           if n <= CAP), "only the short texts were sent")
    eq([o for _, o in r.errors()], [
        {"line": i + 1, "source": "-", "id": rec["id"], "field": "text",
         "error": "text has {:,} tokens, over --max-input-tokens {} (--overlong skip)".format(
             n, CAP)}
        for i, (rec, n) in enumerate(zip(RECORDS, tokens())) if n > CAP], "errors")
    eq([o[0] for o in output_vectors(r.out)],
       [json.dumps(rec["id"]) for rec, n in zip(RECORDS, tokens()) if n <= CAP], "ids")


@test
def fail_stops_at_the_first_long_record():
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--overlong", "fail", "--errors", errors),
                stdin=jsonl(*RECORDS))
        log = srv.requests()
    r.expect_rc(2)
    first = next(i for i, n in enumerate(tokens()) if n > CAP)
    eq([o for _, o in r.errors()], [
        {"line": first + 1, "source": "-", "id": RECORDS[first]["id"], "field": "text",
         "error": "text has {:,} tokens, over --max-input-tokens {} (--overlong fail)".format(
             tokens()[first], CAP)}], "errors")
    check(b"stopped at -:%d:" % (first + 1) in r.err, "says where it stopped: %r" % r.err[-300:])
    later = {rec["text"] for rec in RECORDS[first:]}
    check(not later & set(received_texts(log)), "nothing from the stopping line on was sent")
    # Input ends at that record: everything before it is embedded.
    eq([o[0] for o in output_vectors(r.out)],
       [json.dumps(rec["id"]) for rec in RECORDS[:first]], "the records before it")


if __name__ == "__main__":
    main()
