#!/usr/bin/env python3
"""embedpipe end to end with every --provider (issue #9): a 2,000-section
corpus against build/fake_provider speaking that provider's dialect, every
vector verified bit for bit, every request within that provider's caps as
the server counted them; the provider's key header and variable; errors in
each dialect's shape; and a journal never reused across providers, models
or input types."""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakevec  # noqa: E402
from harness import (KEY, Server, check, corpus, eq, jsonl, main, run, split_lines,  # noqa: E402
                     split_output_line, test, tmpdir, verify)

SECTIONS = 2000

# Per provider: the fake's dialect, the URL path embedpipe's --base-url
# adds to the server's root, the key variable (None: a local server), the
# model, its vector length, and the caps the fake enforces for it (inputs
# per request, tokens per request or None, tokens per input).
PROVIDERS = {
    "azure": dict(path="", key_env="AZURE_OPENAI_API_KEY", model="text-embedding-3-small",
                  dims=1536, inputs=2048, tokens=300000, input_tokens=8192),
    # The fake's own OpenAI API stands in for vLLM and the like.
    "openai-compatible": dict(path="/v1", key_env="OPENAI_API_KEY",
                              model="text-embedding-3-small", dims=1536, inputs=2048,
                              tokens=300000, input_tokens=8192),
    "cohere": dict(path="", key_env="COHERE_API_KEY", model="embed-v4.0", dims=1536,
                   inputs=96, tokens=None, input_tokens=128000),
    "voyage": dict(path="/v1", key_env="VOYAGE_API_KEY", model="voyage-3.5", dims=1024,
                   inputs=1000, tokens=320000, input_tokens=32000),
    "gemini": dict(path="/v1beta", key_env="GEMINI_API_KEY", model="gemini-embedding-001",
                   dims=3072, inputs=100, tokens=None, input_tokens=2048),
    "ollama": dict(path="", key_env=None, model="nomic-embed-text", dims=768, inputs=None,
                   tokens=None, input_tokens=8192),
    "tei": dict(path="", key_env=None, model="BAAI/bge-small-en-v1.5", dims=384, inputs=32,
                tokens=None, input_tokens=512),
}


def server(provider, *more):
    p = PROVIDERS[provider]
    args = [] if provider == "openai-compatible" else ["--dialect", provider]
    if p["key_env"]:
        args += ["--require-key", KEY]
    return Server(*(args + list(more)), log_texts=False)


def provider_args(srv, provider, *more):
    p = PROVIDERS[provider]
    args = ["--provider", provider, "--base-url",
            "http://127.0.0.1:%d%s" % (srv.port, p["path"]), "-q"]
    if provider in ("tei", "openai-compatible"):
        args += ["--model", p["model"]]
    return args + list(more)


def provider_run(provider, srv, *more, stdin=b""):
    p = PROVIDERS[provider]
    env = {p["key_env"]: KEY} if p["key_env"] else None
    # OPENAI_API_KEY is not set: each provider reads its own variable.
    return run(provider_args(srv, provider, *more), stdin=stdin, key=None, env=env)


def check_caps(provider, log, truncating=False):
    """Every request answered 200 and within the provider's caps as the
    server counted them; returns the figures for the report."""
    p = PROVIDERS[provider]
    check(log, "the server saw no request")
    for e in log:
        eq(e["status"], 200, "status of request %d" % e["n"])
        if p["inputs"]:
            check(e["inputs"] <= p["inputs"], "request %d: %d inputs, cap %d"
                  % (e["n"], e["inputs"], p["inputs"]))
        if p["tokens"]:
            check(e["tokens"] <= p["tokens"], "request %d: %d tokens, cap %d"
                  % (e["n"], e["tokens"], p["tokens"]))
        if not truncating:
            check(e["max_input_tokens"] <= p["input_tokens"], "request %d: an input of %d "
                  "tokens, cap %d" % (e["n"], e["max_input_tokens"], p["input_tokens"]))
            eq(e.get("truncated", 0), 0, "inputs the server truncated in request %d" % e["n"])
    return dict(requests=len(log), max_inputs=max(e["inputs"] for e in log),
                max_tokens=max(e["tokens"] for e in log),
                max_input_tokens=max(e["max_input_tokens"] for e in log),
                truncated=sum(e.get("truncated", 0) for e in log))


