#!/usr/bin/env python3
"""embedpipe end to end with every --provider (issue #9): a 2,000-section
corpus against build/fake_provider speaking that provider's dialect (Ollama
and TEI both truncating on the server and split on the client), every vector
verified bit for bit, every request within the client's caps for that
provider and model, counted from what the server received both as the client
counts and as the server does; the provider's key header and variable; errors
in each dialect's shape; and a journal never reused across providers, models
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

# The estimate's margin per input for every provider but OpenAI's: the
# special tokens a model may put around a text.
ADDED = 3

# Per provider: the fake's dialect, the URL path embedpipe's --base-url
# adds to the server's root, the key variable (None: a local server), the
# model, its vector length, whether the client counts its tokens exactly
# (tiktoken) or by the estimate, and the client's caps for it as the man
# page's PROVIDERS lists them: inputs and tokens per request, tokens per
# input.
PROVIDERS = {
    "openai": dict(path="/v1", key_env="OPENAI_API_KEY", model="text-embedding-3-small",
                   dims=1536, exact=True, inputs=2048, tokens=300000, input_tokens=8191),
    "azure": dict(path="", key_env="AZURE_OPENAI_API_KEY", model="text-embedding-3-small",
                  dims=1536, exact=True, inputs=2048, tokens=300000, input_tokens=8191),
    # The fake's own OpenAI API stands in for vLLM and the like.
    "openai-compatible": dict(path="/v1", key_env="OPENAI_API_KEY",
                              model="text-embedding-3-small", dims=1536, exact=True,
                              inputs=2048, tokens=300000, input_tokens=8191),
    "cohere": dict(path="", key_env="COHERE_API_KEY", model="embed-v4.0", dims=1536,
                   exact=False, inputs=96, tokens=1000000, input_tokens=128000),
    "voyage": dict(path="/v1", key_env="VOYAGE_API_KEY", model="voyage-3.5", dims=1024,
                   exact=False, inputs=1000, tokens=320000, input_tokens=32000),
    "gemini": dict(path="/v1beta", key_env="GEMINI_API_KEY", model="gemini-embedding-001",
                   dims=3072, exact=False, inputs=100, tokens=204800, input_tokens=2048),
    "ollama": dict(path="", key_env=None, model="nomic-embed-text", dims=768, exact=False,
                   inputs=128, tokens=262144, input_tokens=8192),
    "tei": dict(path="", key_env=None, model="BAAI/bge-small-en-v1.5", dims=384, exact=False,
                inputs=32, tokens=16384, input_tokens=512),
}


def server(provider, *more):
    p = PROVIDERS[provider]
    args = [] if provider in ("openai", "openai-compatible") else ["--dialect", provider]
    if p["key_env"]:
        args += ["--require-key", KEY]
    return Server(*(args + list(more)))


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


def caps_of(provider, **model_caps):
    """The provider's caps, with those of a model that has its own."""
    p = PROVIDERS[provider]
    caps = {k: p[k] for k in ("inputs", "tokens", "input_tokens")}
    caps.update(model_caps)
    return caps


