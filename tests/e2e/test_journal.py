#!/usr/bin/env python3
"""embedpipe end to end: the --checkpoint journal. A rerun pays for nothing
twice and writes the same bytes; a killed run resumes; a changed corpus costs
only what changed; identical texts are sent once; a torn tail is cut off; a
journal of other settings is refused; --compact shrinks it; every line that
reached stdout was journaled first."""

import json
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (KEY, Server, base_args, check, eq, jsonl, main, run,  # noqa: E402
                     spawn, test, tmpdir)

DIMS = 8


def records(n, prefix="r", start=0):
    return [{"id": "%s%d" % (prefix, i), "text": "section %s %d about rivers and stone" % (prefix, i)}
            for i in range(start, start + n)]


def sent(log):
    return [t for e in log if e["status"] == 200 for t in e["texts"]]


def from_checkpoint(r):
    return r.stats["records"]["from_checkpoint"]


@test
def rerun_sends_nothing_and_writes_the_same_bytes():
    d = tmpdir()
    journal = os.path.join(d, "j")
    stdin = jsonl(*records(300))
    with Server("--shuffle") as srv:
        first = run(base_args(srv, DIMS, "--checkpoint", journal, "--batch-inputs", "64"), stdin=stdin)
        second = run(base_args(srv, DIMS, "--checkpoint", journal), stdin=stdin)
        log = srv.requests()
    first.expect_rc(0)
    second.expect_rc(0)
    eq(second.out, first.out, "output of the rerun")
    eq(len(sent(log)), 300, "texts sent over both runs")
    eq(from_checkpoint(second), 300, "from the checkpoint")
    eq(os.stat(journal).st_mode & 0o777, 0o600, "journal mode")
    with open(journal, "rb") as f:
        check(KEY.encode() not in f.read(), "the API key is not in the journal")


@test
def changed_corpus_pays_only_for_new_texts_and_duplicates_once():
    d = tmpdir()
    journal = os.path.join(d, "j")
    old = records(200)
    new = old[:150] + records(20, "n") + [{"id": "dup-%d" % i, "text": old[0]["text"]}
                                         for i in range(3)] + \
        [{"id": "twin-%d" % i, "text": "a brand new twin text"} for i in range(4)]
    with Server() as srv:
        run(base_args(srv, DIMS, "--checkpoint", journal), stdin=jsonl(*old)).expect_rc(0)
        base = len(srv.wait_for(lambda e: True))
        r = run(base_args(srv, DIMS, "--checkpoint", journal), stdin=jsonl(*new))
        log = srv.requests()
    r.expect_rc(0)
    second = sorted(t for e in log[base:] for t in e["texts"])
    eq(second, sorted([x["text"] for x in records(20, "n")] + ["a brand new twin text"]),
       "texts sent by the second run")
    # Ids keep their own lines and order, each with the vector of its text.
    ref_srv = Server()
    with ref_srv as srv:
        ref = run(base_args(srv, DIMS), stdin=jsonl(*new))
    eq(r.out, ref.out, "output equals a run without a checkpoint")
    eq((from_checkpoint(r), r.stats["records"]["duplicates"]), (153, 3),
       "from the checkpoint, duplicates")


