"""A small end-to-end harness for embedpipe.

Each tests/e2e/test_*.py registers functions with @test and calls main():

    python3 tests/e2e/test_x.py --build build [-k SUBSTRING] [--keep]

prints "PASS: name" / "FAIL: name: why" per test and "N passed, N failed"
last, and exits 1 if any test failed. A test marked @test(xfail="bug") is a
known bug reported to the lead: XFAIL (counted as passed) while it fails,
XPASS (counted as failed, so the mark gets removed) once it passes.

Pieces:
  Server    build/fake_provider on a free loopback port (--port 0, read back
            from --port-file once its "listening on" line shows). Its --log
            is a FIFO that a thread reads as the server writes, so a test can
            wait for a request without sleeping; stop() ends the server with
            SIGTERM and returns every logged request. Always stopped at the end
            of a `with` block.
  spawn()   build/embedpipe (or a command that runs it: a shell, GNU time)
            with an environment cleaned of OPENAI_* and key variables, then
            the test's key in every key variable. The only way tests start
            embedpipe: every run it starts is searched for the key, in all
            its output (pipes as the test read them, the files they went
            to, --errors, --stats, --checkpoint), when the test ends if not
            before; a hit (the key, or 8 consecutive characters of it: a
            partly masked echo) fails the test.
  run()     spawn() to completion with stdin bytes, searched at once;
            returns exit code, stdout, stderr, --errors and --stats.
  corpus()  scripts/gen-corpus output, generated once per parameters.
  verify()  build/verify_embeddings on an output, plus (for small ones) an
            independent Python check of every float and of the exact id and
            carried-field bytes.
No test sleeps to wait for something: it waits on process output, process
exit or the server's log.
"""

import argparse
import http.client
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import fakevec  # noqa: E402