def check_caps(provider, log, caps, server_truncates=False):
    """Every request answered 200 and within the client's caps `caps` for
    the provider, counted both ways from what the server received: as the
    client counts (the exact count, which is the server's own here, or the
    estimate of each text the server logged) and as the server counted (the
    fake's own tokens, after any truncation). Tokens per input are checked
    unless the server truncates, when the client counts an over-long input
    as the cap. Returns the figures for the report."""
    p = PROVIDERS[provider]
    check(log, "the server saw no request")
    figures = dict(requests=len(log), max_inputs=0, max_tokens=0, max_server_tokens=0,
                   max_input_tokens=0, truncated=0)
    for e in log:
        n = e["n"]
        eq(e["status"], 200, "status of request %d" % n)
        eq(len(e["texts"]), e["inputs"], "texts logged for request %d" % n)
        if p["exact"]:
            total, longest = e["tokens"], e["max_input_tokens"]
        else:
            counts = [len(t.encode("utf-8")) + ADDED for t in e["texts"]]
            longest = max(counts)
            total = sum(min(c, caps["input_tokens"]) if server_truncates else c for c in counts)
        check(e["inputs"] <= caps["inputs"], "request %d: %d inputs, cap %d"
              % (n, e["inputs"], caps["inputs"]))
        check(total <= caps["tokens"], "request %d: %d tokens by the client's count, cap %d"
              % (n, total, caps["tokens"]))
        check(e["tokens"] <= caps["tokens"], "request %d: %d tokens by the server's count, cap %d"
              % (n, e["tokens"], caps["tokens"]))
        if not server_truncates:
            check(longest <= caps["input_tokens"], "request %d: an input of %d tokens by the "
                  "client's count, cap %d" % (n, longest, caps["input_tokens"]))
            check(e["max_input_tokens"] <= caps["input_tokens"], "request %d: an input of %d "
                  "tokens by the server's count, cap %d"
                  % (n, e["max_input_tokens"], caps["input_tokens"]))
            eq(e.get("truncated", 0), 0, "inputs the server truncated in request %d" % n)
        figures["max_inputs"] = max(figures["max_inputs"], e["inputs"])
        figures["max_tokens"] = max(figures["max_tokens"], total)
        figures["max_server_tokens"] = max(figures["max_server_tokens"], e["tokens"])
        figures["max_input_tokens"] = max(figures["max_input_tokens"], longest)
        figures["truncated"] += e.get("truncated", 0)
    return figures


def report(provider, model, embedded, caps, figures, note=""):
    print("FIGURES %s %s: %d embedded and verified; %d requests; max inputs/request %d (cap %d); "
          "max tokens/request %d by the client's count, %d by the server's (cap %d); "
          "max tokens/input %d by the client's count (cap %d%s); %d truncated by the server%s"
          % (provider, model, embedded, figures["requests"], figures["max_inputs"], caps["inputs"],
             figures["max_tokens"], figures["max_server_tokens"], caps["tokens"],
             figures["max_input_tokens"], caps["input_tokens"],
             ", the server's to keep" if figures["truncated"] else "", figures["truncated"], note),
          flush=True)


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


def weighted(model, dims, pieces, weights):
    """The fake's vectors of `pieces`, weighted, summed and made unit length,
    as embedpipe combines a split record's."""
    acc = [0.0] * dims
    for piece, w in zip(pieces, weights):
        v = fakevec.vector(model, dims, piece)
        for d in range(dims):
            acc[d] += w * v[d]
    norm = sum(x * x for x in acc) ** 0.5
    return [fakevec._f32(x / norm) for x in acc]


def check_split(lines, i, pieces, weights, sent, model, dims):
    """Section i was sent as `pieces` and its line is their weighted vector."""
    for piece in pieces:
        check(piece in sent, "section %d: a piece the server did not receive" % i)
    _, arr, _ = split_output_line(lines[i])
    try:
        fakevec.check_embedding_text(arr, weighted(model, dims, pieces, weights))
    except AssertionError as err:
        raise AssertionError("line %d: %s" % (i + 1, err))


