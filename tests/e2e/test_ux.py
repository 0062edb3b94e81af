#!/usr/bin/env python3
"""embedpipe day to day: --dry-run against what a real run sends, --stats,
the summary, progress on a terminal and in logs, colors, -q, make install.
(A reader that goes away, as with | head -1: test_signals.py.)"""

import json
import os
import re
import select
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, SUMMARY_RE, Server, base_args, check, corpus, eq,  # noqa: E402
                     main, run, spawn, test, tmpdir)
import harness  # noqa: E402

# A progress line (src/app/progress.cc) after the program name.
PROGRESS_RE = re.compile(r"^embedpipe: \[\d+:\d\d\] (?:\d+% [0-9,]+/~?)?[0-9,]+ records, "
                         r"[0-9.kMG]+ tokens, \d+ in flight")


def distinct_token_total(c):
    """The tokenizer's count (--count-tokens) summed over the distinct
    normalized texts of a corpus without bad lines: what a run sends."""
    r = run(["--count-tokens", c.path], key=None)
    r.expect_rc(0)
    counts = [json.loads(l)["tokens"] for l in r.lines]
    eq(len(counts), len(c.expected), "one count per record")
    return sum(dict(zip((e["text"] for e in c.expected), counts)).values())


@test
def dry_run_counts_what_a_real_run_then_sends():
    # Over-long records (split into pieces) and bad lines included.
    c = corpus(3000, seed=21, bad=12, long_=4)
    d = tmpdir()
    with Server() as srv:
        dry = run(base_args(srv, None, "--dry-run", "--errors", os.path.join(d, "dry.err"),
                            c.path), key=None)
        # With a checkpoint every distinct text is sent once, as the dry run
        # counts; without one, repeats are deduplicated only while in flight.
        real = run(base_args(srv, 8, "--errors", os.path.join(d, "real.err"),
                             "--checkpoint", os.path.join(d, "j"), c.path))
        log = srv.requests()
    dry.expect_rc(2)
    real.expect_rc(2)
    eq(dry.out, b"", "a dry run writes nothing to stdout")
    ds, rs = dry.stats, real.stats
    eq(ds["dry_run"], True, "stats say dry run")
    # Every logged request is the real run's: the dry run sent none.
    eq(len(log), rs["requests"]["sent"], "the real run's requests, by the server's log")
    # The real run may cut its last batches into shares for its 5 slots:
    # the same batches, and as many more requests as cuts.
    eq(ds["requests"]["batches"], rs["requests"]["batches"], "batches formed, dry vs real")
    check(len(log) >= ds["requests"]["batches"], "requests sent %d, batches %d"
          % (len(log), ds["requests"]["batches"]))
    eq(ds["requests"]["sent"], 0, "a dry run sends nothing")
    eq(ds["tokens"]["sent"], sum(e["tokens"] for e in log), "tokens predicted vs received")
    # A repeat the real run answered from its checkpoint (its first copy was
    # already saved) is, to the dry run, a duplicate like the others.
    real_records = dict(rs["records"], from_checkpoint=0,
                        duplicates=rs["records"]["duplicates"] + rs["records"]["from_checkpoint"])
    eq(ds["records"], real_records, "record counts of the dry and the real run")
    eq(dry.errors_text, real.errors_text, "the same records rejected, with the same reasons")
    check(ds["records"]["split"] > 0 and ds["records"]["rejected"] > 0,
          "the corpus has split and rejected records: %r" % ds["records"])
    eq(ds["cost"]["usd_per_million_tokens"], 0.02, "list price of text-embedding-3-small")
    check(abs(ds["cost"]["usd"] - ds["tokens"]["sent"] * 0.02 / 1e6) < 1e-12, "cost %r" % ds["cost"])
    lines = dry.err_text.splitlines()
    check(any(re.match(r"embedpipe: dry run: [0-9,]+ requests? would send [0-9,]+ tokens; "
                       r"est\. \$[0-9.]+ at \$0\.02/M tokens$", l) for l in lines),
          "the dry run's summary names requests, tokens and cost: %r" % lines[-4:])
    # This dry run had no checkpoint: it says its count of repeats holds for
    # a run with one.
    dups = ds["records"]["duplicates"]
    check(dups > 0, "the corpus has repeated texts")
    check("embedpipe: dry run: %s duplicates counted once each, as with --checkpoint; a run "
          "without one sends a repeat again once its first copy is answered" % format(dups, ",")
          in lines, "the dry run names the duplicates' caveat: %r" % lines[-4:])


