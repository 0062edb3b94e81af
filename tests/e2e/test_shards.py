#!/usr/bin/env python3
"""--shard K/N: N processes over one input cover it exactly once, each
record (and each bad line) in one shard, with the same bytes an unsharded
run writes."""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, base_args, check, corpus, eq, main, run, split_lines,  # noqa: E402
                     test, tmpdir)

N = 4


@test
def four_shards_make_the_unsharded_output_exactly():
    c = corpus(2000, seed=31, bad=30, long_=2)
    d = tmpdir()
    with Server("--shuffle") as srv:
        whole = run(base_args(srv, 8, "--errors", os.path.join(d, "all.err"), c.path))
        parts = [run(base_args(srv, 8, "--shard", "%d/%d" % (k, N), "--errors",
                               os.path.join(d, "%d.err" % k), "--checkpoint",
                               os.path.join(d, "%d.ckpt" % k), c.path))
                 for k in range(1, N + 1)]
    whole.expect_rc(2)
    out_lines = []
    err_lines = []
    for k, p in enumerate(parts, 1):
        check(p.rc in (0, 2), "shard %d exit %d: %s" % (k, p.rc, p.err_text[-500:]))
        check(len(p.lines) > 300, "shard %d has its share: %d lines" % (k, len(p.lines)))
        out_lines += p.lines
        err_lines += split_lines(p.errors_text.encode())
        eq(p.stats["records"]["read"] + p.stats["records"]["other_shards"],
           whole.stats["records"]["read"], "shard %d: its lines plus the others'" % k)
    eq(sorted(out_lines), sorted(whole.lines), "union of the shards' output lines")
    ids = [json.loads(l)["id"] for l in out_lines]
    eq(len(ids), len(set(map(json.dumps, ids))), "each id in exactly one shard")
    eq(sorted(err_lines), sorted(split_lines(whole.errors_text.encode())),
       "union of the shards' error records")
    check(sum(1 for l in err_lines if '"id"' not in l) > 0, "bad lines without an id are covered")


@test
def a_bad_shard_spec_is_a_usage_error():
    for spec in ("0/4", "5/4", "2", "x/y"):
        r = run(["--shard", spec, "--dry-run"], stdin=b'{"id":1,"text":"a"}\n', key=None)
        eq(r.rc, 1, "exit status for --shard %s" % spec)
        check("--shard must be K/N" in r.err_text, r.err_text)


if __name__ == "__main__":
    main()