def corpus_run(provider, *more, model=None, dims=None, dimensions=None, sections=SECTIONS,
               server_truncates=False, **model_caps):
    """A corpus run of a provider whose tokens the client estimates: every
    section within the per-input cap (or every one, when the server
    truncates) verified by build/verify_embeddings against its whole text;
    every other one against the pieces --overlong split makes of it under
    the estimate, which must be what the server received; and every request
    within the caps. `dims` is the model's vector length, `dimensions` the
    one asked for, if any. Returns the server's log."""
    p = PROVIDERS[provider]
    model = model or p["model"]
    caps = caps_of(provider, **model_caps)
    args = list(more)
    if model != p["model"]:
        args += ["--model", model]
    if dimensions:
        args += ["--dimensions", str(dimensions)]
    dims = dimensions or dims or p["dims"]
    c = corpus(sections, seed=9)
    with server(provider) as srv:
        r = provider_run(provider, srv, *args, stdin=c.data)
        log = srv.requests()
    r.expect_rc(0)
    lines = split_lines(r.out)
    eq(len(lines), sections, "output lines")
    texts = [e["text"] for e in c.expected]
    room = caps["input_tokens"] - ADDED  # bytes an input may have
    split = [] if server_truncates else [
        i for i, t in enumerate(texts) if len(t.encode("utf-8")) > room]
    whole = sorted(set(range(sections)) - set(split))
    verify("".join(lines[i] for i in whole).encode(),
           [(c.expected_id_text[i], texts[i]) for i in whole], dims, model=model)
    sent = {t for e in log for t in e["texts"]}
    for i in split:
        pieces = cut_by_bytes(texts[i], room)
        check(len(pieces) > 1, "section %d is cut" % i)
        check_split(lines, i, pieces, [len(x.encode("utf-8")) + ADDED for x in pieces], sent,
                    model, dims)
    figures = check_caps(provider, log, caps, server_truncates)
    report(provider, model, len(lines), caps, figures,
           "; %d sections split on the client%s" % (
               len(split), ", --dimensions %d" % dims if dimensions else ""))
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
    caps = caps_of(provider)
    c = corpus(SECTIONS, seed=9)
    with server(provider) as srv:
        r = provider_run(provider, srv, stdin=c.data)
        log = srv.requests()
    r.expect_rc(0)
    texts = [e["text"] for e in c.expected]
    counts = token_counts(texts, p["model"])
    whole = [i for i, n in enumerate(counts) if n <= caps["input_tokens"]]
    lines = split_lines(r.out)
    eq(len(lines), SECTIONS, "output lines")
    verify("".join(lines[i] for i in whole).encode(),
           [(c.expected_id_text[i], texts[i]) for i in whole], p["dims"], model=p["model"])
    whole_texts = set(texts)
    sent = {t for e in log for t in e["texts"] if t not in whole_texts}  # pieces
    split = [i for i, n in enumerate(counts) if n > caps["input_tokens"]]
    check(split, "the corpus has a section over 8191 tokens")
    for i in split:
        pieces = sorted((t for t in sent if t != texts[i] and t in texts[i]), key=texts[i].find)
        eq("".join(pieces), texts[i], "the pieces of section %d" % i)
        check_split(lines, i, pieces, token_counts(pieces, p["model"]), sent, p["model"],
                    p["dims"])
    figures = check_caps(provider, log, caps)
    report(provider, p["model"], len(lines), caps, figures,
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
def cohere_v3_model_takes_512_tokens_an_input():
    # embed-english-v3.0 reads 512 tokens an input (the fake refuses more,
    # counting BERT's [CLS] and [SEP]); embed-v4.0's 128,000 would not do.
    corpus_run("cohere", model="embed-english-v3.0", dims=1024, sections=300,
               input_tokens=512)


@test
def voyage_corpus():
    log = corpus_run("voyage", "--input-type", "document")
    eq({(e["input_type"], e["truncate"], e["encoding_format"]) for e in log},
       {("document", False, "base64")}, "Voyage input_type, truncation, base64")


@test
def voyage_2_takes_4000_tokens_an_input():
    corpus_run("voyage", model="voyage-2", sections=300, input_tokens=4000)


@test
def gemini_corpus_splits_by_the_estimate():
    # Gemini cannot truncate: a section over 2048 tokens by the estimate is
    # split on the client and its pieces' vectors averaged.
    log = corpus_run("gemini", "--input-type", "RETRIEVAL_DOCUMENT", dimensions=128)
    eq({e["input_type"] for e in log}, {"RETRIEVAL_DOCUMENT"}, "taskType")


@test
def ollama_corpus_truncated_by_the_server():
    # --overlong truncate is Ollama's own truncation: nothing cut here.
    log = corpus_run("ollama", "--overlong", "truncate", server_truncates=True)
    eq({e["truncate"] for e in log}, {True}, "Ollama truncate")
    check(sum(e["truncated"] for e in log) > 0, "some sections are over nomic-embed-text's 8192")


@test
def ollama_corpus_split_on_the_client():
    # The default --overlong split: Ollama is told not to truncate, and the
    # sections over its 8192 tokens by the estimate are split.
    log = corpus_run("ollama")
    eq({e["truncate"] for e in log}, {False}, "Ollama truncate")


@test
def tei_corpus():
    # TEI cuts over-long inputs itself with --overlong truncate (the fake
    # embeds the text as sent, so every vector is still checkable).
    log = corpus_run("tei", "--overlong", "truncate", server_truncates=True)
    eq({e["truncate"] for e in log}, {True}, "TEI truncate")
    check(sum(e["truncated"] for e in log) > 0, "some sections are over TEI's 512 tokens")


@test
def tei_splits_on_the_client_without_truncate():
    # The default --overlong split: TEI is told not to truncate, and no
    # input it gets is over its 512 tokens.
    log = corpus_run("tei", sections=200)
    eq({e["truncate"] for e in log}, {False}, "TEI truncate")


@test
def tei_counts_the_tokens_bert_adds():
    # "a1" is as many cl100k tokens as bytes, and BERT adds [CLS] and [SEP]:
    # 512 bytes of it are 514 tokens to the server. The estimate's margin
    # makes the client split it (509 + 3 bytes), where bytes alone (512,
    # within 512) would have sent it whole and had it refused.
    with server("tei") as srv:
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
def a_journal_is_never_reused_across_apis_or_input_types():
    # The same model name under OpenAI, Azure and an OpenAI-compatible
    # server, and another Gemini taskType or Voyage input_type: the second
    # run, given the first one's journal, is refused before it sends a
    # request or writes a line, naming the setting; the journal stays as the
    # first run left it.
    cases = [
        # (first provider, its args, second provider, its args, what differs)
        ("openai", [], "azure", [],
         "api=openai-embeddings, this run uses api=azure-openai-embeddings"),
        ("openai", [], "openai-compatible", [],
         "api=openai-embeddings, this run uses api=openai-compatible-embeddings"),
        ("azure", [], "openai-compatible", [],
         "api=azure-openai-embeddings, this run uses api=openai-compatible-embeddings"),
        ("gemini", ["--input-type", "RETRIEVAL_DOCUMENT"], "gemini",
         ["--input-type", "RETRIEVAL_QUERY"],
         "input_type=RETRIEVAL_DOCUMENT, this run uses input_type=RETRIEVAL_QUERY"),
        ("gemini", [], "gemini", ["--input-type", "RETRIEVAL_DOCUMENT"],
         "input_type=none, this run uses input_type=RETRIEVAL_DOCUMENT"),
        ("voyage", ["--input-type", "document"], "voyage", ["--input-type", "query"],
         "input_type=document, this run uses input_type=query"),
        ("voyage", ["--input-type", "query"], "voyage", [],
         "input_type=query, this run uses input_type=none"),
    ]
    data = jsonl(*RECORDS)
    for first_provider, first_args, second_provider, second_args, differs in cases:
        what = "%s %s, then %s %s" % (first_provider, first_args, second_provider, second_args)
        journal = os.path.join(tmpdir("journal"), "j")
        with server(first_provider) as srv:
            first = provider_run(first_provider, srv, "--checkpoint", journal, *first_args,
                                 stdin=data)
            first_log = srv.requests()
        first.expect_rc(0)
        eq(sum(e["inputs"] for e in first_log), len(RECORDS), "%s: inputs sent first" % what)
        with server(second_provider) as srv:
            second = provider_run(second_provider, srv, "--checkpoint", journal, *second_args,
                                  stdin=data)
            eq(srv.requests(), [], "%s: requests of the second run" % what)
        eq(second.rc, 1, "%s: exit status (%s)" % (what, second.err_text[-300:]))
        eq(second.out, b"", "%s: the second run's output" % what)
        check("was written with %s" % differs in second.err_text,
              "%s: %r not in %r" % (what, differs, second.err_text))
        with server(first_provider) as srv:
            again = provider_run(first_provider, srv, "--checkpoint", journal, *first_args,
                                 stdin=data)
            eq(srv.requests(), [], "%s: requests of the first setting's rerun" % what)
        again.expect_rc(0)
        eq(again.out, first.out, "%s: the first setting's rerun, from the journal" % what)


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