def _load_gencorpus():
    """scripts/gen-corpus as a module, for its normalize()."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader(
        "gencorpus", os.path.join(ROOT, "scripts", "gen-corpus"))
    spec = importlib.util.spec_from_loader("gencorpus", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


gencorpus = _load_gencorpus()

MODEL = "text-embedding-3-small"
# A distinctive key: no output, message or errors file may ever contain it.
# tests/e2e/test_secrets.py reruns the suites with a key of its own.
KEY = os.environ.get("EMBEDPIPE_TEST_KEY") or "sk-e2e-Zq8wX3vN7mP1rT5yK2dLsecret"
# The first summary line on stderr (src/app/summary.cc); the numbers themselves
# are read from --stats.
SUMMARY_RE = re.compile(r"^embedpipe: (?:dry run: )?[0-9,]+ records?: [0-9,]+ (?:would be )?embedded"
                        r"(?: \([^)]*\))?, [0-9,]+ rejected$", re.M)

BUILD = None


def check_sent(sent, want, what="texts sent"):
    """Without --checkpoint, a text identical to one in flight is not sent
    again, but one identical to a text already answered may be: so each text
    of `want` is sent at least once and never more often than it occurs."""
    from collections import Counter
    got, need = Counter(sent), Counter(want)
    eq(sorted(got), sorted(need), what + " (distinct texts)")
    extra = [t[:60] for t in got if got[t] > need[t]]
    check(not extra, "%s: sent more often than they occur: %r" % (what, extra[:3]))


def unique(items):
    """items without repeats, in first-seen order: what embedpipe sends, since
    identical texts in one run are sent once."""
    seen = set()
    return [x for x in items if not (x in seen or seen.add(x))]
TMP = None
_tests = []


def test(fn=None, *, xfail=None):
    """Registers a test. @test(xfail="why") marks a known bug of the binary
    or the server: its failure prints XFAIL and does not fail the run, but
    its passing prints XPASS and does (remove the mark once fixed)."""
    def register(f):
        f.xfail = xfail
        _tests.append(f)
        return f
    return register(fn) if fn is not None else register


def tool(name):
    """The path of build/NAME. Tests start embedpipe only with spawn() or
    run(), never by its path, so that every run is searched for the key."""
    if name == "embedpipe" and sys._getframe(1).f_globals.get("__name__") != __name__:
        raise AssertionError("start embedpipe with harness.spawn() or run(), not by its "
                             "path: they search everything it writes for the API key")
    path = os.path.join(BUILD, name)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s is not built (make %s)" % (path, path))
    return path


def asan_build():
    """Whether build/embedpipe was built with AddressSanitizer."""
    with open(tool("embedpipe"), "rb") as f:
        return b"__asan_init" in f.read()


def tmpdir(prefix="t"):
    return tempfile.mkdtemp(prefix=prefix + "-", dir=TMP)


# --------------------------------------------------------------------------
# Assertions with readable messages.

def eq(got, want, what="value"):
    if got != want:
        g, w = repr(got), repr(want)
        if len(g) > 400:
            g = g[:400] + "..."
        if len(w) > 400:
            w = w[:400] + "..."
        raise AssertionError("%s: got %s, want %s" % (what, g, w))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# --------------------------------------------------------------------------
# The fake provider.

def _read_line(f, deadline):
    """One line from a pipe, waiting at most until deadline (monotonic)."""
    fd = f.fileno()
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("fake_provider did not start: no 'listening' line")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 1)
        if not chunk:
            raise AssertionError("fake_provider exited at start: %r" % buf)
        buf += chunk
    return buf.decode()


class Server:
    """build/fake_provider with the given extra arguments."""

    def __init__(self, *args, log_texts=True):
        self.args = list(args)
        self.log_texts = log_texts
        self.proc = None
        self.entries = []
        self._cond = threading.Condition()
        self._log_done = False
        self.stderr = b""
        self.stats = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        d = tmpdir("server")
        self.dir = d
        self.fifo = os.path.join(d, "log")
        os.mkfifo(self.fifo)
        self.port_file = os.path.join(d, "port")
        self.stats_file = os.path.join(d, "stats.json")
        cmd = [tool("fake_provider"), "--port", "0", "--port-file", self.port_file,
               "--log", self.fifo, "--stats", self.stats_file]
        if self.log_texts:
            cmd.append("--log-texts")
        cmd += self.args
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            line = _read_line(self.proc.stderr, time.monotonic() + 20)
            with open(self.port_file) as f:
                self.port = int(f.read())
            eq(line, "listening on 127.0.0.1:%d\n" % self.port, "fake_provider's first line")
        except BaseException:
            self.stop()
            raise
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        self.url = "http://127.0.0.1:%d/v1" % self.port

    def _read_log(self):
        try:
            with open(self.fifo, "rb") as f:  # blocks until the server opens it
                for raw in f:
                    entry = json.loads(raw)
                    with self._cond:
                        self.entries.append(entry)
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._log_done = True
                self._cond.notify_all()

    def _drain_stderr(self):
        self.stderr += self.proc.stderr.read()

    def wait_for(self, pred, timeout=30, what="a log entry"):
        """Waits until pred(entries) is true; returns the entries."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.entries):
                left = deadline - time.monotonic()
                if left <= 0 or self._log_done:
                    raise AssertionError("timed out waiting for %s in the server log" % what)
                self._cond.wait(left)
            return list(self.entries)

    def control(self, what):
        """POST /fake/WHAT: holds or releases Batch API calls, stops or
        starts the jobs' clock (see fake_provider --help). Returns once the
        server has acted."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", "/fake/" + what, body=b"")
            r = conn.getresponse()
            eq((r.status, r.read()), (200, b"{}"), "answer to POST /fake/" + what)
        finally:
            conn.close()

    def stop(self):
        """Stops the server (SIGTERM) and returns every logged request."""
        if self.proc is None:
            return self.entries
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader.is_alive():
            # The server never opened its log: let the reader's open return.
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
        self._reader.join(timeout=20)
        if hasattr(self, "_drain"):
            self._drain.join(timeout=20)
        if self.proc.stderr:
            self.proc.stderr.close()
        if os.path.exists(self.stats_file):
            with open(self.stats_file) as f:
                self.stats = json.loads(f.read())
        self.proc = None
        return self.entries

    def requests(self):
        """Stops the server and returns the complete log."""
        return self.stop()


# --------------------------------------------------------------------------
# embedpipe.

class Result:
    def __init__(self, args, rc, out, err, errors_text=None, stats=None):
        self.args, self.rc, self.out, self.err = args, rc, out, err
        self.errors_text = errors_text
        self.stats = stats  # the --stats JSON, when the run wrote it

    @property
    def lines(self):
        return split_lines(self.out)

    @property
    def err_text(self):
        return self.err.decode("utf-8", "replace")

    def errors(self):
        """The --errors file as a list of (raw line, parsed object)."""
        check(self.errors_text is not None, "run had no --errors file")
        return [(l[:-1] if l.endswith("\n") else l, json.loads(l))
                for l in split_lines(self.errors_text.encode())]

    def expect_rc(self, rc):
        if self.rc != rc:
            raise AssertionError("exit status %d, want %d; stderr:\n%s" % (
                self.rc, rc, self.err_text[-3000:]))

    def summary(self):
        """The summary's numbers, from --stats, after checking that stderr has
        the summary too: embedded, rejected, requests, retries, rate-limited."""
        check(SUMMARY_RE.search(self.err_text), "no summary on stderr: %r" % self.err_text[-500:])
        check(self.stats is not None, "the run wrote no --stats file")
        s = self.stats
        return (s["records"]["embedded"], s["records"]["rejected"], s["requests"]["sent"],
                s["requests"]["retries"]["total"], s["requests"]["rate_limited"])


def split_lines(data):
    """UTF-8 bytes as str lines, each with its "\\n", split at "\\n" only
    (str.splitlines would also split at U+2028 and others)."""
    text = data.decode("utf-8")
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


_key_vars = None


def key_vars():
    """Every variable a provider reads its key from, as `embedpipe --help`
    names them (OPENAI_API_KEY, COHERE_API_KEY, ...)."""
    global _key_vars
    if _key_vars is None:
        text = subprocess.run([tool("embedpipe"), "--help"], capture_output=True,
                              check=True).stdout.decode()
        _key_vars = sorted(set(re.findall(r"\b[A-Z][A-Z0-9_]*_API_KEY\b", text)))
        check("OPENAI_API_KEY" in _key_vars, "no key variables in --help: %r" % _key_vars)
    return _key_vars


def clean_env(key=KEY, extra=None):
    """The environment runs start from: no OPENAI_* settings, no key variable
    of the caller's own, no proxies (libcurl would send 127.0.0.1 traffic to
    a proxy named in the environment); then `key`, unless None, in every key
    variable, so that whichever one a run reads, the search below would
    find the key wherever it leaked; then `extra`."""
    drop = set(key_vars())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OPENAI_") and k not in drop and not k.lower().endswith("_proxy")}
    if key is not None:
        env.update((v, key) for v in drop)
    if extra:
        env.update(extra)
    return env


def _flag_value(args, flag):
    """The value of `flag` in args (`--flag V` or `--flag=V`), or None."""
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
    return None


def _errors_path(args):
    return _flag_value(args, "--errors")


# A run of this many characters of the key is a leak too: a server's partly
# masked echo of it ("sk-e2e-Z*********cret", as OpenAI masks keys) holds one.
KEY_RUN = 8


def key_runs(key=KEY):
    """Every KEY_RUN consecutive bytes of key; the key itself holds them all."""
    k = key.encode()
    return sorted({k[i:i + KEY_RUN] for i in range(len(k) - KEY_RUN + 1)} or {k})


def find_key(data, key=KEY):
    """Where in data the key, or a run of KEY_RUN of its characters, starts
    (the earliest), and how long it is; None if nowhere."""
    hits = [(data.find(r), len(r)) for r in key_runs(key) if r in data]
    return min(hits) if hits else None


def no_key_leak(*texts, key=KEY):
    for t in texts:
        if t is None:
            continue
        if isinstance(t, str):
            t = t.encode("utf-8", "surrogateescape")
        hit = find_key(t, key)
        if hit:
            at, n = hit
            whole = t[at:at + len(key)] == key.encode()
            what, n = (b"<THE KEY>", len(key)) if whole else (b"<PART OF THE KEY>", n)
            context = t[max(0, at - 150):at] + what + t[at + n:at + n + 100]
            raise AssertionError("the API key appears in the output: ...%r..." % context)


_bin_dir = None


def _embedpipe_on_path():
    """A directory whose only entry, "embedpipe", is build/embedpipe."""
    global _bin_dir
    if _bin_dir is None:
        _bin_dir = tmpdir("bin")
        os.symlink(tool("embedpipe"), os.path.join(_bin_dir, "embedpipe"))
    return _bin_dir


class _Tap:
    """A pipe from a run as the test reads it, keeping what was read for the
    search. Read it through these methods, never os.read on its fileno()."""

    def __init__(self, f, seen):
        self._f, self._seen = f, seen

    def __getattr__(self, name):
        return getattr(self._f, name)

    def _keep(self, data):
        self._seen.append(data)
        return data

    def read(self, *a):
        return self._keep(self._f.read(*a))

    def read1(self, *a):
        return self._keep(self._f.read1(*a))

    def readline(self, *a):
        return self._keep(self._f.readline(*a))


# Runs started (spawn) and not yet searched. main() searches what a test
# left after it ends.
_unsearched = []


class Embedpipe(subprocess.Popen):
    """A run of build/embedpipe started by spawn(). search() looks for the
    key in every byte the run wrote: what the test read from its stdout and
    stderr pipes (through communicate() or the pipe objects), the files they
    were redirected to, and its --errors, --stats and --checkpoint files
    (with the journal's .compact and the Batch API's .batch)."""

    def __init__(self, argv, args, key, cwd, **popen):
        self.keys = {KEY} | ({key} if key else set())
        self._seen = []
        self._files = [f.name for f in (popen.get("stdout"), popen.get("stderr"))
                       if hasattr(f, "name") and isinstance(f.name, str)]
        journal = _flag_value(args, "--checkpoint")
        named = [_flag_value(args, "--errors"), _flag_value(args, "--stats"), journal]
        if journal:
            named += [journal + ".compact", journal + ".batch"]
        self._files += [p if os.path.isabs(p) or cwd is None else os.path.join(cwd, p)
                        for p in named if p]
        self._cwd = cwd
        super().__init__(argv, cwd=cwd, **popen)
        _unsearched.append(self)
        if self.stdout:
            self.stdout = _Tap(self.stdout, self._seen)
        if self.stderr:
            self.stderr = _Tap(self.stderr, self._seen)

    def __exit__(self, *exc):
        """`with spawn(...) as p:` ends a run the test left going (it
        failed, or wanted the process gone) before closing its pipes."""
        if self.poll() is None:
            self.kill()
        return super().__exit__(*exc)

    def communicate(self, *a, **k):
        out, err = super().communicate(*a, **k)
        self._seen += [out, err]
        return out, err

    def search(self):
        """Raises AssertionError if the key is anywhere the run wrote. Ends
        the run first if it is still going."""
        if self in _unsearched:
            _unsearched.remove(self)
        if self.poll() is None:
            self.kill()
            self.wait()
        texts = [t.encode("utf-8", "surrogateescape") if isinstance(t, str) else t
                 for t in self._seen if t]
        for path in self._files:
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    texts.append(f.read())
        for key in self.keys:
            try:
                no_key_leak(b"".join(texts), key=key)
            except AssertionError as e:
                raise AssertionError("%s: %s" % (" ".join(map(str, self.args)), e))

    def result(self, out, err):
        """The Result of the ended run, with its --errors and --stats files."""
        args = [str(a) for a in self.args]
        texts = {}
        for flag in ("--errors", "--stats"):
            path = _flag_value(args, flag)
            if path and self._cwd and not os.path.isabs(path):
                path = os.path.join(self._cwd, path)
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    texts[flag] = f.read().decode("utf-8")
        stats = texts.get("--stats")
        return Result(args, self.returncode, out, err, texts.get("--errors"),
                      json.loads(stats) if stats else None)


def spawn(args, command=None, key=KEY, env=None, cwd=None, stats=False, terminal=False,
          **popen):
    """Starts build/embedpipe with `args`, the way every e2e test starts it:
    with clean_env(key, env), and searched for the key (Embedpipe.search) by
    main() once the test ends, if not before. `command`, when given, is run
    instead, followed by `args`; it starts embedpipe by that name, which is
    first on its PATH (["/usr/bin/time", ..., "embedpipe"], a shell), or is
    another build of it. With `stats`, --stats goes to a temporary file
    unless args name one. With `terminal`, stderr is a pseudo-terminal whose
    other end the test reads as p.terminal. Other keywords go to
    subprocess.Popen."""
    args = [str(a) for a in args]
    if stats and _flag_value(args, "--stats") is None:
        args = ["--stats", os.path.join(tmpdir("stats"), "stats.json")] + args
    full = clean_env(key, env)
    full["PATH"] = _embedpipe_on_path() + os.pathsep + full.get("PATH", "")
    argv = list(command) + args if command else [tool("embedpipe")] + args
    if terminal:
        master, popen["stderr"] = pty.openpty()
    p = Embedpipe(argv, args, key, cwd, env=full, **popen)
    if terminal:
        os.close(popen["stderr"])
        p.terminal = _Tap(os.fdopen(master, "rb"), p._seen)
    return p


def run(args, stdin=b"", key=KEY, env=None, timeout=90, cwd=None, stats=True):
    """Runs build/embedpipe to completion and searches what it wrote for the
    key. Unless the test passes --stats itself (or stats=False), the run
    writes one to a temporary file, read into Result.stats."""
    p = spawn(args, key=key, env=env, cwd=cwd, stats=stats, stdin=subprocess.PIPE,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    p.search()
    return p.result(out, err)


def base_args(server, dims=None, *more):
    a = ["--base-url", server.url]
    if dims:
        a += ["--dimensions", str(dims)]
    return a + list(more)


# --------------------------------------------------------------------------
# Corpora and expectations.

_corpora = {}


class Corpus:
    def __init__(self, d, sections, seed, bad, long_):
        self.path = os.path.join(d, "corpus.jsonl")
        self.expected_path = os.path.join(d, "expected.jsonl")
        self.manifest_path = os.path.join(d, "bad.jsonl")
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "gen-corpus"),
               "--sections", str(sections), "--seed", str(seed), "--bad-lines", str(bad),
               "--long", str(long_), "--out", self.path, "--expected", self.expected_path,
               "--bad-manifest", self.manifest_path]
        subprocess.run(cmd, check=True)
        with open(self.path, "rb") as f:
            self.data = f.read()
        with open(self.expected_path, encoding="utf-8") as f:
            self.expected = [json.loads(l) for l in f]
        with open(self.expected_path, encoding="utf-8") as f:
            # The id exactly as JSON text, as embedpipe must write it.
            self.expected_id_text = [re.match(r'\{"id":(.*?),"text":', l).group(1) for l in f]
        with open(self.manifest_path, encoding="utf-8") as f:
            self.manifest = [json.loads(l) for l in f]


def corpus(sections, seed=1, bad=0, long_=0):
    k = (sections, seed, bad, long_)
    if k not in _corpora:
        _corpora[k] = Corpus(tmpdir("corpus"), sections, seed, bad, long_)
    return _corpora[k]


def write_expected(path, items):
    """items: (id JSON text, normalized text)."""
    with open(path, "w", encoding="utf-8") as f:
        for id_text, text in items:
            f.write('{"id":%s,"text":%s}\n' % (id_text, json.dumps(text, ensure_ascii=False)))


def split_output_line(line):
    """(id JSON text, embedding array text, carried fields text or '') of one
    output line, checking its frame: {"id":..,"embedding":[..](,..)}\\n."""
    check(line.endswith("}\n"), "output line does not end with }\\n: %r" % line[-80:])
    check(line.startswith('{"id":'), "output line does not start with {\"id\": %r" % line[:80])
    k = line.find(',"embedding":[')
    check(k > 0, "no embedding in %r" % line[:120])
    end = line.index("]", k)
    return line[6:k], line[k + 13:end + 1], line[end + 1:-2].lstrip(",")


def verify(out, items, dims, model=MODEL, python_check=None, carries=None):
    """Checks output bytes `out` against items [(id JSON text, normalized
    text)]: build/verify_embeddings must say "verified N records"; and, when
    python_check (default: small outputs), every line is checked here too:
    the id bytes exactly, every float bit-exact and shortest, and the
    carried fields text exactly equal to carries[i] (when given)."""
    d = tmpdir("verify")
    exp = os.path.join(d, "expected.jsonl")
    write_expected(exp, items)
    argv = [tool("verify_embeddings"), "--model", model, "--expected", exp]
    if dims:
        argv += ["--dims", str(dims)]
    p = subprocess.run(argv, input=out, capture_output=True, timeout=120)
    if p.returncode != 0 or p.stdout != b"verified %d records\n" % len(items):
        raise AssertionError("verify_embeddings (exit %d): %s %s" % (
            p.returncode, p.stdout.decode()[-300:], p.stderr.decode()[-600:]))
    n_dims = dims or fakevec.NATIVE_DIMS[model]
    if python_check is None:
        python_check = len(items) * n_dims <= 200000
    lines = split_lines(out)
    eq(len(lines), len(items), "output lines")
    if not python_check:
        return
    for i, (line, (id_text, text)) in enumerate(zip(lines, items)):
        got_id, arr, carry = split_output_line(line)
        eq(got_id, id_text, "id of output line %d" % (i + 1))
        try:
            fakevec.check_embedding_text(arr, fakevec.vector(model, n_dims, text))
        except AssertionError as e:
            raise AssertionError("output line %d: %s" % (i + 1, e))
        eq(carry, carries[i] if carries is not None else "", "carried fields of line %d" % (i + 1))


def jsonl(*objs):
    """Compact JSONL bytes (raw UTF-8) for dicts, or bytes lines as given."""
    out = b""
    for o in objs:
        if isinstance(o, bytes):
            out += o + b"\n"
        else:
            out += json.dumps(o, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    return out


def errors_of(result):
    return [obj for _, obj in result.errors()]


# --------------------------------------------------------------------------
# Runner.

def _search_left_runs():
    """Searches every run the test started and did not search itself; the
    first leak found, as an AssertionError, or None."""
    leak = None
    while _unsearched:
        try:
            _unsearched[0].search()
        except AssertionError as e:
            leak = leak or e
    return leak


# Files and directories that hold the key on purpose (--api-key-file
# inputs, a test's stand-in for a leak) have this in their names.
KEY_FILE_MARK = ".apikey"


def scan_for_key(root, key=KEY):
    """Searches every regular file under root for key (or a run of KEY_RUN
    of its characters), but those marked KEY_FILE_MARK. Returns (files
    searched, paths that hold it)."""
    files, hits = 0, []
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if KEY_FILE_MARK not in x]
        for name in names:
            path = os.path.join(d, name)
            if KEY_FILE_MARK in name or not os.path.isfile(path) or os.path.islink(path):
                continue
            files += 1
            try:
                with open(path, "rb") as f:
                    if find_key(f.read(), key):
                        hits.append(path)
            except OSError:
                continue  # another user's (the PostgreSQL cluster's)
    return files, hits


def main():
    global BUILD, TMP
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build")
    p.add_argument("-k", dest="filter", help="run only tests whose name contains this")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = p.parse_args()
    BUILD = os.path.abspath(a.build)
    TMP = tempfile.mkdtemp(prefix="embedpipe-e2e-")
    passed = failed = 0
    t0 = time.monotonic()
    for fn in _tests:
        if a.filter and a.filter not in fn.__name__:
            continue
        start = time.monotonic()
        leak = None
        try:
            try:
                fn()
            finally:
                leak = _search_left_runs()
            if leak:
                raise leak
        except Exception as e:  # AssertionError or a harness error
            # A leaked key fails the test, whatever else happened in it.
            if leak and e is not leak:
                leak.args = ("%s (and the test failed: %s)" % (leak, e),)
            e = leak or e
            tb = traceback.extract_tb(e.__traceback__)
            where = ""
            for fr in reversed(tb):
                if os.path.basename(fr.filename).startswith("test_"):
                    where = " [%s:%d]" % (os.path.basename(fr.filename), fr.lineno)
                    break
            msg = str(e) or type(e).__name__
            if fn.xfail and e is not leak:
                passed += 1
                print("XFAIL: %s (known bug: %s)%s: %s" % (fn.__name__, fn.xfail, where, msg),
                      flush=True)
            else:
                failed += 1
                print("FAIL: %s%s: %s" % (fn.__name__, where, msg), flush=True)
        else:
            if fn.xfail:
                failed += 1
                print("XPASS: %s passed but is marked as a known bug (%s): remove the mark"
                      % (fn.__name__, fn.xfail), flush=True)
            else:
                passed += 1
                print("PASS: %s (%.1f s)" % (fn.__name__, time.monotonic() - start), flush=True)
    # What no run's own search saw (files the tests' shells, psql and the
    # fake servers wrote beside embedpipe's) is searched here, all at once.
    files, hits = scan_for_key(TMP)
    print("key search: %d files left by the suite, %d hold the key" % (files, len(hits)),
          flush=True)
    if hits:
        failed += 1
        print("FAIL: the API key is in %d of the %d files the suite left: %s"
              % (len(hits), files, hits[:5]), flush=True)
    if failed or a.keep:
        print("temporary files kept in %s" % TMP, flush=True)
    else:
        shutil.rmtree(TMP, ignore_errors=True)
    print("%s: %.1f s" % (os.path.basename(sys.argv[0]), time.monotonic() - t0), flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)
