#!/usr/bin/env python3
"""What embedpipe tells a user who got something wrong (issue 22): settings
refused before any request, the exit status when several things went wrong
at once, and the wording of messages, each asserted exactly."""

import os
import socket
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (KEY, KEY_FILE_MARK, Server, base_args, check, eq, errors_of,  # noqa: E402
                     jsonl, main, run, test, tmpdir)

DIMS = 8
STDIN = jsonl({"id": "a", "text": "alpha"}, {"id": "b", "text": "beta"})
BAD_LINE = b'{"id":"bad","text":'
USAGE_TAIL = "\nTry 'embedpipe --help'.\n"


# --------------------------------------------------------------------------
# Item 5: a --base-url libcurl will not use is a usage error.

@test
def a_malformed_base_url_is_a_usage_error_before_any_request():
    with Server() as srv:
        cases = [
            ("ftp://x", "--base-url ftp://x: the scheme is ftp; embedpipe speaks http and "
                        "https only"),
            ("FILE:///etc/passwd", "--base-url FILE:///etc/passwd: the scheme is FILE; "
                                   "embedpipe speaks http and https only"),
            ("notaurl", "--base-url notaurl is not a URL: give http:// or https://, a host "
                        "and a path, as in https://api.openai.com/v1"),
            ("http://", "--base-url http:// is not a URL: give http:// or https://, a host "
                        "and a path, as in https://api.openai.com/v1"),
        ]
        for bad, message in cases:
            # Every --base-url is checked, not only the first; one attempt
            # only, so that a binary without the check fails fast.
            r = run(["--base-url", srv.url, "--base-url", bad, "--dimensions", str(DIMS),
                     "--max-attempts", "1", "--connect-timeout", "2"], stdin=STDIN)
            eq(r.rc, 1, "%s: exit status (%s)" % (bad, r.err_text[-300:]))
            eq(r.err_text, "embedpipe: error: " + message + USAGE_TAIL, "%s: stderr" % bad)
        # $OPENAI_BASE_URL, which stands for --base-url, is named as itself.
        r = run(["--dimensions", str(DIMS), "--max-attempts", "1"], stdin=STDIN,
                env={"OPENAI_BASE_URL": "gopher://x"})
        eq(r.rc, 1, "$OPENAI_BASE_URL: exit status")
        eq(r.err_text, "embedpipe: error: $OPENAI_BASE_URL gopher://x: the scheme is gopher; "
           "embedpipe speaks http and https only" + USAGE_TAIL, "$OPENAI_BASE_URL: stderr")
        eq(srv.requests(), [], "requests")


# --------------------------------------------------------------------------
# Item 8: what is never contacted needs no address.

@test
def dry_run_and_count_tokens_need_no_base_url():
    for provider in (["--provider", "azure"],
                     ["--provider", "openai-compatible", "--model", "my-model",
                      "--tokenizer", "estimate"]):
        for mode in ("--dry-run", "--count-tokens"):
            r = run(provider + [mode], stdin=STDIN, key=None)
            eq(r.rc, 0, "%s %s: exit status (%s)" % (provider[1], mode, r.err_text[-300:]))
            if mode == "--count-tokens":
                eq(len(r.lines), 2, "%s: output lines" % provider[1])
            else:
                eq(r.stats["records"]["embedded"], 2, "%s: records a run would embed" % provider[1])
    # A real run still needs one.
    r = run(["--provider", "azure"], stdin=STDIN)
    eq(r.rc, 1, "azure without --base-url: exit status")
    check("--provider azure needs --base-url (or $AZURE_OPENAI_ENDPOINT)" in r.err_text,
          r.err_text)


# --------------------------------------------------------------------------
# Item 9: one precedence when several things go wrong: 4 > 3 > 130 > 2.