@test
def batches_close_at_their_caps_whatever_the_timing():
    # A slow server keeps the read window full while requests are out; bad
    # lines and repeats leave an open batch part full then. Were it sent
    # early, the request count would depend on timing and differ from the
    # dry run's.
    c = corpus(2000, seed=22, bad=12)
    d = tmpdir()
    small = ["-j", "1", "--batch-inputs", "64", "--checkpoint", os.path.join(d, "j")]
    with Server("--latency-ms", "20", "--shuffle") as srv:
        dry = run(base_args(srv, 8, "--dry-run", *small, c.path), key=None)
        real = run(base_args(srv, 8, *small, c.path))
        log = srv.requests()
    dry.expect_rc(2)
    real.expect_rc(2)
    check(dry.stats["records"]["duplicates"] > 0, "the corpus has repeats")
    eq(len(log), dry.stats["requests"]["batches"], "requests sent vs the dry run's count")
    eq(sorted(e["inputs"] for e in log)[-2:], [64, 64], "full batches of 64")


@test
def dry_run_tokens_equal_the_tokenizers_count():
    c = corpus(2000, seed=22)
    r = run(["--dry-run", "--price", "0.5", c.path], key=None)
    r.expect_rc(0)
    eq(r.stats["tokens"]["sent"], distinct_token_total(c), "dry-run tokens vs --count-tokens")
    check(r.stats["records"]["duplicates"] > 0, "the corpus repeats texts: %r" % r.stats)
    eq(r.stats["cost"]["usd_per_million_tokens"], 0.5, "--price overrides the table")


@test
def dry_run_reads_the_checkpoint_and_leaves_it_untouched():
    c = corpus(400, seed=23)
    d = tmpdir()
    journal = os.path.join(d, "j")
    with Server() as srv:
        first = run(base_args(srv, 8, "--checkpoint", journal, c.path))
        first.expect_rc(0)
        with open(journal, "rb") as f:
            before = f.read()
        with open(c.path, "ab") as f:
            f.write(b'{"id":"new","text":"a section added since"}\n')
        dry = run(base_args(srv, 8, "--checkpoint", journal, "--dry-run", c.path), key=None)
        log = srv.requests()
    dry.expect_rc(0)
    eq(len(log), first.stats["requests"]["sent"], "the dry run sent nothing")
    eq(dry.stats["records"]["from_checkpoint"], 400, "answered by the checkpoint")
    eq((dry.stats["requests"]["batches"], dry.stats["records"]["embedded"]), (1, 401),
       "one request for the one new text")
    with open(journal, "rb") as f:
        eq(f.read() == before, True, "journal bytes unchanged by the dry run")
    # No checkpoint file yet: the dry run does not create one.
    missing = os.path.join(d, "none")
    r = run(["--checkpoint", missing, "--dry-run", c.path], key=None)
    r.expect_rc(0)
    eq(os.path.exists(missing), False, "no journal created")


@test
def stats_file_matches_the_run_and_its_exit_status():
    c = corpus(500, seed=24, bad=5)
    d = tmpdir()
    stats = os.path.join(d, "stats.json")
    with Server("--faults", "1:500,3:429") as srv:
        r = run(base_args(srv, 8, "--stats", stats, "--max-retry-wait", "0.2", c.path))
        log = srv.requests()
    r.expect_rc(2)
    with open(stats) as f:
        s = json.load(f)
    eq(s["exit_status"], 2, "exit status in the stats")
    eq(s["requests"]["sent"], len(log), "requests vs the server's log")
    eq(s["requests"]["retries"], {"total": 2, "rate_limited": 1, "server": 1, "network": 0,
                                  "bad_response": 0}, "retries by cause")
    eq(s["requests"]["rate_limited"], 1, "429 answers")
    eq(s["records"]["read"], s["records"]["embedded"] + s["records"]["rejected"], "read = out")
    eq(s["tokens"]["reported"], sum(e["tokens"] for e in log if e["status"] == 200),
       "usage the server reported")
    lines = r.err_text.splitlines()
    summary = [l for l in lines if SUMMARY_RE.match(l)]
    eq(len(summary), 1, "one summary")
    i = lines.index(summary[0])
    eq(lines[i], "embedpipe: %s records: %s embedded (%d duplicates), %d rejected" % (
        format(s["records"]["read"], ","), format(s["records"]["embedded"], ","),
        s["records"]["duplicates"], s["records"]["rejected"]), "the summary's first line")
    check(re.match(r"embedpipe: [0-9,]+ requests, 2 retries \(1 rate-limited, 1 server error\); "
                   r"[0-9,]+ tokens; est\. \$", lines[i + 1]), "second line: %r" % lines[i + 1])
    check(re.match(r"embedpipe: [0-9.]+ s, [0-9,]+ records/s, [0-9,]+ tokens/s$", lines[i + 2]),
          "third line: %r" % lines[i + 2])


