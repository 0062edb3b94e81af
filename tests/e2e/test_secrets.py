#!/usr/bin/env python3
"""The API key never leaks. One test reruns every other end-to-end suite with
a distinctive key of its own (EMBEDPIPE_TEST_KEY: the harness puts it in
every key variable of every run, and searches every byte each run wrote:
stdout, stderr, --errors, --stats, journal) and then searches every byte
left in those suites' temporary directories (outputs, errors files,
journals, server logs) for it. Others check that the harness search finds a
key wherever a run writes it and that tests cannot start embedpipe past it,
the key file, the environment wipe (/proc/PID/environ), the command line,
and TLS verification with and without --cacert."""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (KEY, Server, asan_build, base_args, check, eq, jsonl,  # noqa: E402
                     main, no_key_leak, run, spawn, test, tmpdir)
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DIMS = 8
STDIN = jsonl({"id": "a", "text": "alpha"}, {"id": "b", "text": "beta"})
# Files that hold the key on purpose (--api-key-file inputs) end so.
KEY_FILE_SUFFIX = ".apikey"


def scan_tree(root, key):
    """Every regular file under root: returns the paths that contain key."""
    hits = []
    for d, _, files in os.walk(root):
        for name in files:
            path = os.path.join(d, name)
            if name.endswith(KEY_FILE_SUFFIX) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                if key.encode() in f.read():
                    hits.append(path)
    return hits


