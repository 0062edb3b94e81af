#!/usr/bin/env python3
"""embedpipe's output loaded into a real PostgreSQL server (issue 6).

A throwaway cluster (pgcluster.py: initdb, pg_ctl) is started on first use in
a private directory that is also its Unix socket directory; it listens on no
TCP port, so it cannot collide with any other server. It is stopped and
removed when the suite ends, also after a failure or SIGTERM. As root, initdb
and pg_ctl run as the postgres user (runuser); as any other user, as that
user.
Missing PostgreSQL binaries make every test here FAIL: scripts/install-deps.sh
installs them.

Every --format/--vector combination is loaded with psql \\copy and read back
as hex (ids and text as UTF-8 bytes, floats as their float4 bits from the
server's float4send), then compared exactly with embedpipe's JSONL output of
the same input. pgvector is not packaged for Debian 12: without it, [..]
vectors are loaded into a text column (proving COPY passed them unchanged)
and cast to real[] from there, and binary pgvector tuples into a bytea column
(proving the framing) whose bytes are decoded here; with the extension
installed they also go into vector(N).
"""

import json
import os
import re
import signal
import struct
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MODEL, ROOT, Server, base_args, check, clean_env, eq,  # noqa: E402
                     gencorpus, main, run, spawn, test, tmpdir, verify)
import harness  # noqa: E402
import fakevec  # noqa: E402
from copy_ids import all_id_texts, id_value  # noqa: E402
from pgcluster import Cluster  # noqa: E402

DIMS = 12


# --------------------------------------------------------------------------
# The throwaway cluster (pgcluster.py), one for the whole suite.

CLUSTER = Cluster(base_env=clean_env)


def cluster():
    CLUSTER.start()
    return CLUSTER


_dbs = 0


def fresh_db(c):
    global _dbs
    _dbs += 1
    name = "t%d" % _dbs
    c.sql("CREATE DATABASE %s" % name)
    return name


# --------------------------------------------------------------------------
# Input with every character COPY and CSV treat specially (copy_ids.py).

CARRY = ["m.s", "m.o", "m.z", "m.n"]


def input_records():
    """(input bytes, [id JSON text], [normalized text], [carried pairs text])."""
    lines, ids, texts, carries = [], [], [], []
    for i, id_text in enumerate(all_id_texts()):
        text = "section %d: \u00e9t\u00e9 \"q\" \\ back" % i
        m = {}
        if i % 3 != 2:
            m["s"] = ["x,y\t\"z\"\n\\N", "", "\\.", "caf\u00e9", "\r"][i % 5]
        if i % 4 == 0:
            m["o"] = {"k": [1, "v,w"], "t": "a\tb"}
        if i % 5 == 1:
            m["z"] = None
        if i % 2 == 0:
            m["n"] = 1.5 if i % 4 else -7
        fields = {"id": "@ID@", "text": text, "m": m}
        line = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        lines.append(line.replace('"@ID@"', id_text).encode())
        ids.append(id_text)
        texts.append(text)
        pairs = []
        for path in CARRY:
            key = path.split(".")[1]
            if key in m:
                pairs.append("%s:%s" % (json.dumps(path), json.dumps(
                    m[key], ensure_ascii=False, separators=(",", ":"))))
        carries.append(",".join(pairs))
    return b"\n".join(lines) + b"\n", ids, texts, carries


def carry_args():
    a = []
    for path in CARRY:
        a += ["--carry", path]
    return a


def hexu(s):
    return None if s is None else s.encode("utf-8").hex()


def float_hex(token):
    """A JSONL float as big-endian float32 bits in hex, as float4send gives."""
    return struct.pack(">f", float(token)).hex()


class Expected:
    """What every load must give back, from embedpipe's JSONL output."""

    def __init__(self, srv):
        data, self.ids, self.texts, self.carries = input_records()
        self.data = data
        norm = [gencorpus.normalize(t.encode())[0] for t in self.texts]
        r = run(base_args(srv, DIMS, "-q") + carry_args(), stdin=data)
        r.expect_rc(0)
        # The JSONL output itself is checked first: ids byte for byte, every
        # float against the fake provider's vector, carried pairs exactly.
        verify(r.out, list(zip(self.ids, norm)), DIMS, python_check=True, carries=self.carries)
        self.jsonl = r.out
        self.rows = []
        for line in r.lines:
            id_text, arr, _ = harness.split_output_line(line)
            obj = json.loads(line)
            row = {"id": hexu(id_value(id_text)), "array": arr,
                   "floats": "".join(float_hex(t) for t in arr[1:-1].split(","))}
            for path, col in zip(CARRY, ("s", "o", "z", "n")):
                v = obj.get(path)
                if v is None:
                    row[col] = None
                elif isinstance(v, str):
                    row[col] = hexu(v)
                else:  # compact JSON, as verify() saw it in the carried text
                    row[col] = hexu(json.dumps(v, ensure_ascii=False, separators=(",", ":")))
            self.rows.append(row)
        r2 = run(base_args(srv, DIMS, "-q", "--columns", "id,tokens,model,embedding"), stdin=data)
        r2.expect_rc(0)
        for row, line in zip(self.rows, r2.lines):
            obj = json.loads(line)
            eq(obj["model"], MODEL, "model in JSONL")
            row["tokens"] = str(obj["tokens"])
            row["model"] = hexu(MODEL)