@test
def unknown_model_has_no_price_until_given_one():
    r = run(["--dry-run", "-m", "my-own-model", "--tokenizer", "estimate"],
            stdin=b'{"id":1,"text":"hello"}\n', key=None)
    r.expect_rc(0)
    eq(r.stats["cost"], None, "no cost for an unknown model")
    check("cost unknown for my-own-model (see --price)" in r.err_text, r.err_text)


@test
def log_mode_writes_plain_progress_lines():
    c = corpus(300, seed=25)
    # Each answer takes 400 ms, so the run lasts longer than many intervals.
    with Server("--latency-ms", "400") as srv:
        r = run(base_args(srv, 8, "-j", "1", "--batch-inputs", "100", "--progress-interval",
                          "0.1", c.path))
    r.expect_rc(0)
    lines = r.err_text.splitlines()
    progress = [l for l in lines if PROGRESS_RE.match(l)]
    check(len(progress) >= 3, "progress lines at 0.1 s over a run of >1.2 s: %r" % lines)
    check(all(re.search(r"\b\d+% ", l) for l in progress), "a regular file shows its share")
    eq(b"\x1b" in r.err or b"\r" in r.err, False, "no escape codes or carriage returns in a log")
    check(SUMMARY_RE.match(lines[-3]), "the summary closes the log: %r" % lines[-3:])


@test
def no_progress_lines_with_none_or_quiet():
    c = corpus(300, seed=25)
    with Server("--latency-ms", "400") as srv:
        none = run(base_args(srv, 8, "-j", "1", "--batch-inputs", "100", "--progress", "none",
                             "--progress-interval", "0.1", c.path))
        quiet = run(base_args(srv, 8, "-j", "1", "--batch-inputs", "100", "-q", "--progress",
                              "bar", c.path))
    none.expect_rc(0)
    quiet.expect_rc(0)
    eq([l for l in none.err_text.splitlines() if PROGRESS_RE.match(l)], [], "--progress none")
    check(SUMMARY_RE.search(none.err_text), "--progress none keeps the summary")
    eq(quiet.err, b"", "-q: nothing on stderr")


def run_on_terminal(args, stdin_path, env_extra=None):
    """Runs embedpipe with stderr on a pseudo-terminal (stdout to a pipe);
    returns (exit status, stdout bytes, terminal bytes)."""
    with open(stdin_path, "rb") as stdin:
        p = spawn(args, env=env_extra, terminal=True, stdin=stdin, stdout=subprocess.PIPE)
    got = {p.terminal: b"", p.stdout: b""}
    # Read both until the process closes them: the pty gives EIO at the end.
    left = list(got)
    while left:
        ready, _, _ = select.select(left, [], [], 60)
        check(ready, "embedpipe made no progress for 60 s")
        for f in ready:
            try:
                chunk = f.read1(65536)
            except OSError:
                chunk = b""
            if not chunk:
                left.remove(f)
            got[f] += chunk
    p.terminal.close()
    rc = p.wait(timeout=60)
    return rc, got[p.stdout], got[p.terminal]


