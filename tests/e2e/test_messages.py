#!/usr/bin/env python3
"""What embedpipe tells a user who got something wrong (issue 22): settings
refused before any request, the exit status when several things went wrong
at once, and the wording of messages, each asserted exactly."""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, eq, jsonl, main, run, test  # noqa: E402

DIMS = 8
STDIN = jsonl({"id": "a", "text": "alpha"}, {"id": "b", "text": "beta"})
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


if __name__ == "__main__":
    main()