@test
def exit_status_when_several_things_go_wrong():
    d = tmpdir("precedence")
    unwritable = os.path.join(d, "no-such-dir", "stats.json")
    # A rejected record and an unwritable --stats: 4, not 2.
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--stats", unwritable), stdin=STDIN + BAD_LINE + b"\n")
    eq(r.rc, 4, "rejected + --stats unwritable: exit status (%s)" % r.err_text[-300:])
    check("embedpipe: error: cannot write %s: No such file or directory\n" % unwritable
          in r.err_text, r.err_text)
    check(" 1 rejected" in r.err_text, "the summary still shows: %s" % r.err_text)
    # The API refusing the run and an unwritable --stats: 4, not 3.
    with Server("--require-key", "sk-another-key") as srv:
        r = run(base_args(srv, DIMS, "--stats", unwritable), stdin=STDIN)
    eq(r.rc, 4, "fatal API error + --stats unwritable: exit status (%s)" % r.err_text[-300:])
    check("the API refused the run: HTTP 401" in r.err_text, r.err_text)
    # A rejected record and the API refusing the run: 3.
    with Server("--require-key", "sk-another-key") as srv:
        r = run(base_args(srv, DIMS), stdin=STDIN + BAD_LINE + b"\n")
    eq(r.rc, 3, "rejected + fatal API error: exit status")
    # --stats alone: 4; and the file, when written, holds the exit status.
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--stats", unwritable), stdin=STDIN)
    eq(r.rc, 4, "--stats unwritable alone: exit status")
    with Server() as srv:
        r = run(base_args(srv, DIMS), stdin=STDIN + BAD_LINE + b"\n")
    eq((r.rc, r.stats["exit_status"]), (2, 2), "rejected: exit status, and in --stats")


# --------------------------------------------------------------------------
# Item 10: messages.

@test
def gave_up_after_one_attempt_is_singular():
    with Server("--faults", "every:1:500") as srv:
        r = run(base_args(srv, DIMS, "--max-attempts", "1", "--errors",
                          os.path.join(tmpdir("once"), "errors")), stdin=STDIN)
    eq(r.rc, 2, "exit status")
    reasons = sorted({e["error"].split(": HTTP")[0] for e in errors_of(r)})
    eq(reasons, ["gave up after 1 attempt"], "reasons")
    with Server("--faults", "every:1:500") as srv:
        r = run(base_args(srv, DIMS, "--max-attempts", "2", "--max-retry-wait", "0",
                          "--errors", os.path.join(tmpdir("twice"), "errors")), stdin=STDIN)
    reasons = sorted({e["error"].split(": HTTP")[0] for e in errors_of(r)})
    eq(reasons, ["gave up after 2 attempts"], "reasons")


@test
def a_number_flag_given_text_says_it_is_not_a_number():
    cases = [
        (["-j", "abc"], "--concurrency: 'abc' is not a number"),
        (["--concurrency=1.5"], "--concurrency: '1.5' is not a whole number"),
        (["--batch-inputs", "x1"], "--batch-inputs: 'x1' is not a number"),
        (["--timeout", "soon"], "--timeout: 'soon' is not a number"),
        (["--timeout", "nan"], "--timeout: 'nan' is not a number"),
        (["--price", "inf"], "--price: 'inf' is not a number"),
        # A number out of range still says so.
        (["-j", "0"], "--concurrency: Value 0 not in range 1 to 1000"),
    ]
    for args, message in cases:
        r = run(args, stdin=b"", key=None)
        eq(r.rc, 1, "%r: exit status" % args)
        eq(r.err_text, "embedpipe: error: " + message + USAGE_TAIL, "%r: stderr" % args)


@test
def input_errors_name_what_is_wrong():
    d = tmpdir("input")
    lines = [
        # A raw 0x01 inside a string: JSON wants it escaped.
        b'{"id":1,"text":"a\x01b"}',
        # A byte order mark on a line after the first (files joined by cat).
        b'\xef\xbb\xbf{"id":2,"text":"second file"}',
        # A broken escape is still an invalid escape.
        b'{"id":3,"text":"a\\qb"}',
    ]
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--errors", os.path.join(d, "errors")),
                stdin=STDIN + b"\n".join(lines) + b"\n")
    eq(r.rc, 2, "exit status")
    eq([(e["line"], e["error"]) for e in errors_of(r)], [
        (3, "invalid JSON at byte 17: unescaped control character U+0001 in a string (JSON "
            "writes it as \\u0001)"),
        (4, "invalid JSON at byte 0: Invalid value (a UTF-8 byte order mark starts the line; "
            "one is skipped only at the start of a file: were files joined with cat?)"),
        (5, "invalid JSON at byte 17: Invalid escape character in string"),
    ], "errors")


