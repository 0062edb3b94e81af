#!/usr/bin/env python3
"""scripts/bench peers checks itself: a tiny run of two scenarios with
embedpipe alone (the peers need npm packages, so they are left to the
benchmark itself), then what its table, bounds and server counts say
against figures computed here; and the corpus helpers the peers' side needs
(the cleaned corpus, the peers' expectation, the tuned batch size)."""

import decimal
import json
import math
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, check, eq, main, spawn, test, tmpdir  # noqa: E402
import harness  # noqa: E402



def _load_peers():
    """scripts/peers/harness.py (a name this directory's harness already has)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "bench_peers", os.path.join(ROOT, "scripts", "peers", "harness.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


peers = _load_peers()


def bench_dir():
    """A build directory of its own (the three tools linked in), so the
    corpora and runs stay in this test's temporary directory."""
    d = tmpdir("bench")
    for name in ("embedpipe", "fake_provider", "verify_embeddings"):
        os.symlink(os.path.join(harness.BUILD, name), os.path.join(d, name))
    return d


@test
def tiny_run_reports_what_the_server_saw():
    build = bench_dir()
    out = os.path.join(build, "results")
    # Request 1 is answered 500 and request 2 429: two retries, one 429.
    # scripts/bench runs the embedpipe of `build`.
    p = spawn(["peers", "--build", build, "--out", out, "--scenario", "realistic,faults",
               "--clients", "embedpipe", "--sections", "120", "--long", "2",
               "--latency-ms", "40", "--latency-per-ktok-ms", "1", "--faults", "1:500,2:429"],
              command=[sys.executable, os.path.join(ROOT, "scripts", "bench")],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, err = p.communicate(timeout=120)
    eq(p.returncode, 0, "exit status (stderr: %r)" % err[-800:])
    with open(os.path.join(out, "results.json")) as f:
        results = {s["name"]: s for s in json.load(f)}
    eq(sorted(results), ["faults", "realistic"], "scenarios run")
    for name, s in results.items():
        eq(len(s["rows"]), 1, "%s: rows" % name)
        row = s["rows"][0]
        eq(row["client"], "embedpipe", "%s: client" % name)
        eq(row["verified"], "yes", "%s: verified" % name)
        eq(row["written"], row["valid"], "%s: every valid record written" % name)
        # The valid records are the 120 sections; the 2 long ones are not.
        eq(s["records"], 120, "%s: valid records" % name)
        n, t = s["records"], s["tokens"]
        r = max(math.ceil(n / 2048), math.ceil(t / 300000))
        want = (r * 40 + t * 1 / 1000.0) / 1000.0 / 5
        check(abs(s["lower_bound"] - want) < 1e-9,
              "%s: lower bound %r, want %r" % (name, s["lower_bound"], want))
        check(row["wall"] >= s["lower_bound"], "%s: faster than the bound" % name)
        inputs = sum(k for _, k in row["series"])
        check(0 < inputs <= n, "%s: inputs answered %d" % (name, inputs))
    eq(results["realistic"]["rows"][0]["exit"], 2, "realistic: exit (long sections rejected)")
    eq(results["realistic"]["rows"][0]["429s"], 0, "realistic: 429s")
    eq(results["realistic"]["rows"][0]["retries"], 0, "realistic: retries")
    f = results["faults"]["rows"][0]
    eq((f["exit"], f["429s"], f["retries"]), (0, 1, 2), "faults: exit, 429s, retries")
    eq(f["requests"], results["realistic"]["rows"][0]["requests"] + 2, "faults: requests")
    text = stdout.decode()
    check("| embedpipe | 2 | 120 / 120 |" in text, "realistic row in the table:\n" + text)
    check("1. realistic: embedpipe completed 120 of 120" in text, "goal 1 line:\n" + text)
    with open(os.path.join(out, "results.md")) as f:
        check(f.read().strip().endswith(text.strip().split("\n")[-1]), "results.md ends as stdout")
    for name in ("realistic", "faults"):
        png = os.path.join(out, name + ".png")
        if os.path.exists(png):
            with open(png, "rb") as f:
                eq(f.read(8), b"\x89PNG\r\n\x1a\n", "%s plot is a PNG" % name)


@test
def tiny_10x_run_compares_the_largest_peaks():
    build = bench_dir()
    out = os.path.join(build, "results-10x")
    p = spawn(["peers", "--build", build, "--out", out, "--scenario", "10x",
               "--sections", "60", "--long", "0", "--scale", "2", "--rss-runs", "2",
               "--rss-stall", "1"],
              command=[sys.executable, os.path.join(ROOT, "scripts", "bench")],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, err = p.communicate(timeout=120)
    eq(p.returncode, 0, "exit status (stderr: %r)" % err[-800:])
    with open(os.path.join(out, "results.json")) as f:
        rows = json.load(f)[0]["rows"]
    eq([r["client"] for r in rows],
       ["embedpipe 1x #1", "embedpipe 1x #2", "embedpipe 2x #1", "embedpipe 2x #2",
        "embedpipe 1x stalled", "embedpipe 2x stalled"], "runs")
    eq([r["verified"] for r in rows], ["yes"] * 6, "verified")
    eq([r["written"] for r in rows], [60, 60, 120, 120, 60, 120], "records written")
    # The stalled runs' first request was sent again; the others' never.
    eq([r["retries"] for r in rows], [0, 0, 0, 0, 1, 1], "retries")
    one = [r["rss_mb"] for r in rows[:2]]
    two = [r["rss_mb"] for r in rows[2:4]]
    want = ("5. 10x: peak RSS at 1x %.1f, %.1f MB, at 2x %.1f, %.1f MB; the largest %.1f and "
            "%.1f MB: %.2f x" % (one[0], one[1], two[0], two[1], max(one), max(two),
                                 max(two) / max(one)))
    check(want in stdout.decode(), "goal 5 line %r in:\n%s" % (want, stdout.decode()))
    lo, hi = rows[4]["rss_mb"], rows[5]["rss_mb"]
    want = ("With a request stalled (the read window full): %.1f and %.1f MB, %.2f x."
            % (lo, hi, hi / lo))
    check(want in stdout.decode(), "stalled line %r in:\n%s" % (want, stdout.decode()))


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(l + "\n" for l in lines))


@test
def cleaned_corpus_drops_what_the_api_refuses():
    d = tmpdir("clean")
    stem = os.path.join(d, "c")
    nfd = "cafe\u0301 " * 4500  # 9003 tokens as sent, 4501 in NFC
    records = [{"id": "a", "text": "alpha"}, {"id": "long", "text": "12345 " * 9000},
               {"id": "nfd", "text": nfd}, {"id": "c", "text": "gamma"}]
    lines = [json.dumps(records[0]), "  ", json.dumps(records[1]), json.dumps(records[2]),
             json.dumps(records[3])]
    write_lines(stem + ".jsonl", lines)
    write_lines(stem + ".expected.jsonl", [json.dumps(r) for r in (records[0], records[2],
                                                                   records[3])])
    write_lines(stem + ".manifest.jsonl", [
        json.dumps({"line": 2, "kind": "blank", "bad": False, "mode": "never"}),
        json.dumps({"line": 3, "kind": "too_long", "bad": True, "mode": "all"}),
        json.dumps({"line": 5, "kind": "over_8191_bytes", "bad": False, "mode": "maybe",
                    "expected_index": 2})])
    src = peers.Corpus(stem + ".jsonl", stem + ".expected.jsonl", stem + ".manifest.jsonl")
    clean = peers.cleaned(src, harness.BUILD)
    with open(clean.path, encoding="utf-8") as f:
        eq(f.read().split("\n")[:-1], [lines[0], lines[1], lines[4]], "cleaned corpus")
    with open(clean.expected, encoding="utf-8") as f:
        eq([json.loads(r) for r in f], [records[0], records[3]], "cleaned expectation")
    with open(clean.manifest) as f:
        eq([(e["line"], e["kind"], e.get("expected_index")) for e in map(json.loads, f)],
           [(2, "blank", None), (3, "over_8191_bytes", 1)], "cleaned manifest")


@test
def peer_expectation_is_what_the_peer_sends():
    d = tmpdir("corpus")
    stem = os.path.join(d, "c")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen-corpus"),
                    "--sections", "60", "--seed", "3", "--long", "2", "--out", stem + ".jsonl",
                    "--expected", stem + ".expected.jsonl", "--bad-manifest",
                    stem + ".manifest.jsonl"], check=True)
    src = peers.Corpus(stem + ".jsonl", stem + ".expected.jsonl", stem + ".manifest.jsonl")
    with open(src.path, "rb") as f:
        lines = f.read().split(b"\n")[:-1]
    with open(src.manifest) as f:
        long_lines = {e["line"] for e in map(json.loads, f) if e["kind"] == "too_long"}
    eq(len(long_lines), 2, "long sections")
    # The peers' expectation: raw texts (LangChain: newlines as spaces),
    # JSON.parse's ids.
    for strip in (False, True):
        path, rounded = src.peer_expected(strip)
        with open(path) as f:
            got = [json.loads(r) for r in f]
        want = []
        changed = 0
        for n, raw in enumerate(lines, 1):
            line = raw.decode("utf-8", "replace")
            if not line.strip() or n in long_lines:
                continue
            rec = json.loads(line)
            rid = rec["id"]
            if isinstance(rid, int) and abs(rid) > 2**53:
                js = int(decimal.Decimal(repr(float(rid))))
                changed += js != rid
                rid = js
            want.append({"id": rid, "text": rec["text"].replace("\n", " ") if strip
                         else rec["text"]})
        eq(got, want, "peer expectation (strip newlines: %s)" % strip)
        eq(rounded, changed, "ids counted as changed by JSON.parse")


@test
def tuned_batch_is_the_largest_that_fits():
    eq(peers.tuned_batch([1000] * 1000), 288, "291 x 1000 fits 97% of 300000, 304 does not")
    eq(peers.tuned_batch([1] * 5000), 2048, "capped at the API's 2048 inputs")
    eq(peers.tuned_batch([9000] * 40), 32, "a multiple of 16")


if __name__ == "__main__":
    main()
