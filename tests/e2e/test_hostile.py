#!/usr/bin/env python3
"""embedpipe against hostile servers and hostile input. Each case must end
with a clear error for the records it concerns, within its timeouts, in
bounded memory, and keep the work already saved: a rerun with the same
--checkpoint against a good server sends only what was not saved.

Bounds (peak RSS of the embedpipe process, as GNU time reports it):
  hostile server cases  MAX_RSS_SERVER_MIB: the response is cut off at what a
                        right answer can be (inputs x dims x bytes a value);
                        measured about 24-29 MiB, as for a plain run
  hostile input cases   MAX_RSS_INPUT_MIB: a line over 64 MiB is skipped
                        without being held, shorter lines take ~1.5x their
                        size; measured 92 MiB for the 500 MB line
An ASan build gets ASAN_FACTOR times these (shadow memory, quarantine).
Each case also ends within MAX_SECONDS."""

import os
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (KEY, Server, asan_build, base_args, check, eq, gencorpus,  # noqa: E402
                     jsonl, main, run, spawn, test, tmpdir, verify)

DIMS = 8
MAX_RSS_SERVER_MIB = 64
MAX_RSS_INPUT_MIB = 160
ASAN_FACTOR = 4
MAX_SECONDS = 60
TEXTS = ["first text", "second text", "third text", "fourth text"]
STDIN = jsonl(*({"id": "r%d" % i, "text": t} for i, t in enumerate(TEXTS)))
ITEMS = [('"r%d"' % i, t) for i, t in enumerate(TEXTS)]
# Every attempt of the second batch (and of its halves) is hostile.
HOSTILE_REQUESTS = "2,3,4,5,6,7"


def run_measured(args, stdin=b"", stdin_file=None, key=KEY, timeout=MAX_SECONDS * 2):
    """Runs build/embedpipe like harness.run, and also returns its peak RSS
    in MiB and its wall time in seconds (Result.rss_mib, Result.seconds).
    GNU time runs it: a child forked from this Python process directly
    would count Python's own peak RSS as its own (Linux keeps the high-water
    mark across exec)."""
    d = tmpdir("measured")
    time_path = os.path.join(d, "time")
    out_path, err_path = os.path.join(d, "stdout"), os.path.join(d, "stderr")
    if stdin_file is None:
        stdin_file = os.path.join(d, "stdin")
        with open(stdin_file, "wb") as f:
            f.write(stdin)
    with open(stdin_file, "rb") as fin, open(out_path, "wb") as fout, \
            open(err_path, "wb") as ferr:
        start = time.monotonic()
        p = spawn(args, command=["/usr/bin/time", "-q", "-f", "%M", "-o", time_path, "embedpipe"],
                  key=key, stats=True, stdin=fin, stdout=fout, stderr=ferr)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("embedpipe still running after %d s" % timeout)
        seconds = time.monotonic() - start
    with open(time_path) as f:
        rss_kib = int(f.read().split()[-1])
    with open(out_path, "rb") as f:
        out = f.read()
    with open(err_path, "rb") as f:
        err = f.read()
    p.search()
    r = p.result(out, err)
    r.rss_mib = rss_kib / 1024.0
    r.seconds = seconds
    print("  %s: exit %d, peak RSS %.1f MiB, %.2f s" % (
        " ".join(os.path.basename(str(a)) for a in args[:2]), r.rc, r.rss_mib, r.seconds),
        flush=True)
    return r


def check_bounds(r, max_rss_mib, what):
    if asan_build():
        max_rss_mib *= ASAN_FACTOR
    check(r.rss_mib < max_rss_mib, "%s: peak RSS %.1f MiB, bound %d MiB" % (
        what, r.rss_mib, max_rss_mib))
    check(r.seconds < MAX_SECONDS, "%s: took %.1f s, bound %d s" % (what, r.seconds, MAX_SECONDS))


def resume_sends_only_the_rest(journal, items, unsaved_texts, stdin, dims):
    """A rerun with the journal against a good server: complete output, and
    only the texts that were not saved are sent."""
    with Server() as good:
        r = run(base_args(good, dims, "--checkpoint", journal), stdin=stdin)
        log = good.requests()
    r.expect_rc(0)
    verify(r.out, items, dims, python_check=True)
    eq(sorted(t for e in log for t in e["texts"]), sorted(unsaved_texts),
       "texts sent on resume")


