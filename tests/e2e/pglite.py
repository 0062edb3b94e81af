"""Real pgvector without a server, for tests and benchmarks (issue 20).

Shared by tests/e2e/test_pgvector.py and scripts/bench-pgvector. Debian 12
packages no pgvector, but PGlite (PostgreSQL compiled to WASM) and its
pgvector extension come from npm: tests/pgvector/pglite.mjs runs one
in-memory database under node and answers SQL sent on its stdin, one JSON
line each way. The packages are pinned in tests/pgvector/package-lock.json
and installed by scripts/install-deps.sh (`npm ci`, into the ignored
tests/pgvector/node_modules). Failures raise AssertionError with what node
said. Python 3 standard library only.
"""

import json
import os
import select
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "tests", "pgvector")
SCRIPT = os.path.join(PACKAGE, "pglite.mjs")


def node_missing():
    """Why PGlite cannot run here (no node on PATH), or None."""
    return None if shutil.which("node") else "node is not installed"


class PGlite:
    """One database for the life of the object; start() on first use.
    timeout: seconds to wait for any one answer (a start takes several)."""

    def __init__(self, timeout=300):
        self.proc = None
        self.timeout = timeout
        self.version = self.pgvector = None
        self._buf = b""

    def start(self):
        if self.proc:
            return
        if not os.path.isdir(os.path.join(PACKAGE, "node_modules", "@electric-sql",
                                          "pglite-pgvector")):
            raise AssertionError("tests/pgvector/node_modules is not installed "
                                 "(scripts/install-deps.sh runs npm ci there)")
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["node", SCRIPT], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr)
        ready = self._answer()
        if "ready" not in ready:
            raise AssertionError("PGlite did not start: %r" % ready)
        self.version, self.pgvector = ready["ready"], ready["pgvector"]

    def _answer(self):
        """The next JSON line from node; an AssertionError if it ends or is
        silent for self.timeout seconds."""
        deadline = time.monotonic() + self.timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError("PGlite gave no answer in %d s" % self.timeout)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self._stderr.seek(0)
                raise AssertionError("PGlite (node) exited %s: %s" % (
                    self.proc.wait(), self._stderr.read().decode(errors="replace")[-2000:]))
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def run(self, sql, params=None, blob=None, out=None):
        """The answer to one statement: {"rows": [...], "ms": N} or
        {"error": "..."}. `blob` is the file `COPY ... FROM '/dev/blob'`
        reads; `out` the file `COPY ... TO '/dev/blob'` writes."""
        self.start()
        request = {"sql": sql}
        if params is not None:
            request["params"] = params
        if blob is not None:
            request["blob"] = os.path.abspath(blob)
        if out is not None:
            request["out"] = os.path.abspath(out)
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        return self._answer()

    def query(self, sql, params=None, blob=None, out=None):
        """The rows of one statement (lists of values); PostgreSQL's refusal
        is an AssertionError."""
        answer = self.run(sql, params, blob, out)
        if "error" in answer:
            raise AssertionError("PGlite refused %s: %s" % (sql[:200], answer["error"]))
        return answer["rows"]

    def stop(self):
        if not self.proc:
            return
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()
        self.proc = None
