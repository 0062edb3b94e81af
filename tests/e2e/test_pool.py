#!/usr/bin/env python3
"""Endpoint pools (--base-url given several times): batches spread over the
servers, a dead one set aside, one killed mid-run and restarted, and every
record embedded and verified."""

import os
import signal
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, check, corpus, eq, main, run, spawn, test, tmpdir,  # noqa: E402
                     verify)

DIMS = 8


def items(c):
    return list(zip(c.expected_id_text, [e["text"] for e in c.expected]))


def refusing_url():
    """A loopback port bound but not listening: connections are refused.
    The socket is returned so the port stays reserved."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, "http://127.0.0.1:%d/v1" % s.getsockname()[1]


@test
def batches_spread_over_the_pool_and_a_dead_endpoint_is_set_aside():
    c = corpus(3000, seed=42)  # no section over 8191 tokens: verify wants whole texts
    dead, dead_url = refusing_url()
    servers = [Server("--shuffle") for _ in range(3)]
    try:
        for s in servers:
            s.start()
        urls = [servers[0].url, dead_url, servers[1].url, servers[2].url]
        args = ["--dimensions", DIMS, "--batch-inputs", "50", "-j", "2"]
        for u in urls:
            args += ["--base-url", u]
        r = run(args + [c.path])
        logs = [s.stop() for s in servers]
    finally:
        dead.close()
        for s in servers:
            s.stop()
    r.expect_rc(0)
    verify(r.out, items(c), DIMS)
    eps = r.stats["endpoints"]
    eq([e["url"] for e in eps], urls, "endpoints in --base-url order")
    eq([eps[i]["requests"] for i in (0, 2, 3)], [len(l) for l in logs],
       "requests per live endpoint, by its server's log")
    check(eps[1]["failures"] == eps[1]["requests"] >= 3, "the dead one failed: %r" % eps[1])
    check(eps[1]["set_aside"] >= 1, "and was set aside: %r" % eps[1])
    total = sum(len(l) for l in logs)
    for i, l in enumerate(logs):
        check(len(l) >= total // 5, "server %d took its share: %d of %d" % (i, len(l), total))
    check("endpoints: " in r.err_text, "the summary lists the endpoints: %r" % r.err_text[-600:])


@test
def a_server_killed_mid_run_and_restarted_loses_nothing():
    c = corpus(3000, seed=42)
    d = tmpdir()
    out_path = os.path.join(d, "out.jsonl")
    stats_path = os.path.join(d, "stats.json")
    servers = [Server("--latency-ms", "100") for _ in range(4)]
    restarted = None
    try:
        for s in servers:
            s.start()
        args = ["--dimensions", str(DIMS), "--batch-inputs", "25", "-j", "2",
                "--stats", stats_path, "-q"]
        for s in servers:
            args += ["--base-url", s.url]
        with open(out_path, "wb") as out, open(c.path, "rb") as inp:
            p = spawn(args, stdin=inp, stdout=out, stderr=subprocess.PIPE)
        victim = servers[1]
        victim.wait_for(lambda e: len(e) >= 3, what="the victim's third request")
        victim.proc.send_signal(signal.SIGKILL)
        before_kill = victim.stop()
        # The others go on meanwhile: wait for ten more answers among them.
        seen = sum(len(s.entries) for s in servers if s is not victim)
        servers[0].wait_for(lambda e: sum(len(s.entries) for s in servers if s is not victim)
                            >= seen + 10, what="ten more answers elsewhere")
        restarted = Server("--latency-ms", "100", "--port", str(victim.port))
        restarted.start()
        eq(restarted.port, victim.port, "restarted on the same port")
        err = p.communicate(timeout=120)[1]
        logs = [s.stop() for s in servers if s is not victim] + [restarted.stop()]
    finally:
        for s in servers + ([restarted] if restarted else []):
            s.stop()
    eq(p.returncode, 0, "exit status; stderr %r" % err[-800:])
    with open(out_path, "rb") as f:
        verify(f.read(), items(c), DIMS)
    check(len(before_kill) >= 3, "the victim served before it was killed")
    for i, l in enumerate(logs[:3]):
        check(len(l) > 10, "live server %d took a share: %d" % (i, len(l)))
    print("per-server requests: live %s, victim %d before the kill, %d after the restart" % (
        [len(l) for l in logs[:3]], len(before_kill), len(logs[3])))


if __name__ == "__main__":
    main()