def hostile_server(kind, want_error, rc=2, server_extra=(), extra=(), dims=DIMS,
                   stall="2"):
    """Batch 1 (r0, r1) is answered; every attempt at batch 2 (r2, r3) meets
    `kind`. r0 and r1 are written and saved; r2 and r3 fail with an error
    that contains want_error; a resume sends only r2 and r3."""
    d = tmpdir("hostile-" + kind)
    journal = os.path.join(d, "journal")
    errors = os.path.join(d, "errors.jsonl")
    faults = ",".join("%s:%s" % (n, kind) for n in HOSTILE_REQUESTS.split(","))
    with Server("--faults", faults, *server_extra) as srv:
        r = run_measured(base_args(
            srv, dims, "--batch-inputs", "2", "-j", "1", "--max-attempts", "2",
            "--timeout", "3", "--stall-timeout", stall, "--max-retry-wait", "0.2",
            "--checkpoint", journal, "--errors", errors, *extra), stdin=STDIN)
        log = srv.requests()
    r.expect_rc(rc)
    check_bounds(r, MAX_RSS_SERVER_MIB, kind)
    verify(r.out, ITEMS[:2], dims, python_check=True)
    where = r.err_text if rc == 3 else r.errors_text
    check(want_error in where, "%s: %r not in %r" % (kind, want_error, where[-600:]))
    if rc == 2:
        eq(sorted(e["id"] for _, e in r.errors()), ["r2", "r3"], "records in error")
    check(len(log) <= 1 + 6, "%s: %d requests" % (kind, len(log)))
    resume_sends_only_the_rest(journal, ITEMS, TEXTS[2:], STDIN, dims)
    return r, log


@test
def server_sends_2gb_body():
    # The Content-Length alone is over the bound: refused before the body.
    r, _ = hostile_server("huge", "response larger than")
    check(r.seconds < 10, "took %.1f s" % r.seconds)


@test
def server_sends_2gb_body_native_dims():
    # Without --dimensions the bound assumes the largest vector accepted.
    d = tmpdir("huge-native")
    with Server("--faults", "1:huge,2:huge") as srv:
        r = run_measured(["--base-url", srv.url, "--max-attempts", "2",
                          "--max-retry-wait", "0.1", "--errors", os.path.join(d, "e")],
                         stdin=STDIN[:STDIN.index(b"\n") + 1])
    r.expect_rc(2)
    check_bounds(r, MAX_RSS_SERVER_MIB, "huge, native dims")
    check("response larger than 590840 bytes" in r.errors_text, r.errors_text)


@test
def server_sends_endless_body():
    hostile_server("endless", "response larger than 67712 bytes")


@test
def other_dialects_bound_a_2gb_or_endless_body_too():
    # Every codec stops reading at what a right answer can be: Cohere asked
    # for 256 dimensions at 1 x (256 x 32 + 1 KiB) + 64 KiB (floats), TEI,
    # which takes no --dimensions, at the largest vector accepted.
    one = STDIN[:STDIN.index(b"\n") + 1]
    for provider, extra, bound in (("cohere", ["--dimensions", "256"], 74752),
                                   ("tei", ["--model", "BAAI/bge-small-en-v1.5"], 2163680)):
        for kind in ("huge", "endless"):
            errors = os.path.join(tmpdir("dialect-" + kind), "errors.jsonl")
            with Server("--dialect", provider, "--faults", "1:%s,2:%s" % (kind, kind)) as srv:
                r = run_measured(["--provider", provider, "--base-url",
                                  "http://127.0.0.1:%d" % srv.port, "--max-attempts", "2",
                                  "--max-retry-wait", "0.1", "--errors", errors] + extra,
                                 stdin=one)
            r.expect_rc(2)
            check_bounds(r, MAX_RSS_SERVER_MIB, "%s, %s" % (provider, kind))
            check("response larger than %d bytes" % bound in r.errors_text,
                  "%s, %s: %r" % (provider, kind, r.errors_text))