@test
def counts_in_messages_have_thousands_separators():
    # As the summary writes them.
    n = 1234
    data = b"".join(b'{"id":%d,"text":"t%d"}\n' % (i, i) for i in range(n))
    r = run(["--count-tokens"], stdin=data, key=None)
    r.expect_rc(0)
    check(r.err_text.startswith("embedpipe: 1,234 counted, 0 rejected; "), r.err_text)
    r = run(["--dry-run"], stdin=(BAD_LINE + b"\n") * n, key=None)
    r.expect_rc(2)
    check("embedpipe: 1,214 more rejected records not shown; use --errors FILE to keep them "
          "all\n" in r.err_text, r.err_text[-500:])
    # A flag's value stays as it is typed.
    long_text = "word " * 9000
    d = tmpdir("overlong")
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--overlong", "skip", "--errors", os.path.join(d, "e")),
                stdin=jsonl({"id": 1, "text": long_text}))
    eq([e["error"] for e in errors_of(r)],
       ["text has 9,000 tokens, over --max-input-tokens 8191 (--overlong skip)"], "reason")


@test
def the_401_hint_names_where_the_key_came_from():
    d = tmpdir("hint")
    path = os.path.join(d, "openai" + KEY_FILE_MARK)
    with open(path, "w") as f:
        f.write(KEY + "\n")
    os.chmod(path, 0o600)
    for args, env, origin in ((["--api-key-file", path], None, "--api-key-file " + path),
                              ([], {"OPENAI_API_KEY": KEY}, "$OPENAI_API_KEY"),
                              (["--api-key-env", "MY_KEY"], {"MY_KEY": KEY}, "$MY_KEY")):
        with Server("--require-key", "sk-another-key") as srv:
            r = run(base_args(srv, DIMS, *args), stdin=STDIN, key=None, env=env)
        eq(r.rc, 3, "%s: exit status" % origin)
        check(r.err_text.rstrip("\n").endswith(
            ". You can find your API key at https://platform.openai.com/account/api-keys. "
            "(the key came from %s)" % origin), "%s: %s" % (origin, r.err_text[-400:]))
    # No key sent at all: no variable to blame (a local server's default,
    # or the variable empty).
    with Server("--require-key", "sk-another-key") as srv:
        r = run(base_args(srv, DIMS), stdin=STDIN, key=None)
    eq(r.rc, 3, "no key: exit status")
    check(r.err_text.rstrip("\n").endswith(
        "(no API key was sent: $OPENAI_API_KEY is empty or unset)"), r.err_text[-400:])
    with Server("--dialect", "tei", "--require-key", "sk-another-key") as srv:
        r = run(["--provider", "tei", "--model", "BAAI/bge-small-en-v1.5", "--base-url",
                 "http://127.0.0.1:%d" % srv.port],
                stdin=STDIN, key=None)
    eq(r.rc, 3, "tei, no key: exit status")
    check(r.err_text.endswith("embedpipe: error: the API refused the run: HTTP 401: HTTP 401 "
                              "(no API key was sent: give one with --api-key-env or "
                              "--api-key-file)\n"), r.err_text[-400:])


def dead_port():
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@test
def a_dead_proxy_is_named_without_its_credentials():
    port = dead_port()
    with Server() as srv:
        r = run(base_args(srv, DIMS, "--max-attempts", "1", "--errors",
                          os.path.join(tmpdir("proxy"), "errors")), stdin=STDIN,
                env={"http_proxy": "http://user:s3cretpass@127.0.0.1:%d" % port})
        eq(srv.requests(), [], "requests that reached the server")
    eq(r.rc, 2, "exit status (%s)" % r.err_text[-300:])
    eq(sorted({e["error"] for e in errors_of(r)}),
       ["gave up after 1 attempt: Couldn't connect to server (through the proxy "
        "http://127.0.0.1:%d that $http_proxy names)" % port], "reasons")
    check(b"s3cretpass" not in r.err + r.errors_text.encode(), "the proxy's password shows")


if __name__ == "__main__":
    main()