@test
def killed_run_resumes_without_losing_or_repaying():
    d = tmpdir()
    journal = os.path.join(d, "j")
    recs = records(400)
    stdin = jsonl(*recs)
    with Server() as srv:
        ref = run(base_args(srv, DIMS, "--batch-inputs", "20"), stdin=stdin)
    with Server("--latency-ms", "150") as srv:
        p = spawn(base_args(srv, DIMS, "--checkpoint", journal, "--batch-inputs", "20", "-j", "2"),
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(stdin)
        p.stdin.close()
        srv.wait_for(lambda e: sum(x["status"] == 200 for x in e) >= 4, what="4 answers")
        p.kill()  # no chance to flush or clean up
        p.stdout.read()
        p.stderr.read()
        p.wait()
        answered_before = len(srv.wait_for(lambda e: True))
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--checkpoint", journal, "--batch-inputs", "20"), stdin=stdin)
        log = srv.requests()
    r.expect_rc(0)
    eq(r.out, ref.out, "resumed output equals an uninterrupted run")
    from_journal = from_checkpoint(r)
    check(from_journal >= 20, "the killed run's saved vectors were used: %s" % r.stats)
    eq(from_journal + len(sent(log)), len(recs), "every record from the journal or sent once")
    check(answered_before <= 400 // 20, "sanity: the first run was cut short")


@test
def every_line_on_stdout_was_journaled_first():
    d = tmpdir()
    journal = os.path.join(d, "j")
    recs = records(300)
    with Server("--latency-ms", "100") as srv:
        p = spawn(base_args(srv, DIMS, "--checkpoint", journal, "--batch-inputs", "10", "-j", "3"),
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(jsonl(*recs))
        p.stdin.close()
        srv.wait_for(lambda e: sum(x["status"] == 200 for x in e) >= 6, what="6 answers")
        p.kill()
        out = p.stdout.read()
        p.stderr.read()
        p.wait()
    lines = [json.loads(l) for l in out.split(b"\n") if l.endswith(b"}")]
    check(lines, "the killed run wrote some lines")
    done = {x["id"] for x in lines}
    # A server that fails every request: each record written before the kill
    # must be answered from the journal alone.
    with Server("--faults", "every:1:500") as srv:
        r = run(base_args(srv, DIMS, "--checkpoint", journal, "--max-attempts", "1"),
                stdin=jsonl(*[x for x in recs if x["id"] in done]))
        log = srv.requests()
    r.expect_rc(0)
    eq(log, [], "requests for records already written")
    eq(len(r.lines), len(done), "records answered from the journal")


def damage_and_rerun(damage, notice):
    """Journals 50 records, damages the journal's end with damage(path),
    reruns: the damage is reported, cut off, and only the last record (the
    one it spoiled) is sent again, with the same output."""
    d = tmpdir()
    journal = os.path.join(d, "j")
    stdin = jsonl(*records(50))
    with Server() as srv:
        first = run(base_args(srv, DIMS, "--checkpoint", journal, "--batch-inputs", "10"),
                    stdin=stdin)
        damage(journal)
        r = run(base_args(srv, DIMS, "--checkpoint", journal), stdin=stdin)
        log = srv.requests()
    r.expect_rc(0)
    eq(r.out, first.out, "output after recovery")
    check(b"warning" in r.err and notice in r.err, "the notice: %r" % r.err[:300])
    eq(len(sent(log)), 51, "only the damaged record was sent again")


@test
def torn_tail_is_cut_off_with_a_notice():
    def tear(path):  # a crash in the middle of the last record, then junk
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 7)
        with open(path, "ab") as f:
            f.write(b"\x00garbage")
    damage_and_rerun(tear, b"dropped")


@test
def flipped_byte_in_the_last_record_is_cut_off():
    def flip(path):  # a float of the last vector goes bad
        with open(path, "r+b") as f:
            f.seek(-5, os.SEEK_END)
            b = f.read(1)
            f.seek(-5, os.SEEK_END)
            f.write(bytes([b[0] ^ 0x40]))
    damage_and_rerun(flip, b"checksum")


@test
def journal_of_other_settings_is_refused():
    d = tmpdir()
    journal = os.path.join(d, "j")
    with Server() as srv:
        run(base_args(srv, DIMS, "--checkpoint", journal), stdin=jsonl(*records(5))).expect_rc(0)
        r = run(base_args(srv, 16, "--checkpoint", journal), stdin=jsonl(*records(5)))
        r2 = run(base_args(srv, DIMS, "--checkpoint", journal, "-m", "text-embedding-3-large"),
                 stdin=jsonl(*records(5)))
        log = srv.requests()
    r.expect_rc(1)
    check(b"dimensions=8" in r.err and b"dimensions=16" in r.err, r.err)
    r2.expect_rc(1)
    check(b"model=text-embedding-3-small" in r2.err, r2.err)
    eq(len(log), 1, "nothing sent by refused runs")
    not_journal = os.path.join(d, "notes.txt")
    with open(not_journal, "w") as f:
        f.write("my notes\n")
    with Server() as srv:
        r3 = run(base_args(srv, DIMS, "--checkpoint", not_journal), stdin=jsonl(*records(2)))
    r3.expect_rc(1)
    with open(not_journal) as f:
        eq(f.read(), "my notes\n", "a file that is not a journal is left alone")


@test
def compact_keeps_what_the_run_used():
    d = tmpdir()
    journal = os.path.join(d, "j")
    all_recs = records(200)
    with Server() as srv:
        run(base_args(srv, DIMS, "--checkpoint", journal), stdin=jsonl(*all_recs)).expect_rc(0)
        big = os.path.getsize(journal)
        r = run(base_args(srv, DIMS, "--checkpoint", journal, "--compact"),
                stdin=jsonl(*all_recs[:50]))
        small = os.path.getsize(journal)
        base = len(srv.wait_for(lambda e: True))
        again = run(base_args(srv, DIMS, "--checkpoint", journal), stdin=jsonl(*all_recs))
        log = srv.requests()
    r.expect_rc(0)
    check(small < big / 2, "compacted from %d to %d bytes" % (big, small))
    eq(os.stat(journal).st_mode & 0o777, 0o600, "mode after compaction")
    again.expect_rc(0)
    eq(sorted(t for e in log[base:] for t in e["texts"]),
       sorted(x["text"] for x in all_recs[50:]), "texts dropped by compaction are sent again")
    u = run(["--compact"], stdin=b"")
    u.expect_rc(1)


if __name__ == "__main__":
    main()