# These bodies (200 KB) are over the bound for 8 dimensions; without
# --dimensions the bound is 1.1 MB a batch of 2, and the decoder meets them.
@test
def server_sends_deeply_nested_json():
    hostile_server("deep", "a data item is not a vector", dims=None)


@test
def server_sends_deeply_nested_error():
    hostile_server("deeperror", "rejected by the API (HTTP 400): HTTP 400", dims=None)


@test
def server_sends_deeply_nested_json_over_the_bound():
    hostile_server("deep", "response larger than 67712 bytes")


@test
def server_sends_huge_numbers():
    hostile_server("hugenum", "response is not valid JSON at byte", dims=None)


@test
def server_sends_nan():
    hostile_server("nan", "embedding holds a non-finite value")


@test
def server_sends_nan_float():
    hostile_server("nan", "response is not valid JSON", extra=("--encoding", "float"))


@test
def server_sends_negative_index():
    hostile_server("negindex", "index -1 is negative")


@test
def server_sends_duplicate_index():
    hostile_server("dupindex", "index 0 appears twice")


@test
def server_sends_wrong_dimensions():
    hostile_server("wrongdims", "embedding has 7 dimensions, expected 8")


@test
def server_sends_one_byte_a_second():
    # Bytes keep coming, so with a long stall timeout --timeout (3 s) ends
    # each attempt.
    r, _ = hostile_server("slow", "Timeout was reached", stall="30")
    check(r.seconds < 2 * 3 + 5, "took %.1f s" % r.seconds)


@test
def server_sends_one_byte_a_second_stall():
    # The stall timer counts body bytes: a head sent a byte a second is a
    # stall of the body, noticed after --stall-timeout.
    r, _ = hostile_server("slow", "stalled: no data for 2 s")
    check(r.seconds < 2 * 2 + 5, "took %.1f s" % r.seconds)


@test
def server_redirects_to_another_host():
    # A listener on another loopback address stands for the other host: it
    # must never see a connection, let alone the key.
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        other.bind(("127.0.0.2", 0))
        other.listen(16)
        url = "http://127.0.0.2:%d/v1/embeddings" % other.getsockname()[1]
        r, log = hostile_server("redirect", 'the server redirects to "%s"' % url, rc=3,
                                server_extra=("--redirect-url", url))
        other.setblocking(False)
        try:
            conn, _ = other.accept()
            conn.close()
            raise AssertionError("the redirect was followed to %s" % url)
        except BlockingIOError:
            pass
    finally:
        other.close()
    eq(len(log), 2, "requests: the first batch, then one redirect, no retry")
    check("redirects are not followed" in r.err_text, r.err_text)


# --------------------------------------------------------------------------
# Hostile input. The good records around each bad one are embedded.

def hostile_input(name, data, want_errors, items, extra=(), stdin_file=None):
    """Runs `data` (or the file stdin_file) with --checkpoint; checks the
    output against items, the errors file against want_errors [(line,
    field, reason)], and the bounds."""
    d = tmpdir("input-" + name)
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run_measured(base_args(srv, DIMS, "--errors", errors, *extra), stdin=data,
                         stdin_file=stdin_file)
    r.expect_rc(2 if want_errors else 0)
    check_bounds(r, MAX_RSS_INPUT_MIB, name)
    verify(r.out, items, DIMS, python_check=True)
    got = [(e["line"], e.get("field", ""), e["error"]) for _, e in r.errors()] \
        if want_errors else []
    eq(got, want_errors, "errors")
    return r


@test
def input_line_of_500_mb():
    d = tmpdir("bigline")
    path = os.path.join(d, "in.jsonl")
    chunk = b"a" * (1 << 20)
    with open(path, "wb") as f:
        f.write(jsonl({"id": "r0", "text": TEXTS[0]}))
        f.write(b'{"id":"big","text":"')
        for _ in range(500):
            f.write(chunk)
        f.write(b'"}\n')
        f.write(jsonl({"id": "r1", "text": TEXTS[1]}))
        f.write(b'{"id":"r2","text":"')  # 70 MiB and no final newline
        for _ in range(70):
            f.write(chunk)
        f.write(b'"}')
    try:
        hostile_input("line500mb", None, [(2, "", "line is longer than 67108864 bytes"),
                                          (4, "", "line is longer than 67108864 bytes")],
                      ITEMS[:2], stdin_file=path)
    finally:
        os.unlink(path)


