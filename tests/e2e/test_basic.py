#!/usr/bin/env python3
"""embedpipe end to end: exact output, wire encodings, ordering, fields,
inputs, normalization, command line, keys."""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MODEL, ROOT, Server, base_args, check, corpus, eq,  # noqa: E402
                     errors_of, gencorpus, jsonl, main, no_key_leak, run, spawn, test, tmpdir,
                     check_sent, unique, verify)

TINY = [
    b'{"id":1,"text":"Hello, world."}',
    b'{"meta":{"title":"Caf\\u00e9 \\"menu\\"","n":[1, 2 ,3]},"id":"b\\"q/\xc3\xa9",'
    b'"text":"  Cafe\\u0301 au lait\\r\\nnext line\\t "}',
    b'{"id":1.50,"text":"x"}',
    b'{"id":12345678901234567890,"text":"big\\u0000 id\\u0085"}',
    b'{"text":"id after text","id":-0}',
    '{"id":"emoji","text":"👨\u200d👩\u200d👧\u200d👦 family 🏳️\u200d🌈"}'.encode(),
    b'{"id":"esc","text":"\\ud83d\\ude00 escaped pair \\/ slash"}',
]
TINY_IDS = ['1', '"b\\"q/é"', '1.50', '12345678901234567890', '-0', '"emoji"', '"esc"']
TINY_CARRY = ['', '"meta.title":"Café \\"menu\\"","meta.n":[1,2,3]', '', '', '', '', '']


def norm(text, **kw):
    out, reason = gencorpus.normalize(text.encode("utf-8"), **kw)
    assert reason is None, reason
    return out


def tiny_texts():
    return [norm(json.loads(l)["text"]) for l in TINY]


@test
def tiny_input_exact_output():
    texts = tiny_texts()
    eq(texts[1], "Café au lait\nnext line", "normalized text 2 (test's own rule check)")
    with Server() as srv:
        r = run(base_args(srv, 8, "--carry", "meta.title", "--carry", "meta.n"),
                stdin=b"\n".join(TINY) + b"\n")
        log = srv.requests()
    r.expect_rc(0)
    verify(r.out, list(zip(TINY_IDS, texts)), 8, python_check=True, carries=TINY_CARRY)
    eq(r.summary(), (7, 0, 1, 0, 0), "summary numbers")
    eq(len(log), 1, "requests")
    e = log[0]
    eq((e["model"], e["inputs"], e["dimensions"], e["encoding_format"], e["status"], e["auth"]),
       (MODEL, 7, 8, "base64", 200, "present"), "logged request")
    eq(e["texts"], texts, "texts the server received")


@test
def native_dimensions_when_not_asked():
    with Server() as srv:
        r = run(base_args(srv, None, "-q"), stdin=TINY[0] + b"\n")
        log = srv.requests()
    r.expect_rc(0)
    eq(log[0]["dimensions"], None, "dimensions sent without --dimensions")
    verify(r.out, [("1", "Hello, world.")], None, python_check=True)
    eq(r.err, b"", "stderr with -q")


@test
def float_and_base64_wire_formats_give_identical_output():
    c = corpus(120, seed=2)
    outs = {}
    for enc in ("float", "base64"):
        with Server() as srv:
            r = run(base_args(srv, 24, "--encoding", enc, "--batch-inputs", "25"), stdin=c.data)
            log = srv.requests()
        r.expect_rc(0)
        eq({e["encoding_format"] for e in log}, {enc}, "encoding_format on the wire")
        outs[enc] = r.out
    eq(outs["float"] == outs["base64"], True, "float and base64 outputs identical")
    verify(outs["float"], list(zip(c.expected_id_text, [e["text"] for e in c.expected])), 24)