@test
def every_suite_with_a_distinctive_key():
    if asan_build():
        # The ASan run repeats the same suites; what a run writes does not
        # depend on the sanitizer, and the plain run searches it.
        print("  ASan build: covered by the run against the plain build", flush=True)
        return
    key = "sk-leakcheck-" + secrets.token_hex(16)
    # Directly under the system's temporary directory and open to others:
    # test_postgres's cluster runs as the postgres user below it.
    root = tempfile.mkdtemp(prefix="embedpipe-secrets-")
    os.chmod(root, 0o755)
    try:
        scan_suites(key, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def scan_suites(key, root):
    suites = sorted(f for f in os.listdir(HERE)
                    if f.startswith("test_") and f.endswith(".py") and f != "test_secrets.py")
    env = dict(os.environ, EMBEDPIPE_TEST_KEY=key, TMPDIR=root)
    failed = []
    for suite in suites:
        p = subprocess.run([sys.executable, os.path.join(HERE, suite), "--build", harness.BUILD,
                            "--keep"], env=env, capture_output=True, timeout=1800)
        last = p.stdout.decode(errors="replace").rstrip().split("\n")[-1]
        print("  %s: %s" % (suite, last), flush=True)
        no_key_leak(p.stdout, p.stderr, key=key)
        if p.returncode != 0:
            failed.append("%s: %s" % (suite, p.stdout.decode(errors="replace")[-1500:]))
    check(not failed, "suites failed with the distinctive key:\n" + "\n".join(failed))
    files = sum(len(fs) for _, _, fs in os.walk(root))
    hits = scan_tree(root, key)
    print("  searched %d files left by %d suites: %d contain the key" % (
        files, len(suites), len(hits)), flush=True)
    eq(hits, [], "files that contain the key")
    check(files > 100, "the suites left only %d files to search" % files)


@test
def the_search_finds_the_key_wherever_a_run_writes_it():
    # Stand-ins for a leaking embedpipe: a shell that writes a key variable
    # to a pipe the test reads in one go or by lines, to a file stdout goes
    # to, to the --errors file, and to a terminal.
    d = tmpdir("leak")
    leak = 'printf "%s\\n" "$COHERE_API_KEY" '
    with open(os.path.join(d, "out"), "wb") as out:
        runs = [
            spawn([], command=["sh", "-c", leak], stdout=subprocess.PIPE),
            spawn([], command=["sh", "-c", leak], stdout=subprocess.PIPE),
            spawn([], command=["sh", "-c", leak], stdout=out),
            spawn(["--errors", os.path.join(d, "errors")],
                  command=["sh", "-c", leak + '> "$2"', "sh"]),
            # It waits for its stdin to close: the terminal is read first.
            spawn([], command=["sh", "-c", leak + ">&2; cat"], terminal=True,
                  stdin=subprocess.PIPE),
        ]
    runs[0].communicate()
    runs[1].stdout.readline()
    runs[4].terminal.read1(100)
    runs[4].stdin.close()
    for i, p in enumerate(runs):
        p.wait()
        try:
            p.search()
        except AssertionError as e:
            check("the API key appears" in str(e), str(e))
        else:
            raise AssertionError("run %d leaked the key unnoticed" % i)


@test
def tests_cannot_start_embedpipe_past_the_search():
    try:
        harness.tool("embedpipe")
    except AssertionError as e:
        check("spawn()" in str(e), str(e))
    else:
        raise AssertionError("a test got the path of embedpipe")


@test
def key_from_file():
    d = tmpdir("keyfile")
    path = os.path.join(d, "openai" + KEY_FILE_SUFFIX)
    with open(path, "w") as f:
        f.write(KEY + "\n")
    os.chmod(path, 0o600)
    with Server("--require-key", KEY) as srv:
        r = run(base_args(srv, DIMS, "--api-key-file", path), stdin=STDIN, key=None)
    r.expect_rc(0)
    no_key_leak(r.out, r.err)
    check("warning" not in r.err_text, r.err_text)
    eq(len(r.lines), 2, "output lines")
    os.chmod(path, 0o644)
    with Server("--require-key", KEY) as srv:
        r = run(base_args(srv, DIMS, "--api-key-file", path), stdin=STDIN, key=None)
    r.expect_rc(0)
    no_key_leak(r.out, r.err)
    check("embedpipe: warning: API key file %s may be read by other users (mode 0644): "
          "chmod 600 it" % path in r.err_text, r.err_text)
    r = run(["--api-key-file", os.path.join(d, "missing")], stdin=STDIN, key=None)
    r.expect_rc(1)
    check("cannot read API key file" in r.err_text, r.err_text)


@test
def key_is_wiped_from_the_environment_and_never_on_the_command_line():
    # A hung request keeps embedpipe running while its /proc files are read.
    with Server("--faults", "1:hang") as srv:
        # The key only where embedpipe reads it, which it wipes.
        p = spawn(base_args(srv, DIMS, "--timeout", "30"), key=None,
                  env={"OPENAI_API_KEY": KEY}, stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            p.stdin.write(STDIN)
            p.stdin.close()
            p.stdin = None  # so communicate() does not flush it
            srv.wait_for(lambda es: len(es) >= 1, what="the hung request")
            with open("/proc/%d/environ" % p.pid, "rb") as f:
                environ = f.read()
            with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                cmdline = f.read()
        finally:
            p.kill()
            out, err = p.communicate()
    check(b"OPENAI_API_KEY=" in environ, "the variable's name stays: %r" % environ[:200])
    no_key_leak(environ, cmdline, out, err)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@test
def tls_is_verified_and_cacert_is_used():
    d = tmpdir("tls")
    cert, pkey = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", pkey, "-out", cert], check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
                               "-cert", cert, "-key", pkey, "-www"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    try:
        # s_server prints ACCEPT once it listens.
        for line in server.stdout:
            if line.startswith(b"ACCEPT"):
                break
        else:
            raise AssertionError("openssl s_server did not start")
        url = "https://127.0.0.1:%d/v1" % port
        common = ["--base-url", url, "--dimensions", str(DIMS), "--max-attempts", "1",
                  "--stall-timeout", "1",
                  "--errors", os.path.join(d, "errors")]
        r = run(common, stdin=STDIN)
        r.expect_rc(2)
        check("SSL peer certificate or SSH remote key was not OK" in r.errors_text or
              "certificate" in r.errors_text, r.errors_text)
        # With its certificate as the CA bundle the handshake succeeds; the
        # web page s_server answers with is then not an embeddings response.
        r = run(common + ["--cacert", cert], stdin=STDIN)
        check("certificate" not in r.errors_text and "SSL" not in r.errors_text,
              r.errors_text)
        r = run(common + ["--cacert", os.path.join(d, "none.pem")], stdin=STDIN)
        r.expect_rc(1)
        check("cannot read CA bundle" in r.err_text, r.err_text)
    finally:
        server.kill()
        server.communicate()


if __name__ == "__main__":
    main()
