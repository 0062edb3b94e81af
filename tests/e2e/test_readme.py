#!/usr/bin/env python3
"""The README's commands, run as written: every ```sh block, in order, in
one scratch directory, with `embedpipe` on PATH, the local server as
OPENAI_BASE_URL, and psql pointed at a throwaway cluster. A block must exit
0 and write nothing to stderr that says error. ```text blocks are output
samples or commands that cannot run here (the test command itself)."""

import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, Server, check, clean_env, eq, main, spawn, test,  # noqa: E402
                     tmpdir)
from pgcluster import Cluster  # noqa: E402

BLOCK_RE = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)


def readme_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return BLOCK_RE.findall(f.read())


def scratch_dir():
    """The files the README's commands name: sections.jsonl (the example's
    good records), docs.jsonl (the same with nested fields), examples/."""
    d = tmpdir("readme")
    good = []
    with open(os.path.join(ROOT, "examples", "sections.jsonl"), encoding="utf-8") as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                continue  # the example's deliberately bad lines
            if isinstance(o, dict) and isinstance(o.get("text"), str) and o["text"].strip():
                good.append(o)
    with open(os.path.join(d, "sections.jsonl"), "w", encoding="utf-8") as f:
        for o in good:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")
    with open(os.path.join(d, "docs.jsonl"), "w", encoding="utf-8") as f:
        for o in good:
            f.write(json.dumps({"meta": {"id": o["id"], "url": "https://example.org/%s" % o["id"]},
                                "body": o["text"]}, ensure_ascii=False) + "\n")
    os.symlink(os.path.join(ROOT, "examples"), os.path.join(d, "examples"))
    return d, len(good)


@test
def readme_has_runnable_blocks():
    blocks = readme_blocks()
    check(len(blocks) >= 6, "the README's sh blocks: %d" % len(blocks))
    text = "\n".join(blocks)
    for flag in ("--dry-run", "--checkpoint", "--stats", "--format binary", "\\copy"):
        check(flag in text, "a runnable README example uses %s" % flag)


@test
def readme_commands_run_as_written():
    blocks = readme_blocks()
    d, n = scratch_dir()
    needs_pg = any("psql" in b or "postgres" in b for b in blocks)
    cluster = Cluster(base_env=clean_env) if needs_pg else None
    try:
        if cluster:
            cluster.start()
        with Server() as srv:
            env = cluster.env() if cluster else {}
            env.update(OPENAI_BASE_URL=srv.url)
            for i, block in enumerate(blocks):
                # The block runs embedpipe by name, from PATH.
                p = spawn([], command=["bash", "-e", "-o", "pipefail", "-c", block], env=env,
                          cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                _, err = p.communicate(timeout=300)
                what = "README sh block %d:\n%s" % (i + 1, block)
                if p.returncode != 0:
                    raise AssertionError("%s\nexit %d; stderr:\n%s" % (
                        what, p.returncode, err.decode(errors="replace")[-2000:]))
                check(b"error" not in err, "%s\nstderr: %r" % (what, err[-1000:]))
            requests = srv.requests()
        check(len(requests) > 0, "the commands reached the local server")
        # What the blocks left behind is what the README says they make.
        with open(os.path.join(d, "embeddings.jsonl"), encoding="utf-8") as f:
            whole = f.readlines()
        eq(len(whole), n, "embeddings.jsonl: one line per section")
        with open(os.path.join(d, "all.jsonl"), encoding="utf-8") as f:
            eq(sorted(f.readlines()), sorted(whole),
               "all.jsonl: the four shards' parts together are the unsharded output")
        with open(os.path.join(d, "run.json"), encoding="utf-8") as f:
            stats = json.load(f)
        eq(stats["records"]["from_checkpoint"], n, "the cron rerun answered from its checkpoint")
        eq(stats["requests"]["sent"], 0, "the cron rerun sent nothing")
        if cluster:
            eq(cluster.copy_out("SELECT count(*) FROM docs"), [[str(n)]], "rows loaded into docs")
            eq(cluster.copy_out("SELECT count(*) FROM items"), [[str(n)]],
               "rows examples/postgres/load.sh loaded into items")
    finally:
        if cluster:
            cluster.stop()


if __name__ == "__main__":
    main()