@test
def shuffled_server_answers_still_give_input_order():
    c = corpus(120, seed=2)
    outs = []
    for shuffle in (False, True):
        with Server(*(["--shuffle", "--seed", "5"] if shuffle else [])) as srv:
            r = run(base_args(srv, 24, "--batch-inputs", "7", "-q"), stdin=c.data)
            log = srv.requests()
        r.expect_rc(0)
        check_sent([t for e in log for t in e["texts"]], [e["text"] for e in c.expected])
        check(len(log) <= (len(c.expected) + 6) // 7, "requests")
        outs.append(r.out)
    eq(outs[0] == outs[1], True, "output with --shuffle identical to without")
    verify(outs[1], list(zip(c.expected_id_text, [e["text"] for e in c.expected])), 24)


@test
def concurrency_1_and_8_give_identical_output():
    c = corpus(120, seed=2)
    outs = []
    for j in ("1", "8"):
        with Server("--latency-ms", "15", "--shuffle") as srv:
            r = run(base_args(srv, 16, "--batch-inputs", "5", "-j", j), stdin=c.data)
            log = srv.requests()
        r.expect_rc(0)
        check_sent([t for e in log for t in e["texts"]], [e["text"] for e in c.expected])
        check(max(e["inputs"] for e in log) <= 5, "a request has over 5 inputs")
        eq(r.summary()[:4], (len(c.expected), 0, len(log), 0), "summary")
        outs.append(r.out)
    eq(outs[0] == outs[1], True, "-j 1 and -j 8 outputs identical")
    verify(outs[1], list(zip(c.expected_id_text, [e["text"] for e in c.expected])), 16)


@test
def nested_id_and_text_fields_and_carry():
    lines = [
        b'{"meta":{"id":"n1","title":"First","tags":[ "a" , "b" ]},"body":{"text":"one"},"n":1.0}',
        b'{"body":{"text":"two","id":"not-this"},"meta":{"title":null,"id":2},"n":{"x":[true,false]}}',
        b'{"meta":{"id":3,"id":"dup-ignored"},"body":{"text":"three"},"extra":1}',
        # carried values keep numbers as written; a missing one is left out
        b'{"meta":{"id":"n4","title":"T\\u00fc\\t4"},"body":{"text":"four"},"n":1e3}',
    ]
    with Server() as srv:
        r = run(base_args(srv, 8, "--id-field", "meta.id", "--text-field", "body.text",
                          "--carry", "meta.title", "--carry", "n", "--carry", "meta.tags"),
                stdin=b"\n".join(lines) + b"\n")
    r.expect_rc(0)
    verify(r.out, [('"n1"', "one"), ('2', "two"), ('3', "three"), ('"n4"', "four")], 8,
           python_check=True, carries=[
               '"meta.title":"First","n":1.0,"meta.tags":["a","b"]',
               '"meta.title":null,"n":{"x":[true,false]}',
               '',
               '"meta.title":"Tü\\t4","n":1e3'])


@test
def ids_and_carried_values_keep_their_json_form():
    # Strings are re-escaped (control characters as \u00XX, everything else
    # raw UTF-8, "\/" as "/"); numbers stay exactly as written.
    lines = [
        b'{"id":"a\\u0001b\\u001f\\u007f\\u2028\\/\\"\\\\","text":"x","c":"\\ud83d\\ude00\\u00e9\\n"}',
        b'{"id":1E+3,"text":"y","c":-0.0e-0}',
        b'{"id":"","text":"z","c":{ }}',
        b'{"id":-12.500,"text":"w","c":[ ]}',
    ]
    with Server() as srv:
        r = run(base_args(srv, 3, "--carry", "c"), stdin=b"\n".join(lines) + b"\n")
    r.expect_rc(0)
    verify(r.out, [(json.dumps("a\x01b\x1f\x7f\u2028/\"\\", ensure_ascii=False), "x"),
                   ("1E+3", "y"), ('""', "z"), ("-12.500", "w")], 3, python_check=True,
           carries=['"c":"\U0001F600\u00e9\\n"', '"c":-0.0e-0', '"c":{}', '"c":[]'])


@test
def nested_field_errors_name_the_path():
    lines = [b'{"meta":{"id":"ok"},"body":{"text":"fine"}}',
             b'{"meta":{"id":"x"},"body":"flat"}',
             b'{"meta":{},"body":{"text":"no id"}}',
             b'{"meta":{"id":[1]},"body":{"text":"array id"}}']
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, 8, "--id-field", "meta.id", "--text-field", "body.text",
                          "--errors", errors), stdin=b"\n".join(lines) + b"\n")
    r.expect_rc(2)
    verify(r.out, [('"ok"', "fine")], 8, python_check=True)
    eq(errors_of(r), [
        {"line": 2, "source": "-", "id": "x", "field": "body.text",
         "error": 'field "body.text" is missing'},
        {"line": 3, "source": "-", "field": "meta.id", "error": 'field "meta.id" is missing'},
        {"line": 4, "source": "-", "field": "meta.id",
         "error": 'field "meta.id" must be a string or number, got array'}], "errors")