def report(provider, embedded, verified, figures, note=""):
    p = PROVIDERS[provider]
    print("FIGURES %s: %d embedded, %d verified; %d requests; max inputs/request %d (cap %s); "
          "max tokens/request %d (cap %s); max tokens/input %d (cap %d); %d truncated by the "
          "server%s" % (provider, embedded, verified, figures["requests"], figures["max_inputs"],
                        p["inputs"] or "none", figures["max_tokens"], p["tokens"] or "none",
                        figures["max_input_tokens"], p["input_tokens"], figures["truncated"], note),
          flush=True)


def corpus_run(provider, *more, truncating=False):
    c = corpus(SECTIONS, seed=9)
    with server(provider) as srv:
        r = provider_run(provider, srv, *more, stdin=c.data)
        log = srv.requests()
    r.expect_rc(0)
    items = list(zip(c.expected_id_text, [e["text"] for e in c.expected]))
    verify(r.out, items, PROVIDERS[provider]["dims"], model=PROVIDERS[provider]["model"])
    figures = check_caps(provider, log, truncating)
    report(provider, len(r.lines), len(items), figures)
    return log


def token_counts(texts, model):
    """Exact token counts of `texts` by embedpipe --count-tokens."""
    r = run(["--count-tokens", "--model", model],
            stdin=jsonl(*({"id": i, "text": t} for i, t in enumerate(texts))), key=None)
    r.expect_rc(0)
    return [json.loads(l)["tokens"] for l in r.lines]


def exact_corpus_run(provider):
    """A corpus run with a model whose tokens are counted exactly
    (cl100k_base), so a section over 8191 of them is split on the client:
    its vector is checked against the pieces the server received."""
    p = PROVIDERS[provider]
    c = corpus(SECTIONS, seed=9)
    with server(provider, "--log-texts") as srv:
        r = provider_run(provider, srv, stdin=c.data)
        log = srv.requests()
    r.expect_rc(0)
    texts = [e["text"] for e in c.expected]
    counts = token_counts(texts, p["model"])
    whole = [i for i, n in enumerate(counts) if n <= 8191]
    lines = split_lines(r.out)
    verify("".join(lines[i] for i in whole).encode(),
           [(c.expected_id_text[i], texts[i]) for i in whole], p["dims"], model=p["model"])
    whole_texts = set(texts)
    sent = [t for e in log for t in e["texts"] if t not in whole_texts]  # pieces
    split = [i for i, n in enumerate(counts) if n > 8191]
    check(split, "the corpus has a section over 8191 tokens")
    for i in split:
        pieces = sorted((t for t in sent if t != texts[i] and t in texts[i]), key=texts[i].find)
        eq("".join(pieces), texts[i], "the pieces of section %d" % i)
        weights = token_counts(pieces, p["model"])
        acc = [0.0] * p["dims"]
        for piece, w in zip(pieces, weights):
            for d, x in enumerate(fakevec.vector(p["model"], p["dims"], piece)):
                acc[d] += w * x
        norm = sum(x * x for x in acc) ** 0.5
        _, arr, _ = split_output_line(lines[i])
        fakevec.check_embedding_text(arr, [fakevec._f32(x / norm) for x in acc])
    figures = check_caps(provider, log)
    report(provider, len(lines), len(lines), figures,
           "; %d sections split on the client" % len(split))
    return log


@test
def azure_corpus():
    # The deployment is named after its model: exact token counts.
    log = exact_corpus_run("azure")
    eq({e["encoding_format"] for e in log}, {"base64"}, "Azure sends base64")


