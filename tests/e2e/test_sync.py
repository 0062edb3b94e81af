#!/usr/bin/env python3
"""embedpipe end to end: incremental sync. The key column is the content key;
--known leaves out what the table already holds, writing only new and changed
records (and sending only those texts); --deleted lists the known ids the
input no longer carries, and withholds them whenever that could be wrong: a
line whose id could not be read, a run that stopped early. Rejected records
keep their ids; shards list only their own; the last line of an id wins."""

import os
import re
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, base_args, check, eq, jsonl, main, run,  # noqa: E402
                     spawn, test, tmpdir)

DIMS = 4
COLS = ["--format", "tsv", "--columns", "id,key,embedding"]

# Ids that text COPY escapes, and ones that look like its markers.
AWKWARD = ["tab\there", "new\nline", "back\\slash", "cr\rhere", "caf\u00e9 \u6771",
           "\\N", "\\.", "quote\"d, comma", "plain"]


def copy_text(value):
    """A value as PostgreSQL's text COPY writes it."""
    return (value.replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def rows(out):
    """(id as COPY text, key, vector) per TSV output line."""
    return [tuple(line.split("\t")) for line in out.decode().splitlines()]


def known_file(path, out):
    """What `\\copy (SELECT id, key FROM t) TO path` gives after loading `out`."""
    with open(path, "w", encoding="utf-8") as f:
        for r in rows(out):
            f.write("%s\t%s\n" % (r[0], r[1]))


def loaded(srv, recs, d, *more):
    """Runs over `recs` and writes the known file that `\\copy` would export
    after loading the output; returns its path."""
    first = run(base_args(srv, DIMS, *COLS, *more), stdin=jsonl(*recs))
    first.expect_rc(0)
    known = os.path.join(d, "known")
    known_file(known, first.out)
    return known


def deleted_list(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def sent(log):
    return [t for e in log if e["status"] == 200 for t in e["texts"]]


def corpus():
    recs = [{"id": i, "text": "awkward id %d text" % n} for n, i in enumerate(AWKWARD)]
    recs += [{"id": n, "text": "numbered %d" % n} for n in range(5)]
    return recs


@test
def key_column_is_the_content_key_across_runs_formats_and_ids():
    recs = [{"id": "a", "text": "alpha"}, {"id": "b", "text": "alpha"},
            {"id": "c", "text": "  alpha\u00a0"}, {"id": "d", "text": "beta"}]
    with Server() as srv:
        tsv = run(base_args(srv, DIMS, *COLS), stdin=jsonl(*recs))
        again = run(base_args(srv, DIMS, *COLS), stdin=jsonl(*recs))
        js = run(base_args(srv, DIMS, "--columns", "id,key,embedding"), stdin=jsonl(*recs))
        other = run(base_args(srv, 8, *COLS), stdin=jsonl(*recs))
    for r in (tsv, again, js, other):
        r.expect_rc(0)
    keys = [r[1] for r in rows(tsv.out)]
    for k in keys:
        check(re.fullmatch("[0-9a-f]{64}", k), "key %r is 64 lower-case hex digits" % k)
    # The same normalized text has the same key, whatever its id; pinned, so
    # that a change of the key (which would re-embed every table) fails here.
    eq(keys[0], "efcc30a35862ecbd5cb1f98e6bff83ef8ca4f61506e10ed701de1df330cd02d6",
       "key of 'alpha' at 4 dimensions")
    eq(keys[1:3], [keys[0], keys[0]], "keys of the same normalized text")
    check(keys[3] != keys[0], "another text, another key")
    eq([r[1] for r in rows(again.out)], keys, "keys of a second run")
    eq([line.split(b'"key":"')[1][:64].decode() for line in js.out.splitlines()], keys,
       "keys in JSONL")
    check(all(a[1] != b[1] for a, b in zip(rows(other.out), rows(tsv.out))),
          "--dimensions changes every key")


@test
def known_writes_only_new_and_changed_and_lists_the_deleted():
    d = tmpdir()
    known, deleted = os.path.join(d, "known"), os.path.join(d, "deleted")
    old = corpus()
    changed = {"new\nline", 2}
    removed = {"back\\slash", "\\.", 4}
    new = [dict(r, text=r["text"] + " (edited)") if r["id"] in changed else r
           for r in old if r["id"] not in removed]
    new.insert(3, {"id": "fresh\tone", "text": "a new section"})
    new.append({"id": 99, "text": "another new section"})
    with Server("--log-texts") as srv:
        first = run(base_args(srv, DIMS, *COLS), stdin=jsonl(*old))
        base = len(srv.wait_for(lambda e: True))
        first.expect_rc(0)
        known_file(known, first.out)
        r = run(base_args(srv, DIMS, *COLS, "--known", known, "--deleted", deleted),
                stdin=jsonl(*new))
        full = run(base_args(srv, DIMS, *COLS), stdin=jsonl(*new))
        log = srv.requests()
    r.expect_rc(0)
    full.expect_rc(0)
    written = [x for x in new if x["id"] in changed or x["id"] in ("fresh\tone", 99)]
    eq(sorted(sent(log[base:len(log) - 1])), sorted(x["text"] for x in written),
       "texts sent by the --known run")
    # Exactly the full run's lines of the new and changed records, in input order.
    want = [line for line in full.out.decode().splitlines(True)
            if line.split("\t")[0] in {copy_text(str(x["id"])) for x in written}]
    eq(r.out.decode(), "".join(want), "output of the --known run")
    eq(deleted_list(deleted), "back\\\\slash\n\\\\.\n4\n", "--deleted")
    eq(r.stats["known"], {"unchanged": len(new) - 4, "changed": 2, "new": 2, "deleted": 3,
                          "deletions_withheld": None}, "--stats known")
    check("--known: %d unchanged, 2 changed, 2 new; 3 deleted" % (len(new) - 4) in r.err_text,
          "summary line: %s" % r.err_text)


@test
def the_last_line_of_a_repeated_id_is_the_one_written_last():
    d = tmpdir()
    with Server() as srv:
        known = loaded(srv, [{"id": "x", "text": "one"}, {"id": "y", "text": "two"}], d)
        # x: unchanged, then changed: only the changed line. y: changed,
        # then unchanged again: both, so that the last one loaded is the
        # input's last, as a full load would have it.
        r = run(base_args(srv, DIMS, *COLS, "--known", known),
                stdin=jsonl({"id": "x", "text": "one"}, {"id": "x", "text": "uno"},
                            {"id": "y", "text": "dos"}, {"id": "y", "text": "two"}))
        ref = run(base_args(srv, DIMS, *COLS),
                  stdin=jsonl({"id": "x", "text": "uno"}, {"id": "y", "text": "dos"},
                              {"id": "y", "text": "two"}))
    r.expect_rc(0)
    eq(r.out, ref.out, "lines written")
    eq((r.stats["known"]["unchanged"], r.stats["known"]["changed"]), (1, 3),
       "unchanged, changed")


@test
def a_rejected_record_keeps_its_id_out_of_the_deleted():
    d = tmpdir()
    deleted = os.path.join(d, "deleted")
    with Server() as srv:
        known = loaded(srv, [{"id": "keep", "text": "kept"}, {"id": "bad", "text": "was fine"},
                             {"id": "gone", "text": "left"}], d)
        r = run(base_args(srv, DIMS, *COLS, "--known", known, "--deleted", deleted),
                stdin=jsonl({"id": "keep", "text": "kept"}, {"id": "bad", "text": ""}))
    r.expect_rc(2)
    eq(deleted_list(deleted), "gone\n", "--deleted")


@test
def a_line_without_a_readable_id_withholds_every_deletion():
    d = tmpdir()
    deleted = os.path.join(d, "deleted")
    with Server() as srv:
        known = loaded(srv, [{"id": "a", "text": "kept"}, {"id": "b", "text": "left"}], d)
        with open(deleted, "w") as f:
            f.write("stale\n")  # an earlier run's list must not survive
        stdin = jsonl({"id": "a", "text": "kept"}) + b'{"id": "b", "text": "cut off\n' + \
            jsonl({"text": "no id at all"})
        r = run(base_args(srv, DIMS, *COLS, "--known", known, "--deleted", deleted),
                stdin=stdin)
    r.expect_rc(2)
    eq(deleted_list(deleted), "", "--deleted")
    check("warning: no deletions written to %s: the id of -:2 could not be read" % deleted
          in r.err_text, "stderr says why: %s" % r.err_text)
    eq(r.stats["known"]["deletions_withheld"], "the id of -:2 could not be read",
       "--stats deletions_withheld")


@test
def an_id_that_is_not_utf8_withholds_every_deletion():
    """Its bytes read back as U+FFFD, which may be another id's spelling."""
    d = tmpdir()
    deleted = os.path.join(d, "deleted")
    with Server() as srv:
        known = loaded(srv, [{"id": "a", "text": "kept"}, {"id": "b", "text": "left"}], d)
        r = run(base_args(srv, DIMS, *COLS, "--known", known, "--deleted", deleted),
                stdin=jsonl({"id": "a", "text": "kept"}) + b'{"id":"b\xff","text":"x"}\n')
    r.expect_rc(2)
    eq(deleted_list(deleted), "", "--deleted")
    eq(r.stats["known"]["deletions_withheld"], "the id of -:2 could not be read", "withheld")


@test
def a_run_that_stops_early_writes_no_deletions():
    d = tmpdir()
    deleted = os.path.join(d, "deleted")
    recs = [{"id": "r%d" % i, "text": "text %d" % i} for i in range(40)]
    with Server() as srv:
        known = loaded(srv, recs, d)
    # Half the corpus, all changed, and the API refuses the key: nothing
    # the run did not finish reading may be taken as gone.
    with Server("--faults", "every:1:403") as srv:
        r = run(base_args(srv, DIMS, *COLS, "--known", known, "--deleted", deleted),
                stdin=jsonl(*[dict(x, text=x["text"] + "!") for x in recs[:20]]))
    r.expect_rc(3)
    eq(deleted_list(deleted), "", "--deleted")
    eq(r.stats["known"]["deletions_withheld"], "the run did not finish", "withheld")


@test
def an_interrupted_run_writes_no_deletions():
    d = tmpdir()
    deleted = os.path.join(d, "deleted")
    recs = [{"id": "r%d" % i, "text": "text %d" % i} for i in range(30)]
    with Server() as srv:
        known = loaded(srv, recs, d)
    # r0..r9 gone, the rest changed; the batch holding "text 12" hangs and
    # SIGTERM comes once it is at the server.
    path = os.path.join(d, "in.jsonl")
    with open(path, "wb") as f:
        f.write(jsonl(*[dict(x, text=x["text"] + "!") for x in recs[10:]]))
    with Server("--faults", "text:text 12!:hang") as srv:
        with spawn(base_args(srv, DIMS, *COLS, "--known", known, "--deleted", deleted,
                             "--batch-inputs", "5", "-j", "2", path),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
            srv.wait_for(lambda e: any("text 12!" in t for x in e for t in x["texts"]),
                         what="the hanging request")
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=30)
    eq(p.returncode, 130, "exit status (stderr %r)" % err[-500:])
    eq(deleted_list(deleted), "", "--deleted")
    check(b"no deletions written to %s: the run did not finish" % deleted.encode() in err,
          "stderr says why: %r" % err[-500:])


@test
def an_input_that_cannot_be_read_withholds_every_deletion():
    """Two inputs; the second is removed after the start-up checks, while
    embedpipe reads the first (a FIFO the test feeds). Its ids were never
    read: none may be listed, and --compact must keep their vectors."""
    d = tmpdir()
    deleted = os.path.join(d, "deleted")
    journal = os.path.join(d, "journal")
    a = [{"id": "a%d" % i, "text": "first file %d" % i} for i in range(3)]
    b = [{"id": "b%d" % i, "text": "second file %d" % i} for i in range(3)]
    fifo, second = os.path.join(d, "a.fifo"), os.path.join(d, "b.jsonl")
    with Server() as srv:
        known = loaded(srv, a + b, d, "--checkpoint", journal)
        os.mkfifo(fifo)
        with open(second, "wb") as f:
            f.write(jsonl(*b))
        with spawn(base_args(srv, DIMS, *COLS, "--known", known, "--deleted", deleted,
                             "--checkpoint", journal, "--compact", fifo, second),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
            with open(fifo, "wb") as f:  # opens once embedpipe reads it
                os.remove(second)
                f.write(jsonl(*a))
            out, err = p.communicate(timeout=30)
    eq(p.returncode, 2, "exit status (stderr %r)" % err[-500:])
    eq(deleted_list(deleted), "", "--deleted")
    why = "cannot read %s: No such file or directory" % second
    check(("warning: no deletions written to %s: %s" % (deleted, why)).encode() in err,
          "stderr says why: %r" % err[-600:])
    check(b"checkpoint not compacted" in err, "the journal keeps every vector: %r" % err[-600:])


@test
def shards_list_only_their_own_known_ids():
    d = tmpdir()
    recs = [{"id": "s%d" % i, "text": "text %d" % i} for i in range(60)]
    nums = [{"id": i, "text": "number %d" % i} for i in range(60)]
    gone = {"s3", "s17", "s40", "s59"}
    with Server() as srv:
        for corpus_, name in ((recs, "strings"), (nums, "numbers")):
            known = loaded(srv, corpus_, d)
            lost = gone if name == "strings" else {3, 17, 40, 59}
            listed = []
            for k in (1, 2, 3):
                deleted = os.path.join(d, "deleted%d" % k)
                r = run(base_args(srv, DIMS, *COLS, "--known", known, "--deleted", deleted,
                                  "--shard", "%d/3" % k),
                        stdin=jsonl(*[x for x in corpus_ if x["id"] not in lost]))
                r.expect_rc(0)
                eq(r.out, b"", "shard %d output (%s)" % (k, name))
                with open(deleted) as f:
                    listed += f.read().split()
            eq(sorted(listed), sorted(str(x) for x in lost), "deleted over all shards (%s)" % name)


@test
def known_with_the_batch_api_writes_what_a_normal_run_writes():
    """--batch-api reads its input twice: the second pass must decide
    unchanged or written as the first did (the last line of an id wins)."""
    d = tmpdir()
    recs = [{"id": "r%d" % i, "text": "text %d" % i} for i in range(30)]
    new = [dict(r, text=r["text"] + "!") if i % 7 == 0 else r
           for i, r in enumerate(recs) if i != 5]
    new += [{"id": "r3", "text": "text 3"}, {"id": "r3", "text": "changed 3"}]
    with Server() as srv:
        known = loaded(srv, recs, d)
        normal = run(base_args(srv, DIMS, *COLS, "--known", known, "--deleted",
                               os.path.join(d, "deleted1")), stdin=jsonl(*new))
        batch = run(base_args(srv, DIMS, *COLS, "--known", known, "--deleted",
                              os.path.join(d, "deleted2"), "--batch-api", "--checkpoint",
                              os.path.join(d, "ckpt")), stdin=jsonl(*new))
    normal.expect_rc(0)
    batch.expect_rc(0)
    eq(batch.out, normal.out, "output of the --batch-api run")
    eq(deleted_list(os.path.join(d, "deleted2")), "r5\n", "--deleted")
    eq(batch.stats["known"], normal.stats["known"], "--stats known")


@test
def a_malformed_known_file_is_a_usage_error_before_any_request():
    d = tmpdir()
    known = os.path.join(d, "known")
    with open(known, "w") as f:
        f.write("a\t%s\nb\t%s\na\t%s\n" % ("0" * 64, "1" * 64, "2" * 64))
    with Server() as srv:
        r = run(base_args(srv, DIMS, *COLS, "--known", known),
                stdin=jsonl({"id": "a", "text": "x"}))
        r2 = run(base_args(srv, DIMS, "--deleted", os.path.join(d, "del")),
                 stdin=jsonl({"id": "a", "text": "x"}))
        log = srv.requests()
    r.expect_rc(1)
    eq(r.err_text.splitlines()[0], "embedpipe: error: --known: %s:3: id a is given twice" % known,
       "message")
    r2.expect_rc(1)
    check("--deleted needs --known" in r2.err_text, "--deleted alone: %s" % r2.err_text)
    eq(r.out + r2.out, b"", "stdout")
    eq(log, [], "requests")


if __name__ == "__main__":
    main()