@test
def several_input_files_and_stdin():
    d = tmpdir()
    a = os.path.join(d, "a.jsonl")
    b = os.path.join(d, "b.jsonl")
    errors = os.path.join(d, "errors.jsonl")
    with open(a, "wb") as f:
        f.write(b'{"id":"a1","text":"alpha one"}\n{"id":"a2"}\n{"id":"a3","text":"alpha three"}')
    with open(b, "wb") as f:
        f.write(b'\n{"id":"b1","text":"beta one"}\n[]\n')
    stdin = b'{"id":"s1","text":"stdin one"}\r\n{"id":"s2","text":"  "}\n{"id":"s3","text":"s3"}\n'
    with Server() as srv:
        r = run(base_args(srv, 8, "--errors", errors, "--batch-inputs", "2", a, "-", b),
                stdin=stdin)
    r.expect_rc(2)
    verify(r.out, [('"a1"', "alpha one"), ('"a3"', "alpha three"), ('"s1"', "stdin one"),
                   ('"s3"', "s3"), ('"b1"', "beta one")], 8, python_check=True)
    eq([l for l, _ in r.errors()], [
        '{"line":2,"source":%s,"id":"a2","field":"text","error":"field \\"text\\" is missing"}'
        % json.dumps(a),
        '{"line":2,"source":"-","id":"s2","field":"text","error":"text is empty after normalization"}',
        '{"line":3,"source":%s,"error":"expected a JSON object, got an array"}' % json.dumps(b),
    ], "errors file lines")
    eq(r.summary()[:2], (5, 3), "summary counts")


@test
def unreadable_input_file_is_a_usage_error_before_any_request():
    d = tmpdir()
    with Server() as srv:
        r = run(base_args(srv, 8, os.path.join(d, "missing.jsonl")), stdin=TINY[0] + b"\n")
        log = srv.requests()
    r.expect_rc(1)
    check("missing.jsonl" in r.err_text, "message names the file: %r" % r.err_text)
    eq(r.out, b"", "stdout")
    eq(log, [], "requests sent")


@test
def directory_as_input_is_a_usage_error_before_any_request():
    d = tmpdir()
    with Server() as srv:
        r = run(base_args(srv, 8, d), stdin=TINY[0] + b"\n")
        log = srv.requests()
    r.expect_rc(1)
    eq(r.err_text.splitlines()[0], "embedpipe: error: cannot read %s: Is a directory" % d,
       "first stderr line")
    eq(r.out, b"", "stdout")
    eq(log, [], "requests sent")


@test
def blank_lines_are_skipped_silently():
    stdin = (b"\n   \n" + TINY[0] + b"\n\t\n \r\n\r\n" + TINY[2] + b"\n\n\n" +
             b'{"id":"last","text":"no newline at the end"}')
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, 8, "--errors", errors), stdin=stdin)
    r.expect_rc(0)
    verify(r.out, [("1", "Hello, world."), ("1.50", "x"), ('"last"', "no newline at the end")],
           8, python_check=True)
    eq(r.errors_text, "", "errors file")
    eq(r.summary()[:2], (3, 0), "summary counts")


@test
def byte_order_mark_at_start_is_ignored():
    with Server() as srv:
        r = run(base_args(srv, 8), stdin=b"\xef\xbb\xbf" + TINY[0] + b"\n")
    r.expect_rc(0)
    verify(r.out, [("1", "Hello, world.")], 8, python_check=True)