@test
def openai_compatible_corpus():
    log = exact_corpus_run("openai-compatible")
    eq({e["encoding_format"] for e in log}, {"float"}, "floats unless --encoding base64")
    eq({e["auth"] for e in log}, {"present"}, "the bearer key from $OPENAI_API_KEY")


@test
def cohere_corpus():
    log = corpus_run("cohere")
    eq({(e["input_type"], e["truncate"]) for e in log}, {("search_document", False)},
       "Cohere input_type and truncate NONE (--overlong split cuts on the client)")


@test
def voyage_corpus():
    log = corpus_run("voyage", "--input-type", "document")
    eq({(e["input_type"], e["truncate"], e["encoding_format"]) for e in log},
       {("document", False, "base64")}, "Voyage input_type, truncation, base64")


@test
def ollama_corpus():
    # --overlong truncate is Ollama's own truncation: nothing cut here.
    log = corpus_run("ollama", "--overlong", "truncate", truncating=True)
    eq({e["truncate"] for e in log}, {True}, "Ollama truncate")


@test
def tei_corpus():
    # TEI cuts over-long inputs itself with --overlong truncate (the fake
    # embeds the text as sent, so every vector is still checkable).
    log = corpus_run("tei", "--overlong", "truncate", truncating=True)
    eq({e["truncate"] for e in log}, {True}, "TEI truncate")
    check(sum(e["truncated"] for e in log) > 0, "some sections are over TEI's 512 tokens")


# The estimate's margin per input for every provider but OpenAI's: the
# special tokens a model may put around a text.
ADDED = 3


def cut_by_bytes(text, cap):
    """--overlong split's pieces under the byte estimate: greedy, at most
    `cap` UTF-8 bytes each, cut between characters."""
    pieces, cur, size = [], [], 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        if cur and size + n > cap:
            pieces.append("".join(cur))
            cur, size = [], 0
        cur.append(ch)
        size += n
    pieces.append("".join(cur))
    return pieces


def weighted(model, dims, pieces):
    acc = [0.0] * dims
    for piece in pieces:
        w = len(piece.encode("utf-8")) + ADDED
        v = fakevec.vector(model, dims, piece)
        for d in range(dims):
            acc[d] += w * v[d]
    norm = sum(x * x for x in acc) ** 0.5
    return [fakevec._f32(x / norm) for x in acc]


@test
def gemini_corpus_splits_by_the_estimate():
    # Gemini cannot truncate: a section over 2048 tokens by the byte
    # estimate is split on the client and its pieces' vectors averaged,
    # which this test recomputes from the pieces' definition.
    p = PROVIDERS["gemini"]
    dims = 128
    c = corpus(SECTIONS, seed=9)
    with server("gemini") as srv:
        r = provider_run("gemini", srv, "--dimensions", str(dims), "--input-type",
                         "RETRIEVAL_DOCUMENT", stdin=c.data)
        log = srv.requests()
    r.expect_rc(0)
    lines = split_lines(r.out)
    eq(len(lines), SECTIONS, "output lines")
    split = 0
    for i, (line, e) in enumerate(zip(lines, c.expected)):
        got_id, arr, _ = split_output_line(line)
        eq(got_id, c.expected_id_text[i], "id of line %d" % (i + 1))
        pieces = cut_by_bytes(e["text"], p["input_tokens"] - ADDED)
        split += len(pieces) > 1
        want = (weighted(p["model"], dims, pieces) if len(pieces) > 1
                else fakevec.vector(p["model"], dims, e["text"]))
        try:
            fakevec.check_embedding_text(arr, want)
        except AssertionError as err:
            raise AssertionError("line %d: %s" % (i + 1, err))
    figures = check_caps("gemini", log)
    eq({e["input_type"] for e in log}, {"RETRIEVAL_DOCUMENT"}, "taskType")
    check(split > 0, "some sections were split")
    report("gemini", len(lines), len(lines), figures,
           "; %d sections split on the client, --dimensions %d" % (split, dims))