# --------------------------------------------------------------------------
# Loading one output and reading it back.

COLUMNS = "id,embedding,tokens,model,carried"
TABLE_COLUMNS = "id, embedding, tokens, model, s, o, z, n"


def create_table(c, db, name, embedding_type):
    c.sql("CREATE TABLE %s (seq bigserial, id text, embedding %s, tokens integer, model text, "
          "s text, o text, z text, n text)" % (name, embedding_type), db=db)


def read_back(c, db, table, embedding_expr, raw_expr=None):
    """Rows of `table` in load order as dicts of hex strings."""
    floats = ("(SELECT string_agg(encode(float4send(e), 'hex'), '' ORDER BY o) "
              "FROM unnest(%s) WITH ORDINALITY AS u(e, o))" % embedding_expr
              if embedding_expr else "''")
    raw = raw_expr or "''"
    q = ("SELECT encode(convert_to(id, 'UTF8'), 'hex'), %s, %s, tokens, "
         "encode(convert_to(model, 'UTF8'), 'hex'), encode(convert_to(s, 'UTF8'), 'hex'), "
         "encode(convert_to(o, 'UTF8'), 'hex'), encode(convert_to(z, 'UTF8'), 'hex'), "
         "encode(convert_to(n, 'UTF8'), 'hex') FROM %s ORDER BY seq" % (floats, raw, table))
    rows = []
    for f in c.copy_out(q, db=db):
        rows.append({"id": f[0], "floats": f[1], "raw": f[2], "tokens": f[3], "model": f[4],
                     "s": f[5], "o": f[6], "z": f[7], "n": f[8]})
    return rows


def compare(got, expected, what):
    eq(len(got), len(expected.rows), "%s: rows loaded" % what)
    for i, (g, w) in enumerate(zip(got, expected.rows)):
        for k in ("id", "tokens", "model", "s", "o", "z", "n"):
            eq(g[k], w[k], "%s: row %d (id %r): %s" % (what, i + 1, expected.ids[i], k))
        if g["floats"] != "":
            eq(g["floats"], w["floats"], "%s: row %d: float4 bits of the embedding" % (what, i + 1))


def pgvector_binary_floats(hexdata):
    """vector_send's bytes (int16 dims, int16 unused, float4s) to float hex."""
    b = bytes.fromhex(hexdata)
    dims, unused = struct.unpack(">hh", b[:4])
    eq((dims, unused, len(b)), (DIMS, 0, 4 + 4 * DIMS), "pgvector binary header")
    return b[4:].hex()


def embed(srv, expected, fmt, vector):
    r = run(base_args(srv, DIMS, "-q", "--format", fmt, "--vector", vector, "--columns", COLUMNS)
            + carry_args(), stdin=expected.data)
    r.expect_rc(0)
    return r.out


def copy_option(fmt):
    return {"tsv": "", "csv": " WITH (FORMAT csv)", "binary": " WITH (FORMAT binary)"}[fmt]


# --------------------------------------------------------------------------
# Tests.

@test
def postgres_binaries_present_and_cluster_starts():
    c = cluster()
    out = c.sql("SHOW server_encoding")
    check(b"UTF8" in out, "server encoding: %r" % out)