NORM_TEXTS = [
    "  A\u030angstro\u0308m caf\u00e9\u0301 \ufb01le x\u00b2 \uff21\uff22 \u2460  ",
    "\u1100\u1161\u11a8 jamo \r\n crlf \r cr \x00nul\x07bel\x1b[0m \x7fdel \x85nel \x9bcsi",
    "\t\u3000\u00a0 wide\u2003space \u200bzw \u00adshy\ufeff \u2028",
    "\u0065\u0301\u0323 order of marks; Vie\u0323\u0302t; \u212b angstrom sign; \u2126",
]


@test
def normalization_nfc_nfkc_none_as_specified():
    stdin = jsonl(*({"id": i, "text": t} for i, t in enumerate(NORM_TEXTS)))
    for form in ("nfc", "nfkc", "none"):
        with Server() as srv:
            r = run(base_args(srv, 8, "--normalize", form), stdin=stdin)
            log = srv.requests()
        r.expect_rc(0)
        want = [norm(t, form=form) for t in NORM_TEXTS]
        eq(log[0]["texts"], want, "texts sent with --normalize %s" % form)
        verify(r.out, [(str(i), t) for i, t in enumerate(want)], 8, python_check=True)
    # The rules as the test reads them, so a wrong reading shows here.
    eq(norm(NORM_TEXTS[1]), "\uac01 jamo \n crlf \n cr nulbel[0m del nel csi", "nfc of text 2")


@test
def invalid_utf8_replaced_or_rejected():
    bad = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\x80",
           b"\xf0\x9f\x98", b"\xc3"]
    lines = [b'{"id":%d,"text":"ok \xc3\xa9 %s end"}' % (i, b) for i, b in enumerate(bad)]
    stdin = b"\n".join(lines) + b"\n"
    raws = [b"ok \xc3\xa9 " + b + b" end" for b in bad]
    with Server() as srv:
        r = run(base_args(srv, 8), stdin=stdin)
        log = srv.requests()
    r.expect_rc(0)
    want = [gencorpus.normalize(raw)[0] for raw in raws]
    eq(want[2], "ok é \ufffd\ufffd\ufffd end", "test's own reading of maximal subparts")
    eq(log[0]["texts"], unique(want), "texts sent (U+FFFD per maximal subpart), each once")
    verify(r.out, [(str(i), t) for i, t in enumerate(want)], 8, python_check=True)

    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, 8, "--invalid-utf8", "reject", "--errors", errors),
                stdin=stdin + b'{"id":"fine","text":"fine"}\n')
    r.expect_rc(2)
    verify(r.out, [('"fine"', "fine")], 8, python_check=True)
    eq(errors_of(r), [{"line": i + 1, "source": "-", "id": i, "field": "text",
                       "error": "text is not valid UTF-8 at byte 6"} for i in range(len(bad))],
       "errors with --invalid-utf8 reject")


@test()
def lone_low_surrogate_escape_is_rejected():
    # RapidJSON 1.1.0 rejects a lone high surrogate escape but decodes a lone
    # low one (\udc00) into the bytes ED B0 80; the parser catches that so
    # both are the same invalid-JSON error.
    line = b'{"id":"low","text":"tail \\udc00 only"}'
    high = b'{"id":"high","text":"x \\ud800 y"}'
    d = tmpdir()
    errors = os.path.join(d, "errors.jsonl")
    with Server() as srv:
        r = run(base_args(srv, 8, "--errors", errors),
                stdin=line + b"\n" + high + b"\n")
        log = srv.requests()
    eq(errors_of(r), [
        {"line": 1, "source": "-",
         "error": "invalid JSON at byte %d: The surrogate pair in string is invalid"
         % line.index(b"\\udc00")},
        {"line": 2, "source": "-",
         "error": "invalid JSON at byte %d: The surrogate pair in string is invalid"
         % high.index(b"\\ud800")}],
       "errors for lone surrogate escapes (texts sent: %r)" % [e["texts"] for e in log])
    r.expect_rc(2)