@test
def tei_splits_on_the_client_without_truncate():
    # The default --overlong split: TEI is told not to truncate, and no
    # input it gets is over its 512 tokens.
    c = corpus(200, seed=3)
    with server("tei") as srv:
        r = provider_run("tei", srv, stdin=c.data)
        log = srv.requests()
    r.expect_rc(0)
    eq(len(r.lines), 200, "output lines")
    check_caps("tei", log)
    eq({e["truncate"] for e in log}, {False}, "TEI truncate")


@test
def tei_counts_the_tokens_bert_adds():
    # "a1" is as many cl100k tokens as bytes, and BERT adds [CLS] and [SEP]:
    # 512 bytes of it are 514 tokens to the server. The estimate's margin
    # makes the client split it (509 + 3 bytes), where bytes alone (512,
    # within 512) would have sent it whole and had it refused.
    with server("tei", "--log-texts") as srv:
        r = provider_run("tei", srv, stdin=jsonl({"id": 1, "text": "a1" * 256}))
        log = srv.requests()
    r.expect_rc(0)
    eq(len(r.lines), 1, "output lines")
    eq([e["status"] for e in log], [200] * len(log), "statuses")
    eq(sorted(len(t) for e in log for t in e["texts"]), [3, 509], "the inputs' bytes")
    eq(max(e["max_input_tokens"] for e in log), 511, "the longest input as the server counts it")


RECORDS = [{"id": i, "text": "section number %d about providers" % i} for i in range(20)]


@test
def each_provider_reads_its_own_key_variable():
    for provider in ("azure", "cohere", "voyage", "gemini"):
        with server(provider) as srv:
            p = PROVIDERS[provider]
            # The OpenAI variable is not this provider's: its server refuses.
            r = run(provider_args(srv, provider), stdin=jsonl(*RECORDS[:2]), key=KEY,
                    env={p["key_env"]: "wrong-key"})
            srv.requests()
        eq(r.rc, 3, "%s with a wrong key: exit status (%s)" % (provider, r.err_text[-300:]))
        if provider != "gemini":  # Google says 400 API_KEY_INVALID, not 401
            check("(the key came from $%s)" % p["key_env"] in r.err_text,
                  "%s names its variable: %s" % (provider, r.err_text[-300:]))


@test
def dialect_errors_reach_the_user():
    cases = {
        # provider: (extra args, exit, text in stderr)
        "cohere": (["--model", "embed-nope"], 3, "model 'embed-nope' not found"),
        "voyage": (["--model", "voyage-nope"], 2, "Model voyage-nope is not supported"),
        "gemini": (["--model", "gemini-nope"], 3, "models/gemini-nope is not found"),
        "ollama": (["--model", "llama-nope"], 3, 'model "llama-nope" not found'),
        "azure": (["--model", "no-such-deployment"], 3, "deployment for this resource"),
    }
    for provider, (more, rc, text) in cases.items():
        d = tmpdir("errs")
        errors = os.path.join(d, "errors.jsonl")
        with server(provider) as srv:
            r = provider_run(provider, srv, "--errors", errors, *more, stdin=jsonl(*RECORDS[:2]))
            srv.requests()
        eq(r.rc, rc, "%s exit status (stderr %s)" % (provider, r.err_text[-300:]))
        blob = r.err_text + (open(errors).read() if os.path.exists(errors) else "")
        check(text in blob, "%s: %r not in %r" % (provider, text, blob[-500:]))


@test
def tei_over_long_input_is_rejected_with_its_message():
    # --overlong skip leaves TEI's truncation off, and the estimate passes a
    # text the server finds too long only if the cap is raised; then TEI's
    # 413 names the record.
    long_text = " ".join("word%d" % i for i in range(700))
    d = tmpdir("tei413")
    errors = os.path.join(d, "errors.jsonl")
    with server("tei") as srv:
        r = provider_run("tei", srv, "--max-input-tokens", "100000", "--overlong", "skip",
                         "--errors", errors,
                         stdin=jsonl({"id": "ok", "text": "short"}, {"id": "big", "text": long_text}))
        log = srv.requests()
    eq(r.rc, 2, "exit status")
    eq(len(r.lines), 1, "the short record is embedded")
    rejected = [json.loads(l) for l in open(errors)]
    eq([e["id"] for e in rejected], ["big"], "rejected ids")
    check("must have less than 512 tokens" in rejected[0]["error"], rejected[0]["error"])
    check(any(e["status"] == 413 for e in log), "TEI answered 413")


