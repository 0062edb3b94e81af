#!/usr/bin/env python3
"""Self-test of build/fake_provider: starts it on free loopback ports and
checks its behaviours over raw HTTP (http.client and plain sockets): auth,
float and base64 vectors bit-exact against a Python copy of the vector
function in fake_vectors.h, shuffling, every 400/404 case, every fault kind,
rate limiting and its headers, keep-alive, pipelining, chunked and
100-continue request bodies, the latency model, the log and the stats,
and the holding of Batch API calls and the jobs' clock on request
(/fake/...).
Prints "N passed, N failed"; exits non-zero on any failure.

    python3 tests/tools/fake_provider_selftest.py [--build build]
"""
import argparse
import base64
import http.client
import json
import math
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SMALL = "text-embedding-3-small"
LARGE = "text-embedding-3-large"
ADA = "text-embedding-ada-002"
BAD_INPUT = ("'$.input' is invalid. Please check the API reference: "
             "https://platform.openai.com/docs/api-reference.")
DURATION = re.compile(r"^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s)$")
MASK = (1 << 64) - 1


# --- the vector function, as documented in tests/tools/fake_vectors.h -------

def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & MASK
    return h


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def fake_vector(model, dims, text):
    state = fnv1a(model.encode() + b"\0" + str(dims).encode() + b"\0" +
                  text.encode())
    raw = []
    total = 0.0
    for _ in range(dims):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        r = ((z >> 40) - (1 << 23)) / 8388608.0
        raw.append(r)
        total += r * r
    if total == 0:
        return [1.0] + [0.0] * (dims - 1)
    scale = 1.0 / math.sqrt(total)
    return [f32(r * scale) for r in raw]


# --- harness -----------------------------------------------------------------