@test
def terminal_shows_a_redrawn_bar_then_the_summary():
    c = corpus(300, seed=26, bad=2)
    with Server("--latency-ms", "300") as srv:
        rc, out, term = run_on_terminal(base_args(srv, 8, "-j", "1", "--batch-inputs", "60"),
                                        c.path, {"TERM": "xterm"})
    eq(rc, 2, "exit status")
    eq(out.count(b"\n"), len(c.expected), "every good record on stdout")
    draws = re.findall(rb"\r\x1b\[Kembedpipe: (\[[^\r\n]*)", term)
    check(len(draws) >= 2, "the bar was drawn and redrawn: %r" % term[:600])
    check(all(re.match(rb"\[\d+:\d\d\] \[[#.]{20}\] \d+% ", d) for d in draws),
          "each draw is a bar with its share: %r" % draws[:3])
    check(b"\x1b[1;31merror: \x1b[0m" in term, "errors in color on a terminal: %r" % term[:600])
    text = term.replace(b"\r\n", b"\n").decode()
    last = text.split("\x1b[K")[-1]  # after the bar's last erase
    check(SUMMARY_RE.search(last), "the summary comes after the bar is cleared: %r" % last)


@test
def no_color_keeps_escape_codes_to_the_bar():
    c = corpus(50, seed=27, bad=2)
    with Server() as srv:
        rc, _, term = run_on_terminal(base_args(srv, 8), c.path, {"NO_COLOR": "1", "TERM": "xterm"})
    eq(rc, 2, "exit status")
    check(b"embedpipe: error: " in term, "errors still shown: %r" % term[:400])
    eq(b"\x1b[1;" in term, False, "NO_COLOR: no color codes")


@test
def make_install_puts_the_binary_and_the_man_page_under_prefix():
    dest = tmpdir("install")
    build = harness.BUILD
    # -o: install the binary under test as it is; were a source newer, make
    # would rebuild it here with the default flags, under a running suite.
    p = subprocess.run(["make", "-s", "-C", ROOT, "BUILD=" + build, "-o", build + "/embedpipe",
                        "install", "DESTDIR=" + dest, "PREFIX=/opt/ep"],
                       capture_output=True, timeout=300)
    eq(p.returncode, 0, "make install; stderr %r" % p.stderr[-500:])
    binary = os.path.join(dest, "opt/ep/bin/embedpipe")
    page = os.path.join(dest, "opt/ep/share/man/man1/embedpipe.1")
    version = spawn(["--version"], command=[binary], stdout=subprocess.PIPE).communicate()[0]
    eq(version.startswith(b"embedpipe "), True, "the installed binary runs")
    with open(page, "rb") as f, open(os.path.join(ROOT, "man", "embedpipe.1"), "rb") as g:
        eq(f.read() == g.read(), True, "the installed man page is man/embedpipe.1")
    eq(oct(os.stat(binary).st_mode & 0o777), "0o755", "binary mode")


@test
def carry_takes_one_path_so_a_file_after_it_is_read():
    d = tmpdir()
    path = os.path.join(d, "in.jsonl")
    with open(path, "wb") as f:
        f.write(b'{"id":1,"text":"one","u":"x"}\n{"id":2,"text":"two","u":"y"}\n')
    with Server() as srv:
        r = run(base_args(srv, 4, "--carry", "u", path))
    r.expect_rc(0)
    eq([json.loads(l)["u"] for l in r.lines], ["x", "y"], "records of the file, u carried")


@test
def check_man_fails_on_a_flag_missing_or_unknown():
    # scripts/check-man runs in the suite on the real page; here it must
    # fail on a page that lost -q and names a flag that does not exist.
    with open(os.path.join(ROOT, "man", "embedpipe.1")) as f:
        page = f.read()
    quiet = '.BR \\-q ", " \\-\\-quiet\n'
    check(quiet in page, "the page describes -q")
    bad = os.path.join(tmpdir(), "bad.1")
    with open(bad, "w") as f:
        f.write(page.replace(quiet, ".B \\-\\-quiet\n").replace(
            ".SH EXIT STATUS", ".SH EXIT STATUS\nSee \\fB\\-\\-no\\-such\\fR.\n", 1))
    p = subprocess.run([os.path.join(ROOT, "scripts", "check-man"),
                        harness.BUILD, bad], capture_output=True)
    eq(p.returncode, 1, "check-man's status on the bad page")
    eq(sorted(p.stdout.decode().splitlines()),
       ["check-man: --no-such is in %s but not in --help" % bad,
        "check-man: -q is in --help but not described in %s" % bad], "what it names")


if __name__ == "__main__":
    main()