@test
def retries_on_each_dialects_429_and_500():
    for provider in ("cohere", "gemini", "tei"):
        with server(provider, "--faults", "1:429,2:500") as srv:
            r = provider_run(provider, srv, "--max-retry-wait", "0.05", "-j", "1",
                             stdin=jsonl(*RECORDS))
            log = srv.requests()
        r.expect_rc(0)
        eq(len(r.lines), 20, "%s output lines" % provider)
        eq([e["status"] for e in log][:3], [429, 500, 200], "%s statuses" % provider)


@test
def a_journal_is_never_reused_under_other_settings():
    d = tmpdir("journal")
    journal = os.path.join(d, "j")
    data = jsonl(*RECORDS)
    with server("cohere") as srv:
        first = provider_run("cohere", srv, "--checkpoint", journal, stdin=data)
        again = provider_run("cohere", srv, "--checkpoint", journal, stdin=data)
        other_type = provider_run("cohere", srv, "--checkpoint", journal, "--input-type",
                                  "search_query", stdin=data)
        # The same per-input cap as embed-v4.0's, so that the model is what differs.
        other_model = provider_run("cohere", srv, "--checkpoint", journal, "--model",
                                   "embed-english-v3.0", "--max-input-tokens", "128000",
                                   stdin=data)
        other_trunc = provider_run("cohere", srv, "--checkpoint", journal, "--overlong",
                                   "truncate", stdin=data)
        log = srv.requests()
    first.expect_rc(0)
    again.expect_rc(0)
    eq(again.out, first.out, "the rerun's output")
    eq(len(log), 1, "requests: only the first run sent one")
    for r, setting in ((other_type, "input_type"), (other_model, "model"),
                       (other_trunc, "overlong")):
        eq(r.rc, 1, "exit status with another %s" % setting)
        check("written with %s=" % setting in r.err_text, "names %s: %s" % (setting, r.err_text))
    with server("voyage") as srv:
        other_provider = provider_run("voyage", srv, "--checkpoint", journal, stdin=data)
        eq(srv.requests(), [], "requests to the other provider")
    eq(other_provider.rc, 1, "exit status with another provider")
    check("written with " in other_provider.err_text, other_provider.err_text)


@test
def provider_flags_are_checked():
    cases = [
        (["--provider", "nope"], "unknown --provider nope"),
        (["--provider", "tei"], "--provider tei needs --model"),
        (["--provider", "azure"], "--provider azure needs --base-url (or $AZURE_OPENAI_ENDPOINT)"),
        (["--provider", "tei", "--model", "m", "--dimensions", "8"], "has no --dimensions"),
        (["--provider", "ollama", "--input-type", "query"], "takes no --input-type"),
        (["--provider", "voyage", "--input-type", "search_query"],
         "takes --input-type document, query, not search_query"),
        (["--provider", "cohere", "--encoding", "base64"], "sends floats only"),
        (["--provider", "cohere", "--api-version", "1"], "--api-version is for --provider azure"),
    ]
    for args, text in cases:
        r = run(args, stdin=b"", key=None)
        eq(r.rc, 1, "exit status of %r" % args)
        check(text in r.err_text, "%r: %r not in %r" % (args, text, r.err_text))
    r = run(["--provider", "cohere"], stdin=jsonl(*RECORDS[:1]), key=None)
    eq(r.rc, 1, "no COHERE_API_KEY")
    check("COHERE_API_KEY is not set" in r.err_text, r.err_text)


if __name__ == "__main__":
    main()