@test
def every_format_and_vector_style_round_trips_exactly():
    c = cluster()
    db = fresh_db(c)
    pgvector = c.has_pgvector()
    if pgvector:
        c.sql("CREATE EXTENSION vector", db=db)
    d = tmpdir("pg")
    combos = 0
    with Server() as srv:
        expected = Expected(srv)
        for fmt in ("tsv", "csv", "binary", "jsonl"):
            for vector in ("json", "pgvector", "pgarray"):
                if fmt == "binary" and vector == "json":
                    continue  # refused: see binary_with_json_vector_is_refused
                what = "%s/%s" % (fmt, vector)
                out = embed(srv, expected, fmt, vector)
                path = os.path.join(d, "%s-%s.out" % (fmt, vector))
                with open(path, "wb") as f:
                    f.write(out)
                table = "%s_%s" % (fmt, vector)
                if fmt == "jsonl":
                    load_jsonl(c, db, table, path, vector, expected, what)
                elif vector == "pgarray":
                    create_table(c, db, table, "real[]")
                    c.sql("\\copy %s(%s) FROM '%s'%s" % (table, TABLE_COLUMNS, path,
                                                         copy_option(fmt)), db=db)
                    compare(read_back(c, db, table, "embedding"), expected, what)
                elif fmt == "binary":  # pgvector
                    create_table(c, db, table, "bytea")
                    c.sql("\\copy %s(%s) FROM '%s'%s" % (table, TABLE_COLUMNS, path,
                                                         copy_option(fmt)), db=db)
                    rows = read_back(c, db, table, None, "encode(embedding, 'hex')")
                    for row in rows:
                        row["floats"] = pgvector_binary_floats(row["raw"])
                    compare(rows, expected, what + " (into bytea)")
                else:  # [..] in text or CSV
                    create_table(c, db, table, "text")
                    c.sql("\\copy %s(%s) FROM '%s'%s" % (table, TABLE_COLUMNS, path,
                                                         copy_option(fmt)), db=db)
                    rows = read_back(c, db, table, "translate(embedding, '[]', '{}')::real[]",
                                     "encode(convert_to(embedding, 'UTF8'), 'hex')")
                    compare(rows, expected, what + " (into text)")
                    for i, (row, want) in enumerate(zip(rows, expected.rows)):
                        eq(bytes.fromhex(row["raw"]).decode(), want["array"],
                           "%s: row %d: vector text as COPY read it" % (what, i + 1))
                if pgvector and vector != "pgarray" and fmt != "jsonl":
                    vtable = table + "_vec"
                    create_table(c, db, vtable, "vector(%d)" % DIMS)
                    c.sql("\\copy %s(%s) FROM '%s'%s" % (vtable, TABLE_COLUMNS, path,
                                                         copy_option(fmt)), db=db)
                    compare(read_back(c, db, vtable, "embedding::real[]"), expected,
                            what + " (into vector)")
                combos += 1
    eq(combos, 11, "combinations loaded")
    if not pgvector:
        print("note: pgvector is not installed; vector(N) loads were not tried", flush=True)


def load_jsonl(c, db, table, path, vector, expected, what):
    """The safe JSONL route: whole lines into a json column through CSV with
    quote and delimiter bytes that JSON text never holds, then SQL."""
    c.sql("CREATE TABLE %s_staging (seq bigserial, doc json)" % table, db=db)
    c.sql("\\copy %s_staging(doc) FROM '%s' WITH (FORMAT csv, QUOTE e'\\x01', "
          "DELIMITER e'\\x02')" % (table, path), db=db)
    create_table(c, db, table, "real[]")
    emb = ("(doc->>'embedding')::real[]" if vector == "pgarray"
           else "translate(doc->>'embedding', '[]', '{}')::real[]" if vector == "pgvector"
           else "translate((doc->'embedding')::text, '[]', '{}')::real[]")
    c.sql("INSERT INTO %s(%s) SELECT doc->>'id', %s, (doc->>'tokens')::integer, doc->>'model', "
          "doc->>'m.s', doc->>'m.o', doc->>'m.z', doc->>'m.n' FROM %s_staging ORDER BY seq"
          % (table, TABLE_COLUMNS, emb, table), db=db)
    compare(read_back(c, db, table, "embedding"), expected, what)