@test
def help_and_version():
    r = run(["--help"])
    r.expect_rc(0)
    for flag in ("--id-field", "--text-field", "--carry", "--normalize", "--invalid-utf8",
                 "--base-url", "--model", "--dimensions", "--api-key-env", "--encoding",
                 "--batch-inputs", "--batch-tokens", "--max-input-tokens", "--concurrency",
                 "--connect-timeout", "--timeout", "--max-attempts", "--errors", "--quiet",
                 "--version"):
        check(flag.encode() in r.out, "--help does not mention %s" % flag)
    eq(r.err, b"", "stderr of --help")
    with open(os.path.join(ROOT, "VERSION")) as f:
        version = f.read().strip()
    for flag in ("--version", "-V"):
        r = run([flag])
        r.expect_rc(0)
        eq(r.out.decode().strip(), "embedpipe " + version, "%s output" % flag)
    r = run(["-h"])
    r.expect_rc(0)


@test
def usage_errors_exit_1():
    for args, needle in ((["--no-such-flag"], "--no-such-flag"),
                         (["--normalize", "nfd"], "nfd"),
                         (["-j", "0"], "0"),
                         (["--batch-inputs", "x"], "x"),
                         (["--encoding"], "--encoding"),
                         (["--carry", "a..b"], "a..b"),
                         (["--carry", "x", "--carry", "x"], "x")):
        r = run(["--base-url", "http://127.0.0.1:9/v1"] + args, stdin=TINY[0] + b"\n")
        if r.rc != 1:
            raise AssertionError("%s: exit %d, want 1; stderr %r" % (args, r.rc, r.err_text))
        eq(r.out, b"", "stdout for %s" % args)
        check(needle in r.err_text, "%s: stderr does not mention %r: %r" % (args, needle, r.err_text))


@test
def missing_key_with_default_base_url_exits_1():
    r = run([], stdin=TINY[0] + b"\n", key=None)
    r.expect_rc(1)
    check("OPENAI_API_KEY" in r.err_text, "message names OPENAI_API_KEY: %r" % r.err_text)
    eq(r.out, b"", "stdout")
    r = run(["--api-key-env", "MY_EMBED_KEY"], stdin=TINY[0] + b"\n", key=None)
    r.expect_rc(1)
    check("MY_EMBED_KEY" in r.err_text, "message names MY_EMBED_KEY: %r" % r.err_text)


@test
def base_url_from_environment_and_key_from_named_variable():
    other = "sk-e2e-other-Hk3Jq9Wm2Np5secret"
    with Server("--require-key", other) as srv:
        r = run(["--dimensions", "8", "--api-key-env", "MY_EMBED_KEY"], stdin=TINY[0] + b"\n",
                env={"OPENAI_BASE_URL": srv.url, "MY_EMBED_KEY": other})
        log = srv.requests()
    r.expect_rc(0)
    verify(r.out, [("1", "Hello, world.")], 8, python_check=True)
    eq([e["auth"] for e in log], ["present"], "auth")
    no_key_leak(r.out, r.err, key=other)


@test
def no_key_and_custom_base_url_sends_no_authorization():
    with Server() as srv:
        r = run(base_args(srv, 8, "-j", "1"), stdin=TINY[0] + b"\n", key=None)
        log = srv.requests()
    r.expect_rc(3)
    eq([(e["auth"], e["status"]) for e in log], [("missing", 401)], "requests")
    check("API key" in r.err_text, "message passes on the API's reason: %r" % r.err_text)


@test
def write_error_exits_4():
    with Server() as srv:
        with open("/dev/full", "wb") as full:
            p = spawn(base_args(srv, 8), stdin=subprocess.PIPE, stdout=full,
                      stderr=subprocess.PIPE)
            _, err = p.communicate(TINY[0] + b"\n", timeout=60)
    eq(p.returncode, 4, "exit status writing to /dev/full (stderr %r)" % err)
    check(b"cannot write output" in err, "message: %r" % err)


if __name__ == "__main__":
    main()
