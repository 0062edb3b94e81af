#!/usr/bin/env python3
"""The API key never leaks. Every end-to-end suite runs with a distinctive
key (harness.KEY, or EMBEDPIPE_TEST_KEY): the harness puts it in every key
variable of every run, searches every byte each run wrote (stdout, stderr,
--errors, --stats, journal), and at the end of the suite every file left in
its temporary directory (outputs, errors files, journals, server logs).
These tests check that those searches find a key wherever it is written and
that tests cannot start embedpipe past them; then the key file, the
environment wipe (/proc/PID/environ), the command line, and TLS
verification with and without --cacert."""

import os
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (KEY, KEY_FILE_MARK, Server, base_args, check, eq, jsonl,  # noqa: E402
                     main, no_key_leak, run, scan_for_key, spawn, test, tmpdir)
import harness  # noqa: E402

DIMS = 8
STDIN = jsonl({"id": "a", "text": "alpha"}, {"id": "b", "text": "beta"})

@test
def the_suites_search_their_files_for_the_key():
    # Beside each run's own search, every suite ends by searching every file
    # it left (harness.main): a file anywhere under its directory is found,
    # one marked as holding the key on purpose is not.
    d = tmpdir("tree")
    os.makedirs(os.path.join(d, "a", "b"))
    with open(os.path.join(d, "a", "b", "server.log"), "w") as f:
        f.write("Authorization: Bearer %s\n" % KEY)
    with open(os.path.join(d, "a", "clean"), "w") as f:
        f.write("nothing\n")
    with open(os.path.join(d, "key" + KEY_FILE_MARK), "w") as f:
        f.write(KEY)
    eq(scan_for_key(d), (2, [os.path.join(d, "a", "b", "server.log")]), "files searched, hits")
    os.remove(os.path.join(d, "a", "b", "server.log"))


@test
def the_search_finds_the_key_wherever_a_run_writes_it():
    # Stand-ins for a leaking embedpipe: a shell that writes a key variable
    # to a pipe the test reads in one go or by lines, to a file stdout goes
    # to, to the --errors file, and to a terminal.
    d = tmpdir("leak" + KEY_FILE_MARK)
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
    path = os.path.join(d, "openai" + KEY_FILE_MARK)
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


# Every provider as embedpipe speaks it to the fake: the fake's dialect (None:
# OpenAI's own API), the path --base-url adds to the server's root, and the
# flags that make it send a key (ollama and tei send none by default).
PROVIDERS = {
    "openai": (None, "/v1", []),
    "azure": ("azure", "", []),
    "openai-compatible": (None, "/v1", ["--model", "text-embedding-3-small"]),
    "cohere": ("cohere", "", []),
    "voyage": ("voyage", "/v1", []),
    "gemini": ("gemini", "/v1beta", []),
    "ollama": ("ollama", "", ["--api-key-env", "OPENAI_API_KEY"]),
    "tei": ("tei", "", ["--model", "BAAI/bge-small-en-v1.5", "--api-key-env", "OPENAI_API_KEY"]),
}
ECHO_TAIL = ". You can find your API key at https://platform.openai.com/account/api-keys."


@test
def a_key_the_server_echoes_is_never_printed():
    # Issue 22 item 1: a server refusing the key quotes it, whole or masked
    # as OpenAI does ("sk-e2e-Z" and "cret" around stars), in each
    # provider's key header and error shape. Whatever the run writes
    # (stderr with progress lines, --errors, --stats, stdout) is searched
    # for the key and for any 8 characters of it, by run() and by the
    # suite's final search of every file left.
    masked = "[redacted]" + "*" * (len(KEY) - 12) + KEY[-4:]
    for provider, (dialect, path, more) in PROVIDERS.items():
        for mode, shown in (("full", "[redacted]"), ("masked", masked)):
            d = tmpdir("echo-%s-%s" % (provider, mode))
            args = ["--require-key", "sk-not-the-key-sent", "--echo-key", mode]
            with Server(*(args + (["--dialect", dialect] if dialect else []))) as srv:
                r = run(["--provider", provider, "--base-url",
                         "http://127.0.0.1:%d%s" % (srv.port, path), "--progress", "log",
                         "--progress-interval", "0.01", "--errors", os.path.join(d, "errors"),
                         "--stats", os.path.join(d, "stats.json")] + more,
                        stdin=STDIN)
                eq(len(srv.requests()), 1, "%s %s: requests" % (provider, mode))
            r.expect_rc(3)
            check("embedpipe: error: the API refused the run: HTTP 401: Incorrect API key "
                  "provided: %s%s" % (shown, ECHO_TAIL) in r.err_text,
                  "%s %s: %s" % (provider, mode, r.err_text[-600:]))


@test
def a_key_with_a_control_character_is_refused_before_any_request():
    # Issue 22 item 2: CR LF in a key would end the key's header line and
    # start another one the server reads as a header of its own.
    for name, bad in (("CR LF", "\r\nX-Evil: 1"), ("TAB", "\tx"), ("DEL", "\x7f")):
        key = "sk-e2e-ctrl" + bad + "tail"
        with Server() as srv:
            r = run(base_args(srv, DIMS), stdin=STDIN, key=None, env={"OPENAI_API_KEY": key})
            eq(srv.requests(), [], "%s: requests sent" % name)
        r.expect_rc(1)
        eq(r.err_text, "embedpipe: error: the API key in $OPENAI_API_KEY holds a control "
           "character (byte %d of %d): fix the variable\n" % (key.index(bad[0]) + 1, len(key)),
           "%s: stderr" % name)
        no_key_leak(r.out, r.err, key=key)
    d = tmpdir("ctrl")
    path = os.path.join(d, "key" + KEY_FILE_MARK)
    with open(path, "w") as f:
        f.write("sk-e2e\x01key\n")
    os.chmod(path, 0o600)
    r = run(["--api-key-file", path], stdin=STDIN, key=None)
    r.expect_rc(1)
    eq(r.err_text, "embedpipe: error: the API key in %s holds a control character (byte 7 of "
       "10): fix the file\n" % path, "stderr")


@test
def white_space_around_a_key_is_trimmed_with_a_warning():
    # Issue 22 item 2: a stray space or CR from a .env file or $(cat
    # keyfile) is not sent: the fake refuses any key but the exact one.
    with Server("--require-key", KEY) as srv:
        r = run(base_args(srv, DIMS), stdin=STDIN, key=None,
                env={"OPENAI_API_KEY": "  " + KEY + " \r"})
        log = srv.requests()
    r.expect_rc(0)
    eq([e["status"] for e in log], [200], "statuses")
    check("embedpipe: warning: the API key in $OPENAI_API_KEY has white space around it; "
          "it is sent without\n" in r.err_text, r.err_text)
    eq(len(r.lines), 2, "output lines")


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