@test
def binary_without_trailer_and_empty_output_still_load():
    c = cluster()
    db = fresh_db(c)
    d = tmpdir("pg")
    with Server() as srv:
        expected = Expected(srv)
        out = embed(srv, expected, "binary", "pgarray")
        empty = run(base_args(srv, DIMS, "-q", "--format", "binary", "--vector", "pgarray"),
                    stdin=b"")
    empty.expect_rc(0)
    eq(empty.out, b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\xff\xff", "binary output of no records")
    eq(out[-2:], b"\xff\xff", "trailer")
    # An interrupted run's output, cut after its last whole tuple.
    cut = os.path.join(d, "cut.bin")
    with open(cut, "wb") as f:
        f.write(out[:-2])
    empty_path = os.path.join(d, "empty.bin")
    with open(empty_path, "wb") as f:
        f.write(empty.out)
    create_table(c, db, "cut", "real[]")
    c.sql("\\copy cut(%s) FROM '%s' WITH (FORMAT binary)" % (TABLE_COLUMNS, cut), db=db)
    c.sql("\\copy cut(%s) FROM '%s' WITH (FORMAT binary)" % (TABLE_COLUMNS, empty_path), db=db)
    compare(read_back(c, db, "cut", "embedding"), expected, "binary without trailer")


@test
def streamed_tsv_loads_through_a_pipe():
    # `embedpipe ... | psql -c "\copy t FROM STDIN"`: the load as a pipeline.
    c = cluster()
    db = fresh_db(c)
    create_table(c, db, "piped", "real[]")
    with Server() as srv:
        expected = Expected(srv)
        producer = spawn(base_args(srv, DIMS, "-q", "--format", "tsv", "--vector", "pgarray",
                                   "--columns", COLUMNS) + carry_args(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        consumer = subprocess.Popen(
            [os.path.join(c.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
             "\\copy piped(%s) FROM STDIN" % TABLE_COLUMNS],
            stdin=producer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=c.env(db))
        producer.stdout.close()
        producer.stdin.write(expected.data)
        producer.stdin.close()
        eq(producer.wait(timeout=60), 0, "embedpipe exit status")
        _, err = consumer.communicate(timeout=60)
        eq(consumer.returncode, 0, "psql exit status (%s)" % err.decode(errors="replace"))
    compare(read_back(c, db, "piped", "embedding"), expected, "piped tsv")


# Values no PostgreSQL text column can store: one in a load makes COPY
# refuse every line of it. (input line, field at fault)
NUL_LINES = [
    (b'{"id":"nul\\u0000id","text":"a","m":{"s":"fine"}}', "id"),
    (b'{"id":"carried-nul","text":"b","m":{"s":"x\\u0000y","n":1}}', "m.s"),
]


@test
def values_copy_cannot_store_are_error_records_and_the_rest_loads():
    c = cluster()
    db = fresh_db(c)
    d = tmpdir("pg")
    with Server() as srv:
        expected = Expected(srv)
        good = expected.data.split(b"\n")[:-1]
        # First, in the middle and last, so line numbers and order both count.
        lines = [NUL_LINES[0][0]] + good[:10] + [NUL_LINES[1][0]] + good[10:] + [NUL_LINES[0][0]]
        bad_at = [(1, NUL_LINES[0]), (12, NUL_LINES[1]), (len(lines), NUL_LINES[0])]
        for fmt in ("tsv", "csv", "binary"):
            errors = os.path.join(d, "%s-errors.jsonl" % fmt)
            r = run(base_args(srv, DIMS, "-q", "--format", fmt, "--vector", "pgarray",
                              "--columns", COLUMNS, "--errors", errors) + carry_args(),
                    stdin=b"\n".join(lines) + b"\n")
            r.expect_rc(2)
            got = [(e["line"], e["id"], e["field"], e["error"]) for _, e in r.errors()]
            want = [(n, json.loads(line)["id"], field,
                     'field "%s" holds U+0000, which PostgreSQL text cannot store' % field)
                    for n, (line, field) in bad_at]
            eq(got, want, "%s: error records" % fmt)
            path = os.path.join(d, "nul.%s" % fmt)
            with open(path, "wb") as f:
                f.write(r.out)
            table = "nul_%s" % fmt
            create_table(c, db, table, "real[]")
            c.sql("\\copy %s(%s) FROM '%s'%s" % (table, TABLE_COLUMNS, path, copy_option(fmt)),
                  db=db)
            compare(read_back(c, db, table, "embedding"), expected, "%s without the NUL lines" % fmt)
        # JSONL spells U+0000 as an escape: it writes such a record.
        r = run(base_args(srv, DIMS, "-q"), stdin=NUL_LINES[0][0] + b"\n")
        r.expect_rc(0)
        check(r.out.startswith(b'{"id":"nul\\u0000id","embedding":['), "jsonl: %r" % r.out[:60])


@test
def nan_from_the_server_reaches_no_format():
    # Requests 1 and 3 of every run get a NaN in the first vector (a bare
    # NaN with --encoding float, a NaN float32 in base64). The codec refuses
    # such a response and it is retried (at once: --max-retry-wait 0), so
    # each output is byte for byte the one the round-trip test loads exactly.
    with Server() as srv:
        expected = Expected(srv)
        reference = {}
        for fmt, vector in FORMATS:
            reference[fmt, vector] = embed(srv, expected, fmt, vector)
    for encoding in ("base64", "float"):
        for fmt, vector in FORMATS:
            what = "%s/%s, %s" % (fmt, vector, encoding)
            with Server("--faults", "1:nan,3:nan") as srv:
                r = run(base_args(srv, DIMS, "-q", "--format", fmt, "--vector", vector,
                                  "--columns", COLUMNS, "--encoding", encoding,
                                  "--batch-inputs", "8", "--max-retry-wait", "0") + carry_args(),
                    stdin=expected.data)
                log = srv.requests()
            r.expect_rc(0)
            eq([e["fault"] for e in log if e["fault"]], ["nan", "nan"], "%s: faults" % what)
            eq(r.out, reference[fmt, vector], "%s: output" % what)


FORMATS = [(f, v) for f in ("tsv", "csv", "binary", "jsonl") for v in ("json", "pgvector", "pgarray")
           if (f, v) != ("binary", "json")]


@test
def binary_with_json_vector_and_bad_columns_are_usage_errors():
    for args, msg in (
            (["--format", "binary", "--vector", "json"],
             "embedpipe: error: --format binary needs --vector pgvector, pgarray or halfvec\n"),
            (["--format", "tsv", "--columns", "id,url"],
             'embedpipe: error: --columns: unknown column "url" (want id, embedding, tokens, '
             'model, key, carried, or a field given with --carry)\n'),
            (["--columns", "id"], "embedpipe: error: --columns must include embedding\n"),
            (["--format", "csv", "--count-tokens"],
             "embedpipe: error: --count-tokens writes JSON lines only; drop --format\n")):
        r = run(["--base-url", "http://127.0.0.1:9/v1"] + args, stdin=b'{"id":1,"text":"x"}\n')
        r.expect_rc(1)
        eq(r.out, b"", "stdout of %s" % args)
        eq(r.err_text, msg, "stderr of %s" % args)


# --------------------------------------------------------------------------
# The examples, run as written.

EXAMPLES = os.path.join(ROOT, "examples", "postgres")
EX_DIMS = 16


def example_env(c, db, srv, state):
    env = c.env(db)
    env.update(OPENAI_BASE_URL=srv.url, VECTOR="pgarray", DIMS=str(EX_DIMS), STATE_DIR=state)
    return env


def run_script(name, args, env):
    """Runs the example script with `args`; it runs embedpipe from PATH."""
    p = spawn(args, command=["sh", os.path.join(EXAMPLES, name)], env=env, cwd=ROOT,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def table_rows(c, db):
    """{id: (url, tokens, model, float hex, loaded_at)} of the items table."""
    q = ("SELECT encode(convert_to(id, 'UTF8'), 'hex'), encode(convert_to(url, 'UTF8'), 'hex'), "
         "tokens, model, (SELECT string_agg(encode(float4send(e), 'hex'), '' ORDER BY o) "
         "FROM unnest(embedding) WITH ORDINALITY AS u(e, o)), "
         "to_char(loaded_at, 'YYYYMMDDHH24MISSUS') FROM items")
    return {bytes.fromhex(r[0]).decode(): (None if r[1] is None else bytes.fromhex(r[1]).decode(),
                                           int(r[2]), r[3], r[4], r[5])
            for r in c.copy_out(q, db=db)}


def jsonl_of(srv, path):
    """{id text: (float hex, url)} from embedpipe's JSONL output of `path`."""
    r = run(base_args(srv, EX_DIMS, "-q", "--carry", "meta.url", "--", path))
    check(r.rc in (0, 2), "embedpipe exit %d" % r.rc)
    out = {}
    for line in r.lines:
        id_text, arr, _ = harness.split_output_line(line)
        obj = json.loads(line)
        out[str(id_value(id_text))] = ("".join(float_hex(t) for t in arr[1:-1].split(",")),
                                       obj.get("meta.url"))
    return out


@test
def examples_load_incremental_upsert_and_nearest_run_as_written():
    c = cluster()
    db = fresh_db(c)
    state = tmpdir("state")
    d = tmpdir("examples")
    sections = os.path.join(ROOT, "examples", "sections.jsonl")
    with Server() as srv:
        env = example_env(c, db, srv, state)
        p = run_script("load.sh", [sections], env)
        eq(p.returncode, 2, "load.sh exit status (2: the example has rejected records); "
           "stderr: %s" % p.stderr.decode(errors="replace")[-1500:])
        check(b"load.sh: loaded 6 items" in p.stderr, "load.sh message: %r" % p.stderr[-500:])
        want = jsonl_of(srv, sections)
        first = table_rows(c, db)
        eq(sorted(first), sorted(want), "ids loaded")
        for k, (url, tokens, model, floats, _) in first.items():
            eq((floats, url), want[k], "embedding and url of %r" % k)
            eq(model, MODEL, "model of %r" % k)
            check(tokens > 0, "tokens of %r" % k)

        # The next cron run: one text changed, one section new (twice: the
        # later line wins), the rest as they were.
        with open(sections, "rb") as f:
            lines = f.read().split(b"\n")
        changed = [l.replace(b"several requests run at once", b"requests overlap")
                   if l.startswith(b'{"id":"intro-2"') else l for l in lines if l]
        changed.append(b'{"id":"new-1","text":"An early draft.","meta":{"url":"u1"}}')
        changed.append(b'{"id":"new-1","text":"A section added later.","meta":{"url":"u2"}}')
        path2 = os.path.join(d, "sections2.jsonl")
        with open(path2, "wb") as f:
            f.write(b"\n".join(changed) + b"\n")
        p = run_script("incremental.sh", [path2], env)
        eq(p.returncode, 2, "incremental.sh exit status; stderr: %s"
           % p.stderr.decode(errors="replace")[-1500:])
        second = table_rows(c, db)
        eq(sorted(second), sorted(list(want) + ["new-1"]), "ids after the upsert")
        with open(os.path.join(d, "new1.jsonl"), "wb") as f:
            f.write(changed[-1] + b"\n")
        want_new = jsonl_of(srv, os.path.join(d, "new1.jsonl"))["new-1"]
        eq((second["new-1"][3], second["new-1"][0]), want_new, "new-1: the later line won")
        want2 = jsonl_of(srv, path2)
        for k in want:
            eq((second[k][3], second[k][0]), want2[k], "embedding and url of %r after" % k)
            if k == "intro-2":
                check(second[k][3] != first[k][3], "intro-2's embedding was not updated")
                check(second[k][4] > first[k][4], "intro-2's loaded_at did not move")
            else:
                eq(second[k][4], first[k][4], "loaded_at of unchanged %r" % k)

        # load.sh stored each row's key: only intro-2 and both lines of
        # new-1 were written (and sent: load.sh keeps no checkpoint).
        with open(os.path.join(state, "items.stats.json")) as f:
            stats = json.load(f)
        eq((stats["records"]["embedded"], stats["records"]["from_checkpoint"],
            stats["known"]["unchanged"], stats["known"]["deleted"]), (3, 0, 5, 0),
           "first incremental run: written, from the checkpoint, unchanged, deleted")

        # Nothing changed: nothing is touched, nothing is sent. new-1's two
        # lines are written again (an earlier line of the id differs from
        # the table, so its last must follow), from the checkpoint.
        p = run_script("incremental.sh", [path2], env)
        eq(p.returncode, 2, "second incremental.sh exit status")
        eq(table_rows(c, db), second, "table after an unchanged run")
        with open(os.path.join(state, "items.stats.json")) as f:
            stats = json.load(f)
        eq((stats["requests"]["sent"], stats["records"]["from_checkpoint"],
            stats["known"]["unchanged"]), (0, 2, 6),
           "unchanged run: requests, records from the checkpoint, unchanged")

        # A section leaves the files: its row leaves the table, nothing is sent.
        path3 = os.path.join(d, "sections3.jsonl")
        with open(path3, "wb") as f:
            f.write(b"\n".join(l for l in changed if not l.startswith(b'{"id":"crlf"')) + b"\n")
        p = run_script("incremental.sh", [path3], env)
        eq(p.returncode, 2, "third incremental.sh exit status")
        check(b"incremental.sh: 1 deleted" in p.stderr, "message: %r" % p.stderr[-300:])
        third = table_rows(c, db)
        eq(third, {k: v for k, v in second.items() if k != "crlf"}, "table after a deletion")
        with open(os.path.join(state, "items.stats.json")) as f:
            stats = json.load(f)
        eq((stats["requests"]["sent"], stats["known"]["deleted"]), (0, 1),
           "deleting run: requests, deleted")
        second = third

    # The nearest-neighbour query, against distances computed here.
    out = c.psql("-A", "-t", "-F", "\t", "-v", "id=intro-1", "-f",
                 os.path.join(EXAMPLES, "nearest-real.sql"), db=db).decode()
    got = [l.split("\t") for l in out.strip("\n").split("\n")]
    vecs = {k: struct.unpack(">%df" % EX_DIMS, bytes.fromhex(v[3])) for k, v in second.items()}

    def cosine_distance(a, b):
        dot = sum(x * y for x, y in zip(a, b))
        na = sum(x * x for x in a) ** 0.5
        nb = sum(y * y for y in b) ** 0.5
        return 1 - dot / (na * nb)
    ranked = sorted((cosine_distance(vecs[k], vecs["intro-1"]), k) for k in vecs if k != "intro-1")
    eq([g[0] for g in got], [k for _, k in ranked[:5]], "nearest ids in order")
    for g, (dist, k) in zip(got, ranked):
        eq(g[1], second[k][0] or "", "url of %r" % k)
        check(abs(float(g[2]) - dist) < 1e-9, "distance of %r: %s, want %r" % (k, g[2], dist))


def sync_rows(c, db):
    """{id: (key, url, tokens, model, float hex)} of the items table: every
    column a load decides, loaded_at aside."""
    return {k: v[:1] + v[1][:4] for k, v in _keyed_rows(c, db).items()}


def _keyed_rows(c, db):
    keys = {bytes.fromhex(r[0]).decode(): r[1] for r in c.copy_out(
        "SELECT encode(convert_to(id, 'UTF8'), 'hex'), key FROM items", db=db)}
    return {k: (keys[k], v) for k, v in table_rows(c, db).items()}


def write_corpus(path, recs, extra=b""):
    with open(path, "wb") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False).encode() + b"\n")
        f.write(extra)


@test
def incremental_sync_over_seven_runs_equals_a_fresh_load_each_time():
    """One corpus evolves over seven runs of incremental.sh: edits,
    additions, removals, a renamed id, a repeated id, a line that is not
    JSON, a load that fails, a run killed with SIGKILL. After each run that
    loads, the table equals a fresh load of the corpus, bit for bit; after
    each that fails, it is as it was, and the next run repairs it. Only new
    or changed texts are ever sent."""
    c = cluster()
    db = fresh_db(c)
    state = tmpdir("state")
    d = tmpdir("sync")
    ids = ["tab\there", "new\nline", "back\\slash", "caf\u00e9 \u6771\u4eac", "\\N", "\\.",
           "crlf\r\n", "", 7, 12.5, "plain"]
    corpus = [{"id": i, "text": "section %d of the sync corpus" % n, "meta": {"url": "u%d" % n}}
              for n, i in enumerate(ids)]
    c.psql("-q", "-v", "dims=%d" % EX_DIMS, "-f", os.path.join(EXAMPLES, "schema-real.sql"), db=db)
    refs = Server()
    refs.start()
    seen = set()  # texts the journal holds: never to be sent again

    def reference(recs):
        """The table a fresh load.sh of `recs` gives (the last line of an id wins)."""
        last = {}
        for r in recs:
            last.pop(json.dumps(r["id"]), None)
            last[json.dumps(r["id"])] = r
        ref_db = fresh_db(c)
        path = os.path.join(d, "ref.jsonl")
        write_corpus(path, last.values())
        p = run_script("load.sh", [path], example_env(c, ref_db, refs, state))
        eq(p.returncode, 0, "reference load.sh: %s" % p.stderr[-500:])
        return sync_rows(c, ref_db)

    def sync(run_no, recs, srv, extra=b"", want_rc=0):
        path = os.path.join(d, "run%d.jsonl" % run_no)
        write_corpus(path, recs, extra)
        base = len(srv.entries)
        p = run_script("incremental.sh", ["--batch-inputs", "2", path],
                       example_env(c, db, srv, state))
        eq(p.returncode, want_rc, "run %d exit status; stderr: %s"
           % (run_no, p.stderr.decode(errors="replace")[-1500:]))
        texts = [t for e in srv.wait_for(lambda e: True)[base:] if e["status"] == 200
                 for t in e["texts"]]
        return p, texts

    def expect_sent(run_no, texts, recs, before):
        """Sent: only texts of new or changed rows, never one sent before."""
        changed = {r["text"] for r in recs
                   if before.get(str(r["id"]), (None,))[0] is None
                   or r["text"] not in seen}
        check(not set(texts) & seen, "run %d sent texts again: %r" % (run_no, set(texts) & seen))
        check(set(texts) <= changed, "run %d sent unchanged texts: %r" % (run_no, set(texts) - changed))
        eq(len(texts), len(set(texts)), "run %d: each text sent once" % run_no)
        seen.update(texts)

    try:
        with Server() as srv:
            # 1: the first load, from an empty table.
            p, texts = sync(1, corpus, srv)
            expect_sent(1, texts, corpus, {})
            eq(sorted(texts), sorted(r["text"] for r in corpus), "run 1 sent every text")
            eq(sync_rows(c, db), reference(corpus), "table after run 1")

            # 2: two texts edited, two sections added.
            v2 = [dict(r, text=r["text"] + " (edited)") if n in (1, 4) else r
                  for n, r in enumerate(corpus)]
            v2 += [{"id": "added-%d" % n, "text": "added section %d" % n} for n in range(2)]
            before = sync_rows(c, db)
            p, texts = sync(2, v2, srv)
            expect_sent(2, texts, v2, before)
            eq(sorted(texts), sorted([v2[1]["text"], v2[4]["text"], "added section 0",
                                      "added section 1"]), "run 2 sent")
            eq(sync_rows(c, db), reference(v2), "table after run 2")

            # 3: two sections removed, one id renamed (its text is in the
            # journal: no request).
            v3 = [r for r in v2 if r["id"] not in ("plain", 7)]
            v3 = [dict(r, id="renamed") if r["id"] == "added-0" else r for r in v3]
            p, texts = sync(3, v3, srv)
            eq(texts, [], "run 3 sent")
            # plain and 7 left, added-0 became renamed.
            check(b"incremental.sh: 3 deleted" in p.stderr, "run 3: %r" % p.stderr[-300:])
            check(b"checkpoint compacted to the 11 vectors" in p.stderr,
                  "run 3 kept the unchanged texts' vectors: %r" % p.stderr[-300:])
            eq(sync_rows(c, db), reference(v3), "table after run 3")

            # 4: an id given twice (the last line wins), a section removed,
            # and a line that is not JSON: nothing may be deleted.
            v4 = [r for r in v3 if r["id"] != "renamed"]
            v4 += [{"id": "twice", "text": "first take"}, {"id": "twice", "text": "second take"}]
            before = sync_rows(c, db)
            p, texts = sync(4, v4, srv, extra=b"{not json\n", want_rc=2)
            expect_sent(4, texts, v4, before)
            err = p.stderr.decode(errors="replace")
            check("no deletions written" in err and "could not be read" in err and
                  "run4.jsonl:%d" % (len(v4) + 1) in err, "run 4 says why: %s" % err[-800:])
            after = sync_rows(c, db)
            eq(after.get("renamed"), before["renamed"], "run 4 kept the removed row")
            eq({k: v for k, v in after.items() if k != "renamed"}, reference(v4),
               "table after run 4, the kept row aside")

            # 5: the load fails inside the transaction: the table stays as
            # it was; the next run repairs it from the journal.
            v5 = [dict(r, text="rewritten " + r["text"]) if r["id"] == "twice" else r for r in v4]
            c.sql("CREATE FUNCTION no_load() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$BEGIN RAISE EXCEPTION 'load refused'; END$$", db=db)
            c.sql("CREATE TRIGGER no_load BEFORE INSERT OR UPDATE ON items "
                  "FOR EACH ROW EXECUTE FUNCTION no_load()", db=db)
            before = sync_rows(c, db)
            p, texts = sync(5, v5, srv, want_rc=3)
            check(b"load refused" in p.stderr, "run 5 failed in the load: %r" % p.stderr[-300:])
            expect_sent(5, texts, v5, before)
            eq(sync_rows(c, db), before, "table after the failed load")
            c.sql("DROP TRIGGER no_load ON items", db=db)
            p, texts = sync(55, v5, srv)
            eq(texts, [], "the repairing run sent (all in the journal)")
            eq(sync_rows(c, db), reference(v5), "table after the repair of run 5")

        # 6: embedpipe killed with SIGKILL while a request hangs: nothing is
        # loaded; the next run repairs it, paying only for what was lost.
        v6 = v5 + [{"id": "late-%d" % n, "text": "late section %d" % n} for n in range(6)]
        pid_file = os.path.join(d, "pid")
        wrapper = os.path.join(d, "embedpipe-pid")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\necho $$ > %s\nexec %s \"$@\"\n"
                    % (pid_file, os.path.join(ROOT, harness.BUILD, "embedpipe")))
        os.chmod(wrapper, 0o755)
        before = sync_rows(c, db)
        with Server("--faults", "2:hang") as srv:
            path = os.path.join(d, "run6.jsonl")
            write_corpus(path, v6)
            env = example_env(c, db, srv, state)
            env["EMBEDPIPE"] = wrapper
            script = spawn(["--batch-inputs", "2", "-j", "1", path],
                           command=["sh", os.path.join(EXAMPLES, "incremental.sh")], env=env,
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            srv.wait_for(lambda e: len(e) >= 1, what="the first answer")
            with open(pid_file) as f:
                os.kill(int(f.read()), signal.SIGKILL)
            out, err = script.communicate(timeout=120)
            eq(script.returncode, 128 + 9, "run 6 exit status; stderr %r" % err[-500:])
            # Not added to `seen`: an answer the kill came before the
            # journal's fsync is lost with the process, and paid again.
            killed = [t for e in srv.requests() if e["status"] == 200 for t in e["texts"]]
            late = {r["text"] for r in v6[-6:]}
            check(set(killed) <= late, "run 6 sent only late sections: %r" % killed)
        eq(sync_rows(c, db), before, "table after the killed run")
        with Server() as srv:
            p, texts = sync(7, v6, srv)
            expect_sent(7, texts, v6, before)
            eq(set(texts) | set(killed), late, "runs 6 and 7 sent the late sections")
            eq(sync_rows(c, db), reference(v6), "table after run 7")
    finally:
        refs.stop()


if __name__ == "__main__":
    # The cluster goes away however the suite ends: main() exits through
    # SystemExit, and SIGTERM/SIGINT are turned into it.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(128 + 15))
    try:
        main()
    finally:
        CLUSTER.stop()