class Server:
    """One fake_provider process on a free port, with its own log."""

    def __init__(self, binary, tmp, *args):
        Server.count = getattr(Server, "count", 0) + 1
        base = os.path.join(tmp, "server%d" % Server.count)
        self.port_file = base + ".port"
        self.log = base + ".log"
        self.stats = base + ".stats"
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--port-file", self.port_file,
             "--log", self.log, "--stats", self.stats, *args],
            stderr=subprocess.PIPE, text=True)
        # The port file is written before this line is printed, so reading
        # the line (a blocking read, no polling) means the file is there.
        line = self.proc.stderr.readline()
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)$", line.strip())
        if not m:
            raise RuntimeError("fake_provider did not start: %r" % line)
        with open(self.port_file) as f:
            self.port = int(f.read())
        if self.port != int(m.group(1)):
            raise RuntimeError("port file and stderr disagree")

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def post(self, body, key="sk-test-key", path="/v1/embeddings",
             conn=None, headers=None):
        """Returns (status, headers dict lower-cased, body bytes)."""
        own = conn is None
        conn = conn or self.connect()
        h = {"Content-Type": "application/json"}
        if key is not None:
            h["Authorization"] = "Bearer " + key
        h.update(headers or {})
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, body=data, headers=h)
        r = conn.getresponse()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        if own:
            conn.close()
        return out

    def log_lines(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def wait_for_log(self, count):
        """Waits for the server to have logged `count` requests (an event,
        not a duration: the deadline only stops a broken server)."""
        deadline = time.monotonic() + 10
        while len(self.log_lines()) < count:
            assert time.monotonic() < deadline, "server never logged"
            time.sleep(0.01)
        return self.log_lines()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, err


def raw_exchange(port, data, read_timeout=10):
    """Sends raw bytes on a new socket; returns (bytes read, error or None)
    reading until end of stream or an error."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    s.sendall(data)
    got = b""
    err = None
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        err = e
    s.close()
    return got, err


def request_bytes(body, path="/v1/embeddings", extra=""):
    data = json.dumps(body).encode()
    return (("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-t\r\n"
             "Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n")
            % (path, len(data), extra)).encode() + data


def split_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def error_of(body):
    doc = json.loads(body)
    assert set(doc) == {"error"}, doc
    e = doc["error"]
    assert set(e) == {"message", "type", "param", "code"}, e
    assert e["param"] is None, e
    return e


def strict_json(body):
    def no_constant(c):
        raise ValueError("non-JSON constant " + c)
    return json.loads(body, parse_constant=no_constant)


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# --- tests -------------------------------------------------------------------

@test
def auth_missing(t):
    status, h, body = t.plain.post({"model": SMALL, "input": "x"}, key=None)
    assert status == 401, status
    e = error_of(body)
    assert e["message"].startswith("You didn't provide an API key. "), e
    assert e["type"] == "invalid_request_error" and e["code"] is None, e
    status, _, _ = t.plain.post({"model": SMALL, "input": "x"}, key="")
    assert status == 401, status


@test
def auth_wrong_and_right_key(t):
    status, _, body = t.keyed.post({"model": SMALL, "input": "x"},
                                   key="sk-wrong-key-abcdefgh")
    assert status == 401, status
    e = error_of(body)
    assert e["code"] == "invalid_api_key", e
    assert e["message"].startswith(
        "Incorrect API key provided: sk-wrong*********efgh. "), e
    status, _, _ = t.keyed.post({"model": SMALL, "input": "x"},
                                key="sk-right-key-123456")
    assert status == 200, status


@test
def auth_key_is_compared_exactly_and_echoed(t):
    # A space before the key is part of what was sent: not the key.
    status, _, _ = t.keyed.post({"model": SMALL, "input": "x"},
                                key=" sk-right-key-123456")
    assert status == 401, status
    # --echo-key quotes a wrong key whole, in any dialect's header.
    wrong = "sk-wrong-key-abcdefgh"
    status, _, body = t.echo.post({"model": SMALL, "input": "x"}, key=wrong)
    assert status == 401, status
    assert error_of(body)["message"] == (
        "Incorrect API key provided: %s. You can find your API key at "
        "https://platform.openai.com/account/api-keys." % wrong), body
    status, _, body = t.echo_azure.post(
        {"input": "x"}, key=None, headers={"api-key": wrong},
        path="/openai/deployments/%s/embeddings?api-version=2024-10-21" % SMALL)
    assert status == 401, status
    assert error_of(body)["message"].startswith(
        "Incorrect API key provided: sk-wrong*********efgh. "), body
    status, _, _ = t.echo_azure.post(
        {"input": "x"}, key=None, headers={"api-key": "sk-right-key-123456"},
        path="/openai/deployments/%s/embeddings?api-version=2024-10-21" % SMALL)
    assert status == 200, status


@test
def float_vectors_exact(t):
    texts = ["hello world", "second", "ünïcödé 😀"]
    status, h, body = t.plain.post({"model": SMALL, "input": texts})
    assert status == 200, (status, body[:300])
    assert h["content-type"] == "application/json", h
    assert re.match(r"^req_[0-9a-f]{32}$", h["x-request-id"]), h
    assert int(h["openai-processing-ms"]) >= 0
    assert h["openai-model"] == SMALL
    doc = strict_json(body)
    assert doc["object"] == "list" and doc["model"] == SMALL, doc.keys()
    assert doc["usage"]["prompt_tokens"] == doc["usage"]["total_tokens"] > 0
    assert [d["index"] for d in doc["data"]] == [0, 1, 2]
    for d in doc["data"]:
        assert d["object"] == "embedding"
        v = d["embedding"]
        assert len(v) == 1536, len(v)
        assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5
        want = fake_vector(SMALL, 1536, texts[d["index"]])
        assert [f32(x) for x in v] == want, "vector %d differs" % d["index"]


@test
def base64_vectors_exact(t):
    texts = ["a", "b", "c", "d"]
    status, _, body = t.plain.post({"model": LARGE, "input": texts,
                                    "encoding_format": "base64",
                                    "dimensions": 256})
    assert status == 200, (status, body[:300])
    doc = strict_json(body)
    assert len(doc["data"]) == 4
    for d in doc["data"]:
        raw = base64.b64decode(d["embedding"], validate=True)
        v = list(struct.unpack("<%df" % (len(raw) // 4), raw))
        assert len(v) == 256, len(v)
        assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5
        assert v == fake_vector(LARGE, 256, texts[d["index"]])


@test
def native_dims_per_model(t):
    for model, dims in ((SMALL, 1536), (LARGE, 3072), (ADA, 1536)):
        status, _, body = t.plain.post({"model": model, "input": "x",
                                        "encoding_format": "base64"})
        assert status == 200, (model, status)
        raw = base64.b64decode(strict_json(body)["data"][0]["embedding"])
        assert len(raw) == 4 * dims, (model, len(raw))


@test
def token_id_inputs(t):
    status, _, body = t.plain.post({"model": SMALL, "input": [[1, 22, 333], [4]],
                                    "dimensions": 16})
    assert status == 200, (status, body[:300])
    doc = strict_json(body)
    assert doc["usage"]["prompt_tokens"] == 4, doc["usage"]
    v = [f32(x) for x in doc["data"][0]["embedding"]]
    assert v == fake_vector(SMALL, 16, "1 22 333")
    status, _, body = t.plain.post({"model": SMALL, "input": [7, 8], "dimensions": 4})
    assert status == 200
    doc = strict_json(body)
    assert len(doc["data"]) == 1 and doc["usage"]["prompt_tokens"] == 2
    assert [f32(x) for x in doc["data"][0]["embedding"]] == fake_vector(SMALL, 4, "7 8")


@test
def shuffle(t):
    texts = ["t%d" % i for i in range(10)]
    status, _, body = t.shuffled.post({"model": SMALL, "input": texts, "dimensions": 8})
    assert status == 200
    data = strict_json(body)["data"]
    order = [d["index"] for d in data]
    assert sorted(order) == list(range(10)), order
    assert order != list(range(10)), order
    for d in data:
        assert [f32(x) for x in d["embedding"]] == fake_vector(SMALL, 8, texts[d["index"]])
    status, _, body = t.shuffled.post({"model": SMALL, "input": ["p", "q"], "dimensions": 2})
    assert [d["index"] for d in strict_json(body)["data"]] == [1, 0]


@test
def invalid_inputs(t):
    cases = [[], "", [""], ["ok", ""], ["a"] * 2049, ["a", 1], [1, "a"],
             [[1], "a"], [[]], [[1, -2]], [[1.5]], {"x": 1}, None, 5, [None]]
    for inp in cases:
        status, _, body = t.plain.post({"model": SMALL, "input": inp})
        assert status == 400, (inp if len(str(inp)) < 50 else "2049", status)
        e = error_of(body)
        assert e["message"] == BAD_INPUT, (inp, e)
        assert e["type"] == "invalid_request_error", e
    status, _, _ = t.plain.post({"model": SMALL, "input": ["a"] * 2048, "dimensions": 1})
    assert status == 200


@test
def context_length(t):
    text = "hello " * 20000
    status, _, body = t.plain.post({"model": SMALL, "input": ["ok", text]})
    assert status == 400, status
    e = error_of(body)
    assert e["message"] == "Invalid 'input[1]': maximum context length is 8192 tokens.", e
    assert e["type"] == "invalid_request_error" and e["code"] is None, e
    status, _, body = t.plain.post({"model": SMALL, "input": text})
    assert status == 400, status
    e = error_of(body)
    assert e["message"] == "Invalid 'input': maximum context length is 8192 tokens.", e


@test
def faults_by_text_and_a_smaller_window(t):
    s = t.by_text
    status, _, _ = s.post({"model": SMALL, "input": ["fine", "poison here"], "dimensions": 1})
    assert status == 503, status
    status, _, _ = s.post({"model": SMALL, "input": ["poison"], "dimensions": 1})
    assert status == 503, status  # every time the text comes
    status, _, _ = s.post({"model": SMALL, "input": ["fine"], "dimensions": 1})
    assert status == 200, status
    status, _, body = s.post({"model": SMALL, "input": ["fine", "one two three four five six"],
                              "dimensions": 1})
    assert status == 400, status
    e = error_of(body)
    assert e["message"] == "Invalid 'input[1]': maximum context length is 5 tokens.", e


@test
def tokens_per_request(t):
    # Calibrate with the server's own counter, whichever tokenizer it uses.
    text = "hello " * 1300
    status, _, body = t.plain.post({"model": SMALL, "input": text, "dimensions": 1})
    assert status == 200, status
    per = strict_json(body)["usage"]["prompt_tokens"]
    k = 300000 // per + 1
    status, _, body = t.plain.post({"model": SMALL, "input": [text] * k})
    assert status == 400, status
    e = error_of(body)
    assert e["message"] == "Requested %d tokens, max 300000 tokens per request" % (k * per), e
    assert e["type"] == "max_tokens_per_request" == e["code"], e


@test
def model_and_dimensions_errors(t):
    status, _, body = t.plain.post({"model": "nope-model", "input": "x"})
    assert status == 404, status
    e = error_of(body)
    assert e["message"] == ("The model `nope-model` does not exist or you do not have "
                            "access to it."), e
    assert e["code"] == "model_not_found", e
    status, _, body = t.plain.post({"input": "x"})
    assert status == 400 and "model" in error_of(body)["message"]
    for dims in (128, None):
        status, _, body = t.plain.post({"model": ADA, "input": "x", "dimensions": dims})
        assert status == 400, status
        assert error_of(body)["message"] == "This model does not support specifying dimensions."
    for model, dims in ((SMALL, 0), (SMALL, 1537), (LARGE, 3073), (SMALL, "8"), (SMALL, 1.5)):
        status, _, body = t.plain.post({"model": model, "input": "x", "dimensions": dims})
        assert status == 400, (model, dims, status)
        error_of(body)
    status, _, _ = t.plain.post({"model": LARGE, "input": "x", "dimensions": 3072})
    assert status == 200
    status, _, body = t.plain.post({"model": SMALL, "input": "x", "encoding_format": "hex"})
    assert status == 400
    error_of(body)
    status, _, body = t.plain.post({"model": SMALL, "input": "x", "user": "u1"})
    assert status == 200, status
    status, _, body = t.plain.post({"model": SMALL, "input": "x", "extra": 1})
    assert status == 400
    assert error_of(body)["message"] == "Unrecognized request argument supplied: extra"
    status, _, body = t.plain.post(b'{"model": "text-embedding-3-small", "input": ')
    assert status == 400
    assert error_of(body)["message"].startswith("We could not parse the JSON body")


@test
def paths(t):
    status, _, body = t.plain.post({"model": SMALL, "input": "x"}, path="/v1/other")
    assert status == 404, status
    assert error_of(body)["message"] == "Invalid URL (POST /v1/other)"
    status, _, _ = t.plain.post({"model": SMALL, "input": "x"}, path="/embeddings")
    assert status == 200, status
    status, _, _ = t.plain.post({"model": SMALL, "input": "x"}, path="/v1/embeddings?x=1")
    assert status == 200, status
    conn = t.plain.connect()
    conn.request("GET", "/v1/embeddings")
    r = conn.getresponse()
    assert r.status == 404, r.status
    error_of(r.read())
    conn.close()


@test
def faults_by_number(t):
    s = t.faults
    small = {"model": SMALL, "input": ["a", "b", "c"], "dimensions": 8}
    results = {}
    for kind in ("429", "quota", "500", "502", "503", "badjson", "wrongcount",
                 "dupindex", "wrongdims", "nan"):
        results[kind] = s.post(small)
    status, h, body = results["429"]
    assert status == 429 and error_of(body)["code"] == "rate_limit_exceeded"
    assert h["retry-after"] == "1" and h["retry-after-ms"] == "50", h
    assert "Please try again in" in error_of(body)["message"]
    status, _, body = results["quota"]
    e = error_of(body)
    assert status == 429 and e["code"] == "insufficient_quota" == e["type"], e
    for kind in ("500", "502", "503"):
        status, _, body = results[kind]
        assert status == int(kind), (kind, status)
        assert json.loads(body)["error"]["message"], kind
    status, _, body = results["badjson"]
    assert status == 200
    try:
        json.loads(body)
        raise AssertionError("badjson body parsed")
    except ValueError:
        pass
    data = strict_json(results["wrongcount"][2])["data"]
    assert len(data) == 2, len(data)
    idx = [d["index"] for d in strict_json(results["dupindex"][2])["data"]]
    assert len(set(idx)) < len(idx), idx
    lens = [len(d["embedding"]) for d in strict_json(results["wrongdims"][2])["data"]]
    assert sorted(lens) == [7, 8, 8], lens
    status, _, body = results["nan"]
    assert status == 200 and b"NaN" in body
    try:
        strict_json(body)
        raise AssertionError("nan body parsed as strict JSON")
    except ValueError:
        pass
    # 11: reset. The head promises the whole body; a RST follows part of it.
    got, err = raw_exchange(s.port, request_bytes(small))
    assert isinstance(err, ConnectionResetError) or len(got) == 0, (err, got[:100])
    # 12: truncate. A clean end of stream before Content-Length is reached.
    got, err = raw_exchange(s.port, request_bytes(small))
    assert err is None, err
    status, h, body = split_response(got)
    assert status == 200 and 0 < len(body) < int(h["content-length"]), (len(body), h)
    # 13: no fault left.
    status, _, _ = s.post(small)
    assert status == 200
    log = s.log_lines()
    assert [r["fault"] for r in log] == [
        "429", "quota", "500", "502", "503", "badjson", "wrongcount", "dupindex",
        "wrongdims", "nan", "reset", "truncate", None], [r["fault"] for r in log]
    assert [r["n"] for r in log] == list(range(1, 14))


@test
def faults_for_retry_policy(t):
    s = t.faults2
    small = {"model": SMALL, "input": ["a", "b", "c"], "dimensions": 8}
    # 1: 429body. Only the message says how long to wait.
    status, h, body = s.post(small)
    e = error_of(body)
    assert status == 429 and e["code"] == "rate_limit_exceeded", (status, e)
    assert "retry-after" not in h and "retry-after-ms" not in h, h
    assert "Please try again in 1.2s." in e["message"], e
    # 2: 429reset. Only the rate headers say it.
    status, h, body = s.post(small)
    e = error_of(body)
    assert status == 429 and e["code"] == "rate_limit_exceeded", (status, e)
    assert "retry-after" not in h and "retry-after-ms" not in h, h
    assert "try again" not in e["message"], e
    assert h["x-ratelimit-remaining-requests"] == "0", h
    assert h["x-ratelimit-reset-requests"] == "1.3s", h
    # 3: 403.
    status, _, body = s.post(small)
    e = error_of(body)
    assert status == 403 and e["code"] == "unsupported_country_region_territory", (status, e)
    # 4: 500noretry; 5: 400retry.
    status, h, body = s.post(small)
    assert status == 500 and h["x-should-retry"] == "false", (status, h)
    status, h, body = s.post(small)
    assert status == 400 and h["x-should-retry"] == "true", (status, h)
    assert error_of(body)["message"]
    # 6: stall. Half the body, then silence with the connection open.
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    sock.sendall(request_bytes(small))
    got = b""
    while True:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep and len(body) >= int(split_response(got)[1]["content-length"]) // 2:
            break
        chunk = sock.recv(65536)
        assert chunk, "stall closed the connection: %r" % got[:200]
        got += chunk
    status, h, body = split_response(got)
    assert status == 200 and len(body) == int(h["content-length"]) // 2, (len(body), h)
    # 7: no fault left. Answered on another connection; by then the stalled
    # one would have had its end too (as in fault_hang).
    status, _, _ = s.post(small)
    assert status == 200
    readable, _, _ = select.select([sock], [], [], 0)
    assert not readable, "stall sent more or closed"
    sock.close()
    log = s.wait_for_log(7)
    assert [r["fault"] for r in log] == [
        "429body", "429reset", "403", "500noretry", "400retry", "stall", None], log
    assert [r["status"] for r in log] == [429, 429, 403, 500, 400, 200, 200], log


@test
def fault_base64_variants(t):
    s = t.faults_b64
    body = {"model": SMALL, "input": ["a", "b"], "dimensions": 4, "encoding_format": "base64"}
    _, _, nan_body = s.post(body)
    vals = []
    for d in strict_json(nan_body)["data"]:
        raw = base64.b64decode(d["embedding"])
        vals += struct.unpack("<%df" % (len(raw) // 4), raw)
    assert any(math.isnan(v) for v in vals), vals
    _, _, dims_body = s.post(body)
    lens = sorted(len(base64.b64decode(d["embedding"])) // 4
                  for d in strict_json(dims_body)["data"])
    assert lens == [3, 4], lens
    # A fault that corrupts success bodies leaves an error response alone.
    status, _, _ = s.post({"model": SMALL, "input": []})
    assert status == 400
    assert s.log_lines()[-1]["fault"] is None


@test
def fault_hang(t):
    s = t.hang
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.sendall(request_bytes({"model": SMALL, "input": "x"}))
    s.wait_for_log(1)
    # A later request on another connection is answered; by then the hung
    # one would have had its answer too.
    status, _, _ = s.post({"model": SMALL, "input": "x"})
    assert status == 200
    log = s.log_lines()
    assert len(log) == 2, log
    readable, _, _ = select.select([sock], [], [], 0)
    assert not readable, "hang answered"
    sock.close()
    assert log[0]["fault"] == "hang" and log[0]["status"] is None, log[0]


def batch_call_bytes(call, close=False):
    """A raw Batch API request: "upload" (a one-line file) or "retrieve"."""
    head = b"Host: x\r\nAuthorization: Bearer sk-t\r\n" + (b"Connection: close\r\n" if close else b"")
    if call == "retrieve":
        return b"GET /v1/batches/batch_x HTTP/1.1\r\n" + head + b"\r\n"
    body = (b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="f.jsonl"'
            b'\r\n\r\n{"custom_id":"r1"}\n\r\n--b--\r\n')
    return (b"POST /v1/files HTTP/1.1\r\n" + head +
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def check_held(s, socks):
    """After a release, a new call is answered; by then the held ones on
    `socks` would have been. Closes them."""
    assert s.post(b"", path="/fake/release")[::2] == (200, b"{}")
    got, _ = raw_exchange(s.port, batch_call_bytes("retrieve", close=True))
    assert split_response(got)[0] == 404, got[:200]  # answered: no such batch
    readable, _, _ = select.select(socks, [], [], 0)
    assert not readable, "a held call was answered"
    for sock in socks:
        sock.close()


@test
def batch_calls_held_on_request(t):
    s = t.gated

    def send(call, logged):
        """Sends a call; returns its socket once the server logged it held."""
        sock = socket.create_connection(("127.0.0.1", s.port))
        sock.sendall(batch_call_bytes(call))
        assert s.wait_for_log(logged)[logged - 1]["call"] == call
        return sock
    # The second upload from now on is held, and every call after it.
    assert s.post(b"", path="/fake/hold/upload/2")[::2] == (200, b"{}")
    got, _ = raw_exchange(s.port, batch_call_bytes("upload", close=True))
    assert split_response(got)[0] == 200, got[:200]
    held = send("upload", 2)
    log = s.log_lines()
    assert log[1] == {"batch_api": "hold", "call": "upload", "n": 2}, log
    check_held(s, [held, send("retrieve", 3)])
    assert s.log_lines()[2] == {"batch_api": "held", "call": "retrieve"}
    # Freeze holds every call from now on.
    assert s.post(b"", path="/fake/freeze")[::2] == (200, b"{}")
    check_held(s, [send("upload", 4)])
    # Held calls had no effect: one upload stored.
    uploads = [e for e in s.log_lines() if e.get("batch_api") == "upload"]
    assert [e["uploads"] for e in uploads] == [1], uploads
    # A lost one has: only its answer is held.
    assert s.post(b"", path="/fake/lose/upload/1")[::2] == (200, b"{}")
    lost = send("upload", 6)
    log = s.log_lines()
    assert log[4]["batch_api"] == "upload" and log[4]["uploads"] == 2, log
    assert log[5] == {"batch_api": "hold", "call": "upload", "n": 1,
                      "lost": log[4]["file_id"]}, log
    check_held(s, [lost])
    assert s.post(b"", path="/fake/hold/upload/0")[0] == 404
    conn = s.connect()
    conn.request("GET", "/v1/batches?limit=2", headers={"Authorization": "Bearer sk-t"})
    r = conn.getresponse()
    assert (r.status, json.loads(r.read())) == (
        200, {"object": "list", "data": [], "has_more": False})


def batch_call(s, method, path, body=None, headers=None):
    """One Batch API call: (status, parsed JSON body)."""
    conn = s.connect()
    h = {"Authorization": "Bearer sk-t"}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    out = (r.status, json.loads(r.read()))
    conn.close()
    return out


def upload_requests(s, inputs):
    """Uploads a batch file of one request per list in `inputs`; its id."""
    lines = "".join(json.dumps({"custom_id": "r%d" % i, "method": "POST",
                                "url": "/v1/embeddings",
                                "body": {"model": SMALL, "input": texts}}) + "\n"
                    for i, texts in enumerate(inputs))
    body = ('--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            '--b\r\nContent-Disposition: form-data; name="file"; filename="f.jsonl"'
            '\r\n\r\n' + lines + '\r\n--b--\r\n').encode()
    status, obj = batch_call(s, "POST", "/v1/files", body,
                             {"Content-Type": "multipart/form-data; boundary=b"})
    assert status == 200, obj
    return obj["id"]


def create_job(s, file_id):
    status, obj = batch_call(s, "POST", "/v1/batches", json.dumps(
        {"input_file_id": file_id, "endpoint": "/v1/embeddings",
         "completion_window": "24h"}), {"Content-Type": "application/json"})
    assert status == 200 and obj["status"] == "validating", obj
    return obj["id"]


def job_after(s, job_id, state):
    """The job, polled until it has left `state` (an event; the deadline
    only stops a broken server)."""
    deadline = time.monotonic() + 10
    while True:
        status, obj = batch_call(s, "GET", "/v1/batches/" + job_id)
        assert status == 200, obj
        if obj["status"] != state:
            return obj
        assert time.monotonic() < deadline, "job stays " + state
        time.sleep(0.01)


@test
def batch_queue_limit(t):
    # "hello" is one token: jobs of 1,000 and 300 tokens under a limit of
    # 1,234. The jobs' clock is stopped while both are created, so the
    # first still holds the queue however slow the machine.
    s = Server(os.path.join(t.build, "fake_provider"), t.tmp,
               "--batch-queue-tokens", "1234", "--batch-delay-ms", "100")
    t.all.append(s)
    big = upload_requests(s, [["hello"] * 600, ["hello"] * 400])
    small = upload_requests(s, [["hello"] * 300])
    assert s.post(b"", path="/fake/stop-clock")[::2] == (200, b"{}")
    first = create_job(s, big)
    refused = create_job(s, small)  # created (200), then fails
    assert s.post(b"", path="/fake/start-clock")[::2] == (200, b"{}")
    creates = [e for e in s.log_lines() if e.get("batch_api") == "create"]
    assert [(e["tokens"], e["enqueued"], e.get("error")) for e in creates] == [
        (1000, 0, None), (300, 1000, "token_limit_exceeded")], creates
    failed = job_after(s, refused, "validating")
    assert failed["status"] == "failed", failed
    assert failed["errors"] == {"object": "list", "data": [{
        "code": "token_limit_exceeded", "line": None, "param": None,
        "message": "Enqueued token limit reached for text-embedding-3-small in "
                   "organization org-fake. Limit: 1,234 enqueued tokens. Please try again "
                   "once some in_progress batches have been completed."}]}, failed
    assert failed["request_counts"] == {"total": 0, "completed": 0, "failed": 0}, failed
    assert (failed["output_file_id"], failed["error_file_id"]) == (None, None), failed
    # The failed job held nothing; the first frees its tokens once it ends.
    assert job_after(s, job_after(s, first, "validating")["id"],
                     "in_progress")["status"] == "completed"
    again = create_job(s, small)
    creates = [e for e in s.log_lines() if e.get("batch_api") == "create"]
    assert (creates[-1]["batch_id"], creates[-1]["tokens"], creates[-1]["enqueued"],
            creates[-1].get("error")) == (again, 300, 0, None), creates


@test
def batch_clock_stopped(t):
    # While the jobs' clock is stopped a job created stays validating and
    # keeps its tokens in the queue, however long; started again, the clock
    # runs on from where it stopped.
    delay = 1.0
    s = Server(os.path.join(t.build, "fake_provider"), t.tmp, "--batch-queue-tokens", "1000",
               "--batch-delay-ms", str(int(delay * 1000)))
    t.all.append(s)
    assert s.post(b"", path="/fake/stop-clock")[::2] == (200, b"{}")
    job = create_job(s, upload_requests(s, [["hello"] * 600]))
    stopped = time.monotonic()
    # Polled through more than the job's whole course (validating, in
    # progress).
    while time.monotonic() - stopped < 2.2 * delay:
        status, obj = batch_call(s, "GET", "/v1/batches/" + job)
        assert (status, obj["status"]) == (200, "validating"), obj
        time.sleep(0.02)
    create_job(s, upload_requests(s, [["hello"] * 600]))
    creates = [e for e in s.log_lines() if e.get("batch_api") == "create"]
    assert [(e["enqueued"], e.get("error")) for e in creates] == [
        (0, None), (600, "token_limit_exceeded")], creates
    assert s.post(b"", path="/fake/start-clock")[::2] == (200, b"{}")
    # Had the stopped time counted, the job would have ended by now; this
    # holds unless the call takes longer than the job's whole course (2 s).
    status, obj = batch_call(s, "GET", "/v1/batches/" + job)
    assert obj["status"] in ("validating", "in_progress"), obj
    assert job_after(s, job_after(s, job, "validating")["id"],
                     "in_progress")["status"] == "completed"
    # Nor does a cancelling job become cancelled, once seen, while stopped.
    s = Server(os.path.join(t.build, "fake_provider"), t.tmp, "--batch-end", "cancelled",
               "--batch-delay-ms", "20")
    t.all.append(s)
    job = create_job(s, upload_requests(s, [["hello"]]))
    # A slow poll may not see it in progress; it is seen cancelling once.
    obj = job_after(s, job, "validating")
    if obj["status"] == "in_progress":
        obj = job_after(s, job, "in_progress")
    assert obj["status"] == "cancelling", obj
    assert s.post(b"", path="/fake/stop-clock")[::2] == (200, b"{}")
    assert batch_call(s, "GET", "/v1/batches/" + job)[1]["status"] == "cancelling"
    assert s.post(b"", path="/fake/start-clock")[::2] == (200, b"{}")
    assert batch_call(s, "GET", "/v1/batches/" + job)[1]["status"] == "cancelled"


@test
def fault_every_and_rate(t):
    statuses = [t.every.post({"model": SMALL, "input": "x", "dimensions": 1})[0]
                for _ in range(6)]
    assert statuses == [200, 500, 200, 500, 200, 500], statuses
    runs = []
    for s in (t.rate_a, t.rate_b):
        runs.append([s.post({"model": SMALL, "input": "x", "dimensions": 1})[0]
                     for _ in range(24)])
    assert runs[0] == runs[1], runs       # Same seed, same faults.
    assert set(runs[0]) == {200, 503}, runs[0]


@test
def rate_limit_requests(t):
    s = t.rpm
    body = {"model": SMALL, "input": "x", "dimensions": 1}
    st1, h1, _ = s.post(body)
    st2, h2, _ = s.post(body)
    st3, h3, b3 = s.post(body)
    assert (st1, st2, st3) == (200, 200, 429), (st1, st2, st3)
    assert h1["x-ratelimit-limit-requests"] == "2"
    assert h1["x-ratelimit-remaining-requests"] == "1", h1
    assert h2["x-ratelimit-remaining-requests"] == "0", h2
    for h in (h1, h2, h3):
        for k in ("x-ratelimit-limit-requests", "x-ratelimit-limit-tokens",
                  "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens",
                  "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
            assert k in h, k
        assert DURATION.match(h["x-ratelimit-reset-requests"]), h
        assert DURATION.match(h["x-ratelimit-reset-tokens"]), h
    # One request replenishes every 30 s.
    assert re.match(r"^(29\.\d+|30)s$", h1["x-ratelimit-reset-requests"]), h1
    assert re.match(r"^(59\.\d+s|1m0s)$", h2["x-ratelimit-reset-requests"]), h2
    e = error_of(b3)
    assert e["code"] == "rate_limit_exceeded" and e["type"] == "requests", e
    m = re.search(r"Please try again in (\S+)\.", e["message"])
    assert m and DURATION.match(m.group(1)), e
    assert h3["retry-after"] in ("29", "30"), h3
    assert 29000 <= int(h3["retry-after-ms"]) <= 30000, h3


@test
def rate_limit_tokens(t):
    s = t.tpm
    status, _, body = s.post({"model": SMALL, "input": "x" * 50000})
    # 50000 "x" are over 1000 tokens under any tokenizer... or the request
    # is over the context length; both refuse it, as OpenAI would.
    assert status in (400, 429), status
    status, h, body = s.post({"model": SMALL, "input": "hi", "dimensions": 1})
    assert status == 200
    used = strict_json(body)["usage"]["total_tokens"]
    assert h["x-ratelimit-limit-tokens"] == "1000"
    assert int(h["x-ratelimit-remaining-tokens"]) == 1000 - used, (h, used)
    big = "hello " * 200
    statuses = []
    for _ in range(8):
        status, h, body = s.post({"model": SMALL, "input": big, "dimensions": 1})
        statuses.append(status)
        if status == 429:
            break
    assert statuses[-1] == 429, statuses
    e = error_of(body)
    assert e["type"] == "tokens" and "Please try again in" in e["message"], e
    assert int(h["retry-after"]) >= 1 and int(h["retry-after-ms"]) > 0, h


@test
def no_limit_headers(t):
    _, h, _ = t.plain.post({"model": SMALL, "input": "x", "dimensions": 1})
    # Far above anything a test reaches, so a pacing client is not slowed.
    assert h["x-ratelimit-limit-requests"] == "1000000", h
    assert h["x-ratelimit-limit-tokens"] == "10000000000", h


@test
def keep_alive(t):
    conn = t.plain.connect()
    st1, h1, _ = t.plain.post({"model": SMALL, "input": "x", "dimensions": 1}, conn=conn)
    sock = conn.sock
    st2, h2, _ = t.plain.post({"model": SMALL, "input": "y", "dimensions": 1}, conn=conn)
    assert (st1, st2) == (200, 200)
    assert conn.sock is sock and sock is not None, "connection was not reused"
    assert h1["connection"].lower() == "keep-alive", h1
    conn.close()
    # Connection: close is honoured: the server ends the stream.
    got, err = raw_exchange(t.plain.port, request_bytes(
        {"model": SMALL, "input": "x", "dimensions": 1}, extra="Connection: close\r\n"))
    status, h, body = split_response(got)
    assert err is None and status == 200 and h["connection"] == "close", h
    assert len(body) == int(h["content-length"])


@test
def pipelining(t):
    one = request_bytes({"model": SMALL, "input": "x", "dimensions": 1})
    two = request_bytes({"model": SMALL, "input": "y", "dimensions": 1},
                        extra="Connection: close\r\n")
    got, err = raw_exchange(t.plain.port, one + two)
    assert err is None
    assert got.count(b"HTTP/1.1 200 OK") == 2, got[:200]


@test
def expect_continue_and_chunked(t):
    body = json.dumps({"model": SMALL, "input": ["x", "y"], "dimensions": 2}).encode()
    sock = socket.create_connection(("127.0.0.1", t.plain.port), timeout=10)
    sock.sendall(("POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                  "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)).encode())
    interim = b""
    while b"\r\n\r\n" not in interim:
        interim += sock.recv(1)
    assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
    sock.sendall(body)
    f = sock.makefile("rb")
    status_line = f.readline()
    assert b" 200 " in status_line, status_line
    sock.close()
    # Chunked, with a chunk extension and a trailer.
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                      for i in range(0, len(body), 7))
    req = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks +
           b"0\r\nX-Trailer: 1\r\n\r\n")
    got, err = raw_exchange(t.plain.port, req)
    status, _, resp = split_response(got)
    assert status == 200, got[:300]
    v = [f32(x) for x in strict_json(resp)["data"][1]["embedding"]]
    assert v == fake_vector(SMALL, 2, "y")


@test
def header_bound(t):
    req = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 +
           b"\r\nContent-Length: 0\r\n\r\n")
    got, _ = raw_exchange(t.plain.port, req)
    assert got.startswith(b"HTTP/1.1 431 "), got[:100]


@test
def latency_and_concurrency(t):
    s = t.slow  # --latency-ms 250 --latency-per-ktok-ms 200
    text = "hello " * 1000
    start = time.monotonic()
    status, _, body = s.post({"model": SMALL, "input": text, "dimensions": 1})
    elapsed = time.monotonic() - start
    tokens = strict_json(body)["usage"]["total_tokens"]
    assert status == 200
    assert elapsed >= (250 + 200 * tokens / 1000) / 1000, (elapsed, tokens)
    # Concurrency is exercised by the end-to-end tests (-j 8); an upper bound
    # on elapsed time here would be a timed test that can flake.


@test
def log_contents(t):
    s = t.logged
    s.post({"model": SMALL, "input": ["héllo", "b"], "encoding_format": "base64",
            "dimensions": 3})
    s.post({"model": SMALL, "input": [[1, 2]]}, key=None)
    s.post({"model": "nope", "input": "x"})
    log = s.log_lines()
    assert [r["n"] for r in log] == [1, 2, 3]
    keys = {"n", "model", "inputs", "tokens", "max_input_tokens", "bytes",
            "t_ms", "text_bytes", "encoding_format", "dimensions", "status", "fault", "auth", "texts"}
    for r in log:
        assert set(r) == keys, r
    a, b, c = log
    assert a["model"] == SMALL and a["inputs"] == 2 and a["status"] == 200
    assert a["encoding_format"] == "base64" and a["dimensions"] == 3
    assert a["tokens"] >= a["max_input_tokens"] > 0 and a["auth"] == "present"
    assert a["texts"] == ["héllo", "b"] and a["fault"] is None
    assert a["bytes"] > 0 and a["text_bytes"] == len("héllo".encode()) + 1
    assert b["status"] == 401 and b["auth"] == "missing" and b["texts"] == [[1, 2]]
    assert b["tokens"] == 2 and b["dimensions"] is None and b["encoding_format"] == "float"
    assert c["status"] == 404 and c["model"] == "nope"


@test
def stats_on_sigterm(t):
    s = t.logged
    code, err = s.stop()
    assert code == 0, (code, err)
    with open(s.stats) as f:
        stats = json.loads(f.read())
    assert set(stats) == {"requests", "cpu_user_s", "cpu_sys_s", "max_rss_kb"}, stats
    assert stats["requests"] == 3, stats
    assert json.loads(err.strip().splitlines()[-1]) == stats, err


@test
def verifier(t):
    """build/verify_embeddings accepts the server's vectors and reports the
    first line that differs."""
    binary = os.path.join(t.build, "verify_embeddings")
    texts = ["record %d \u00e9 \"q\"" % i for i in range(40)]
    status, _, body = t.plain.post({"model": SMALL, "input": texts})
    assert status == 200
    item = re.compile(rb'\{"object":"embedding","index":(\d+),"embedding":(\[[^\]]*\])\}')
    arrays = {int(m.group(1)): m.group(2).decode() for m in item.finditer(body)}
    ids = [i if i % 2 else "id-%d" % i for i in range(40)]
    expected = os.path.join(t.tmp, "verify_expected.jsonl")
    with open(expected, "w") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": ids[i], "text": text}) + "\n")
    good = ['{"id":%s,"embedding":%s,"tokens":3}' % (json.dumps(ids[i]), arrays[i])
            for i in range(40)]

    def run(lines, *extra):
        r = subprocess.run([binary, "--model", SMALL, "--expected", expected, *extra],
                           input="".join(line + "\n" for line in lines),
                           capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr

    code, out = run(good)
    assert code == 0 and out.strip() == "verified 40 records", (code, out)
    # Equal as JSON values, other spacing, more digits than needed, base64.
    alt = list(good)
    alt[1] = good[1].replace('"id":1,', '"id":1.0,')
    vec = json.loads(arrays[2])
    alt[2] = '{ "embedding" : [ %s ] , "id" : "id-2" }' % " , ".join("%.12g" % x for x in vec)
    vec4 = json.loads(arrays[4])
    raw = struct.pack("<%df" % len(vec4), *vec4)
    alt[4] = '{"id":"id-4","embedding":"%s"}' % base64.b64encode(raw).decode()
    code, out = run(alt, "--threads", "3")
    assert code == 0, out
    flipped = json.loads(arrays[7])
    flipped[100] = struct.unpack("<f", struct.pack("<I", struct.unpack(
        "<I", struct.pack("<f", flipped[100]))[0] ^ 1))[0]
    cases = [
        (lambda b: b.__setitem__(7, '{"id":7,"embedding":%s}' % json.dumps(flipped)),
         "line 8: embedding[100]"),
        (lambda b: b.__setitem__(3, b[3].replace('"id":3,', '"id":"3",')), "line 4: id"),
        (lambda b: b.__setitem__(5, '{"id":5,"embedding":%s}' % json.dumps(vec[:-1])),
         "line 6: embedding has 1535 floats"),
        (lambda b: b.__setitem__(9, b[9] + " x"), "line 10: output"),
        (lambda b: b.__setitem__(9, b[9].replace('"tokens":3', '"tokens":03')), "line 10: output"),
        (lambda b: b.__setitem__(9, b[9].replace('[', '[NaN,', 1)), "line 10: output"),
        (lambda b: b.__setitem__(9, b[9].replace('"id":9,', '')), "line 10: output has no"),
        (lambda b: b.pop(), "line 40: output ended"),
        (lambda b: b.append(b[0]), "line 41: output has more"),
        # Two errors: the earlier line is reported whatever the threading.
        (lambda b: (b.__setitem__(39, b[38]), b.__setitem__(12, b[13])), "line 13: "),
    ]
    for mutate, want in cases:
        lines = list(good)
        mutate(lines)
        code, out = run(lines, "--threads", "4")
        assert code == 1 and want in out, (want, code, out[:300])


# --- main ----------------------------------------------------------------------

class Servers:
    def __init__(self, binary, tmp):
        self.all = []
        self.build = os.path.dirname(binary)
        self.tmp = tmp

        def start(*args):
            s = Server(binary, tmp, *args)
            self.all.append(s)
            return s

        self.plain = start()
        self.keyed = start("--require-key", "sk-right-key-123456")
        self.echo = start("--require-key", "sk-right-key-123456", "--echo-key", "full")
        self.echo_azure = start("--require-key", "sk-right-key-123456", "--echo-key",
                                "masked", "--dialect", "azure")
        self.shuffled = start("--shuffle", "--seed", "3")
        self.faults = start("--faults", "1:429,2:quota,3:500,4:502,5:503,6:badjson,"
                            "7:wrongcount,8:dupindex,9:wrongdims,10:nan,11:reset,"
                            "12:truncate")
        self.faults_b64 = start("--faults", "1:nan,2:wrongdims,3:wrongcount")
        self.faults2 = start("--faults", "1:429body,2:429reset,3:403,4:500noretry,"
                             "5:400retry,6:stall")
        self.hang = start("--faults", "1:hang")
        self.every = start("--faults", "every:2:500")
        self.rate_a = start("--faults", "rate:0.5:503,rate:0:500", "--seed", "7")
        self.rate_b = start("--faults", "rate:0.5:503,rate:0:500", "--seed", "7")
        self.rpm = start("--rpm", "2")
        self.tpm = start("--tpm", "1000")
        self.slow = start("--latency-ms", "250", "--latency-per-ktok-ms", "200")
        self.logged = start("--log-texts")
        self.by_text = start("--faults", "text:poison:503", "--max-input-tokens", "5")
        self.gated = start()

    def stop(self):
        for s in self.all:
            if s.proc.poll() is None:
                s.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", help="run only tests whose name contains this")
    args = ap.parse_args()
    binary = os.path.join(args.build, "fake_provider")
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        servers = Servers(binary, tmp)
        try:
            for fn in TESTS:
                if args.k and args.k not in fn.__name__:
                    continue
                start = time.monotonic()
                try:
                    fn(servers)
                    passed += 1
                    print("PASS %s (%.2fs)" % (fn.__name__, time.monotonic() - start))
                except Exception as e:  # noqa: BLE001 - report every kind
                    failed += 1
                    print("FAIL %s: %s: %s" % (fn.__name__, type(e).__name__,
                                               str(e)[:500]))
        finally:
            servers.stop()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