@test
def input_with_nul_bytes():
    data = (jsonl({"id": "r0", "text": "a\u0000b"}) + b'{"id":"r1","text":"a\x00b"}\n' +
            b"\x00\x00\x00\n" + jsonl({"id": "r3", "text": "ok"}))
    hostile_input("nul", data, [
        (2, "", "invalid JSON at byte 20: Missing a closing quotation mark in string"),
        (3, "", "invalid JSON at byte 0: The document is empty"),
    ], [('"r0"', "ab"), ('"r3"', "ok")])


@test
def input_with_overlong_utf8():
    data = (b'{"id":"r0","text":"\xc0\xaf x \xe0\x80\xaf"}\n' +
            jsonl({"id": "r1", "text": "fine"}))
    want, _ = gencorpus.normalize(b"\xc0\xaf x \xe0\x80\xaf")
    hostile_input("overlong", data, [], [('"r0"', want), ('"r1"', "fine")])
    hostile_input("overlong-reject", data,
                  [(1, "text", "text is not valid UTF-8 at byte 0")], [('"r1"', "fine")],
                  extra=("--invalid-utf8", "reject"))


@test
def input_with_lone_surrogates():
    data = (b'{"id":"r0","text":"a\\ud800b"}\n' + b'{"id":"r1","text":"x\\udc00"}\n' +
            b'{"id":"r2","text":"\\ud83d\\ude00 ok"}\n')
    hostile_input("surrogates", data, [
        (1, "", "invalid JSON at byte 20: The surrogate pair in string is invalid"),
        (2, "", "invalid JSON at byte 20: The surrogate pair in string is invalid"),
    ], [('"r2"', "\U0001F600 ok")])


@test
def input_nested_100000_deep():
    deep = b"[" * 100000 + b"]" * 100000
    data = (b'{"id":"r0","meta":' + deep + b',"text":"deep"}\n' + deep + b"\n" +
            b'{"id":"r2","text":' + deep + b"}\n")
    hostile_input("deep", data, [
        (2, "", "expected a JSON object, got an array"),
        (3, "text", 'field "text" must be a string, got array'),
    ], [('"r0"', "deep")])


@test
def input_without_final_newline():
    data = jsonl({"id": "r0", "text": "one"}) + b'{"id":"r1","text":"last"}'
    hostile_input("nonewline", data, [], [('"r0"', "one"), ('"r1"', "last")])


@test
def input_read_error_mid_stream():
    # stdin is a TCP connection that is reset after the first record has
    # been read and sent: read(2) fails with ECONNRESET; what was read is
    # embedded, the error is reported, and the next input is read.
    d = tmpdir("readerror")
    second = os.path.join(d, "second.jsonl")
    with open(second, "wb") as f:
        f.write(jsonl({"id": "r2", "text": TEXTS[2]}))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    feeder = socket.create_connection(listener.getsockname())
    reader, _ = listener.accept()
    listener.close()
    try:
        with Server() as srv:
            p = spawn(base_args(srv, DIMS, "--batch-inputs", "1", "-", second),
                      stdin=reader, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            reader.close()
            feeder.sendall(jsonl({"id": "r0", "text": TEXTS[0]}))
            srv.wait_for(lambda es: any(TEXTS[0] in e["texts"] for e in es),
                         what="the first record's request")
            feeder.sendall(b'{"id":"r1","te')  # half a line, then the reset
            feeder.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            feeder.close()
            out, err = p.communicate(timeout=MAX_SECONDS)
    finally:
        feeder.close()
    r = p.result(out, err)
    r.expect_rc(2)
    verify(out, [ITEMS[0], ITEMS[2]], DIMS, python_check=True)
    check("embedpipe: error: error reading -: Connection reset by peer" in r.err_text,
          r.err_text)


if __name__ == "__main__":
    main()
