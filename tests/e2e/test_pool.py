#!/usr/bin/env python3
"""Endpoint pools (--base-url given several times): batches spread over the
servers, a dead one set aside, one killed mid-run and restarted, and every
record embedded and verified."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

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
    # Slow enough answers that requests overlap, so that the least busy
    # endpoint is not always the first.
    servers = [Server("--shuffle", "--latency-ms", "100") for _ in range(3)]
    try:
        for s in servers:
            s.start()
        # However a --base-url ends, its requests go to its own /v1/embeddings.
        urls = [servers[0].url + "/", dead_url, servers[1].url, servers[2].url]
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


class Output:
    """Reads a pipe to its end in a thread, so a test can wait for the
    number of lines it has written so far."""

    def __init__(self, pipe):
        self.data = bytearray()
        self._cond = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe):
        try:
            for chunk in iter(lambda: pipe.read1(1 << 16), b""):
                with self._cond:
                    self.data += chunk
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def wait_lines(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.data.count(b"\n") < n:
                left = deadline - time.monotonic()
                check(left > 0 and not self._done,
                      "waiting for %d output lines, have %d" % (n, self.data.count(b"\n")))
                self._cond.wait(left)

    def join(self):
        self._thread.join(timeout=60)
        return bytes(self.data)


@test
def a_server_killed_mid_run_and_restarted_loses_nothing():
    c = corpus(3000, seed=42)
    with open(c.path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    d = tmpdir()
    stats_path = os.path.join(d, "stats.json")
    servers = [Server("--latency-ms", "100") for _ in range(4)]
    victim = servers[1]
    restarted = None
    try:
        for s in servers:
            s.start()
        args = ["--dimensions", str(DIMS), "--batch-inputs", "25", "-j", "2",
                "--stats", stats_path, "-q"]
        for s in servers:
            args += ["--base-url", s.url]
        with open(os.path.join(d, "stderr"), "w+b") as err_file:
            p = spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_file)
            out = Output(p.stdout)
            fed = records = 0

            def feed(n):
                """Writes the next n records (and the blank lines among
                them, which have no output line)."""
                nonlocal fed, records
                start = fed
                while fed < len(lines) and n > 0:
                    n -= bool(lines[fed].strip())
                    records += bool(lines[fed].strip())
                    fed += 1
                p.stdin.write(b"".join(lines[start:fed]))
                p.stdin.flush()

            def others():
                return sum(len(s.entries) for s in servers if s is not victim)

            # Four batches at a time, each step answered before the next,
            # until the victim has served three; however the load spreads,
            # there is input left for what follows.
            while len(victim.entries) < 3:
                check(fed < len(lines), "the victim never had three requests")
                feed(100)
                out.wait_lines(records)
            victim.proc.send_signal(signal.SIGKILL)
            before_kill = victim.stop()
            # The others go on without it: ten more answers among them.
            seen = others()
            while others() < seen + 10:
                check(fed < len(lines), "fewer than ten answers after the kill")
                feed(100)
                out.wait_lines(records)
            restarted = Server("--latency-ms", "100", "--port", str(victim.port))
            restarted.start()
            eq(restarted.port, victim.port, "restarted on the same port")
            # Then two batches at a time, so that work keeps coming however
            # long the victim's endpoint is set aside, and the rest once the
            # restarted server has had a request. Each 51 records make two
            # batches of 25 that close (as the 26th and the 51st arrive) and
            # start together, the second on another endpoint than the
            # first; the last record goes when input has paused a second,
            # and the next 51 once it is answered.
            while fed < len(lines) and not restarted.entries:
                feed(51)
                out.wait_lines(records)
            feed(len(lines))
            p.stdin.close()
            rc = p.wait(timeout=120)
            output = out.join()
            err_file.seek(0)
            err = err_file.read()
        logs = [servers[0].stop(), restarted.stop(), servers[2].stop(), servers[3].stop()]
    finally:
        for s in servers + ([restarted] if restarted else []):
            s.stop()
    eq(rc, 0, "exit status; stderr %r" % err[-800:])
    verify(output, items(c), DIMS)
    check(len(before_kill) >= 3, "the victim served before it was killed")
    after = logs[1]
    check(len(after) >= 1, "the restarted server got requests")
    eq({e["status"] for e in after}, {200}, "statuses the restarted server answered with")
    with open(stats_path) as f:
        eps = json.load(f)["endpoints"]
    eq([e["url"] for e in eps], [s.url for s in servers], "endpoints in --base-url order")
    for i in (0, 2, 3):
        eq((eps[i]["requests"], eps[i]["failures"]), (len(logs[i]), 0),
           "requests and failures of live endpoint %d, by its server's log" % i)
    # The victim's endpoint: every request it answered, before the kill or
    # after the restart, is in one of its two logs. A request it logged as
    # it was killed may not have reached embedpipe: at most -j of them.
    answered = eps[1]["requests"] - eps[1]["failures"]
    logged = len(before_kill) + len(after)
    check(eps[1]["failures"] >= 1, "embedpipe saw the victim die: %r" % eps[1])
    check(logged - 2 <= answered <= logged,
          "the victim's endpoint answered %d requests, its logs show %d: %r" % (
              answered, logged, eps[1]))
    print("per-server requests: live %s, victim %d before the kill, %d after the restart; "
          "victim's endpoint %r" % ([len(logs[i]) for i in (0, 2, 3)], len(before_kill),
                                    len(after), eps[1]))


if __name__ == "__main__":
    main()
