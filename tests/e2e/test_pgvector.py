#!/usr/bin/env python3
"""embedpipe's output loaded into real pgvector (issue 20).

Debian 12 packages no pgvector, but PGlite (PostgreSQL compiled to WASM)
and its pgvector extension come from npm, pinned in
tests/pgvector/package-lock.json and installed by scripts/install-deps.sh
(pglite.py). One in-memory database serves the whole file: it takes seconds
to start. Where node is absent the file is skipped, with one line saying
why; where node is present and the packages are not, every test fails.

The same 2,000 records (ids with every character COPY treats specially,
copy_ids.py) are written in each --format (tsv, csv, binary), loaded with
COPY into vector(1536) and halfvec(1536), and exported again with COPY
BINARY, which gives each value in its type's own binary form (vector_send,
halfvec_send). Every id byte, and every float32 bit (vector) or every half
(halfvec: each float32 of the JSONL output rounded to nearest, ties to
even, here in Python) must equal what embedpipe's JSONL output of the same
input says.
"""

import json
import os
import re
import signal
import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MODEL, ROOT, Server, base_args, check, eq, gencorpus, jsonl,  # noqa: E402
                     main, run, test, tmpdir, verify)
import harness  # noqa: E402
from copy_ids import all_id_texts, id_value  # noqa: E402
from pglite import PGlite, node_missing  # noqa: E402

DIMS = 1536
ROWS = 2000
LARGE = "text-embedding-3-large"  # 3072 dimensions
LARGE_ROWS = 300
COPY_OPTION = {"tsv": "", "csv": " WITH (FORMAT csv)", "binary": " WITH (FORMAT binary)"}
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
# The fake provider's `big` fault: 65520 as the first value of the first
# vector of every response (every:1), so with batches of 700 the records of
# lines 1, 701 and 1401.
BIG_FAULT = ["--faults", "every:1:big"]
BIG_LINES = [1, 701, 1401]
BIG_ERROR = ("embedding value 65520 (number 1 of %d) is out of range for halfvec, "
             "whose largest value is 65504" % DIMS)

DB = PGlite()


# --------------------------------------------------------------------------
# The input and what every load must give back.

def input_lines(rows, awkward=True):
    """(input bytes, [(id JSON text, normalized text)]): the awkward ids
    spread through the rows, the other ids strings and numbers."""
    awkward_ids = all_id_texts() if awkward else []
    lines, items = [], []
    for i in range(rows):
        k, r = divmod(i - 5, 61)
        if i >= 5 and r == 0 and k < len(awkward_ids):
            id_text = awkward_ids[k]
        else:
            id_text = str(i) if i % 10 == 3 else json.dumps("row-%d" % i)
        text = "section %d: \u00e9t\u00e9 \"q\" \\ back, %s" % (i, "word " * (i % 7))
        line = json.dumps({"id": "@ID@", "text": text}, ensure_ascii=False)
        lines.append(line.replace('"@ID@"', id_text).encode())
        items.append((id_text, gencorpus.normalize(text.encode())[0]))
    return b"\n".join(lines) + b"\n", items


class Reference:
    """embedpipe's JSONL output of an input, checked against the fake
    provider's vectors: per line the id as PostgreSQL stores it (UTF-8
    bytes) and the vector as big-endian float32 bytes."""

    def __init__(self, srv, data, items, dims, model=MODEL):
        r = run(base_args(srv, dims, "-q", "--model", model), stdin=data)
        r.expect_rc(0)
        verify(r.out, items, dims, model=model)
        self.ids, self.floats, self.arrays = [], [], []
        for line in r.lines:
            id_text, arr, _ = harness.split_output_line(line)
            self.ids.append(id_value(id_text).encode("utf-8"))
            self.arrays.append(arr)
            values = [float(t) for t in arr[1:-1].split(",")]
            self.floats.append(struct.pack(">%df" % len(values), *values))


def halves(float_bytes):
    """Big-endian float32 bytes as big-endian binary16 bytes: each value
    rounded to nearest, ties to even (struct's "e", as pgvector rounds).
    OverflowError for a value no half holds."""
    n = len(float_bytes) // 4
    return struct.pack(">%de" % n, *struct.unpack(">%df" % n, float_bytes))


def copy_binary_rows(data):
    """The tuples of a COPY BINARY file, as lists of field bytes."""
    eq(data[:19], COPY_HEADER, "COPY BINARY header")
    pos, rows = 19, []
    while True:
        (fields,) = struct.unpack_from(">h", data, pos)
        pos += 2
        if fields == -1:
            break
        row = []
        for _ in range(fields):
            (size,) = struct.unpack_from(">i", data, pos)
            pos += 4
            row.append(None if size == -1 else data[pos:pos + size])
            pos += max(size, 0)
        rows.append(row)
    eq(pos, len(data), "end of the COPY BINARY data")
    return rows


def first_difference(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return "byte %d: %02x, want %02x" % (i, g, w)
    return "length %d, want %d" % (len(got), len(want))


def compare(rows, ids, vectors, what):
    """rows (id bytes, vector field bytes) against the expected ids and
    vector bytes, every byte."""
    eq(len(rows), len(ids), "%s: rows loaded" % what)
    for i, ((got_id, got_vec), want_id, want_vec) in enumerate(zip(rows, ids, vectors)):
        eq(got_id, want_id, "%s: row %d: id bytes" % (what, i + 1))
        if got_vec != want_vec:
            raise AssertionError("%s: row %d (id %r): vector bytes differ at %s" % (
                what, i + 1, want_id, first_difference(got_vec, want_vec)))


def load(table, column_type, path, fmt):
    """COPY of embedpipe's output `path` into a new table; its rows, in load
    order, as (id bytes, vector bytes) exported with COPY BINARY. (A test
    that failed half way leaves its tables; the next to need them redoes
    the load.)"""
    DB.query("DROP TABLE IF EXISTS %s" % table)
    DB.query("CREATE TABLE %s (seq serial, id text, e %s)" % (table, column_type))
    DB.query("COPY %s(id, e) FROM '/dev/blob'%s" % (table, COPY_OPTION[fmt]), blob=path)
    export = os.path.join(os.path.dirname(path), table + ".export")
    DB.query("COPY (SELECT id, e FROM %s ORDER BY seq) TO '/dev/blob' WITH (FORMAT binary)"
             % table, out=export)
    with open(export, "rb") as f:
        return [(row[0], row[1]) for row in copy_binary_rows(f.read())]


def write(d, name, data):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def cosine_distance(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return 1 - dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)


def nearest(query, table, operator_type):
    """The 10 rows of `table` nearest to the vector literal `query`, by
    cosine distance: [(id, distance)]."""
    return [(r[0], r[1]) for r in DB.query(
        "SELECT id, e <=> $1::%s FROM %s ORDER BY e <=> $1::%s LIMIT 10"
        % (operator_type, table, operator_type), [query])]


def expected_nearest(query, ids, vectors, what):
    """The 10 nearest (id, distance) computed here, in double precision;
    neighbours must lie further apart than float32 sums can blur."""
    ranked = sorted((cosine_distance(v, query), i) for i, v in zip(ids, vectors))[:11]
    for (d1, i1), (d2, i2) in zip(ranked, ranked[1:]):
        check(d2 - d1 > 1e-5, "%s: %r and %r are too close to rank (%r, %r)"
              % (what, i1, i2, d1, d2))
    return [(i, d) for d, i in ranked[:10]]


def check_nearest(got, want, what):
    eq([g[0] for g in got], [w[0] for w in want], "%s: nearest ids in order" % what)
    for (i, gd), (_, wd) in zip(got, want):
        check(abs(gd - wd) < 1e-5, "%s: distance of %r: %r, want %r" % (what, i, gd, wd))


def unpack(vector_bytes):
    n = len(vector_bytes) // 4
    return struct.unpack(">%df" % n, vector_bytes)


_state = {}


def reference(srv):
    """The JSONL Reference of the 2,000 records (made once)."""
    if "reference" not in _state:
        data, items = input_lines(ROWS)
        _state["reference"] = (data, items, Reference(srv, data, items, DIMS))
    return _state["reference"]


def vector_tables():
    """The 2,000 records in each format, loaded into vector(1536) and checked
    (once per run of this file): ({format: table}, the Reference, and the
    Reference of a query text)."""
    if "vector" not in _state:
        d = tmpdir("pgvector")
        tables = {}
        with Server() as srv:
            data, _, ref = reference(srv)
            for fmt in ("tsv", "csv", "binary"):
                r = run(base_args(srv, DIMS, "-q", "--format", fmt, "--vector", "pgvector",
                                  "--columns", "id,embedding"), stdin=data)
                r.expect_rc(0)
                path = write(d, "vector." + fmt, r.out)
                table = "vector_" + fmt
                header = struct.pack(">hh", DIMS, 0)
                compare(load(table, "vector(%d)" % DIMS, path, fmt), ref.ids,
                        [header + f for f in ref.floats], "%s into vector(%d)" % (fmt, DIMS))
                tables[fmt] = table
            query = Reference(srv, b'{"id":"q","text":"what the user asked"}\n',
                              [('"q"', "what the user asked")], DIMS)
        _state["vector"] = (tables, ref, query)
    return _state["vector"]


# --------------------------------------------------------------------------
# Tests.

@test
def pglite_runs_pgvector():
    DB.start()
    check(DB.version.startswith("PostgreSQL "), "version: %r" % DB.version)
    eq(DB.pgvector, "0.8.7", "pgvector version (pinned in tests/pgvector/package-lock.json)")


@test
def every_format_loads_into_vector_1536_with_every_id_byte_and_float_bit():
    tables, _, _ = vector_tables()
    eq(sorted(tables), ["binary", "csv", "tsv"], "formats loaded")


@test
def cosine_query_on_vector_1536_matches_the_jsonl_vectors():
    tables, ref, query = vector_tables()
    want = expected_nearest(unpack(query.floats[0]), ref.ids,
                            [unpack(f) for f in ref.floats], "vector(1536)")
    got = nearest(query.arrays[0], tables["binary"], "vector")
    check_nearest([(g.encode("utf-8"), d) for g, d in got], want, "vector(1536)")


@test
def every_format_loads_into_halfvec_1536_rounded_as_pgvector_rounds():
    d = tmpdir("halfvec")
    with Server() as srv:
        data, items, ref = reference(srv)
    keep = [i for i in range(ROWS) if i + 1 not in BIG_LINES]
    header = struct.pack(">hh", DIMS, 0)
    want_ids = [ref.ids[i] for i in keep]
    want = [header + halves(ref.floats[i]) for i in keep]
    for fmt in ("tsv", "csv", "binary", "jsonl"):
        errors = os.path.join(d, fmt + ".errors")
        with Server(*BIG_FAULT) as srv:
            r = run(base_args(srv, DIMS, "-q", "--format", fmt, "--vector", "halfvec",
                              "--columns", "id,embedding", "--errors", errors, "--batch-inputs", "700"),
                    stdin=data)
        # 65520 has no half: an error record naming line and field, never
        # an infinity (which pgvector would refuse, failing the whole COPY).
        r.expect_rc(2)
        eq([(e["line"], e["id"], e["field"], e["error"]) for e in harness.errors_of(r)],
           [(n, json.loads(items[n - 1][0]), "embedding", BIG_ERROR) for n in BIG_LINES],
           "%s: error records" % fmt)
        if fmt == "jsonl":
            # The literal as a JSON string, for a staging json column.
            got = [json.loads(line)["embedding"] for line in r.lines]
            eq(got, [ref.arrays[i] for i in keep], "jsonl: halfvec literals")
            continue
        path = write(d, "halfvec." + fmt, r.out)
        compare(load("halfvec_" + fmt, "halfvec(%d)" % DIMS, path, fmt), want_ids, want,
                "%s into halfvec(%d)" % (fmt, DIMS))
    # Why the record had to go: pgvector refuses the value in either form.
    refusal = DB.run("SELECT '[65520]'::halfvec")
    eq(refusal.get("error"), '"65520" is out of range for type halfvec', "text refusal")
    eq(halves(struct.pack(">f", 65519.996)), b"\x7b\xff", "the largest float32 a half holds")


@test
def halfvec_3072_from_the_large_model_answers_through_hnsw():
    d = tmpdir("halfvec3072")
    data, items = input_lines(LARGE_ROWS, awkward=False)
    with Server() as srv:
        ref = Reference(srv, data, items, None, LARGE)
        query = Reference(srv, b'{"id":"q","text":"what the user asked"}\n',
                          [('"q"', "what the user asked")], None, LARGE)
        r = run(base_args(srv, None, "-q", "--model", LARGE, "--format", "binary",
                          "--vector", "halfvec", "--columns", "id,embedding"), stdin=data)
    r.expect_rc(0)
    path = write(d, "large.bin", r.out)
    header = struct.pack(">hh", 3072, 0)
    compare(load("large", "halfvec(3072)", path, "binary"), ref.ids,
            [header + halves(f) for f in ref.floats], "binary into halfvec(3072)")
    DB.query("CREATE INDEX large_hnsw ON large USING hnsw (e halfvec_cosine_ops)")
    # Every row within the search's reach, so the approximate index must
    # give the exact answer; and the index, not a scan, must give it.
    DB.query("SET hnsw.ef_search = 1000")
    DB.query("SET enable_seqscan = off")
    sql = "SELECT id FROM large ORDER BY e <=> $1::halfvec LIMIT 10"
    plan = "\n".join(r[0] for r in DB.query("EXPLAIN " + sql, [query.arrays[0]]))
    check("Index Scan using large_hnsw" in plan, "plan: %s" % plan)
    as_halves = [struct.unpack(">%de" % 3072, halves(f)) for f in ref.floats]
    want = expected_nearest(struct.unpack(">3072e", halves(query.floats[0])), ref.ids,
                            as_halves, "halfvec(3072)")
    got = nearest(query.arrays[0], "large", "halfvec")
    check_nearest([(g.encode("utf-8"), d) for g, d in got], want, "halfvec(3072)")
    DB.query("RESET enable_seqscan")


EXAMPLES = os.path.join(ROOT, "examples", "postgres")
EX_DIMS = 16


def example_sql(name, **values):
    """The statements of examples/postgres/NAME with psql's :name and
    :'name' variables filled in."""
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(":'%s'" % k, "'%s'" % v).replace(":%s" % k, str(v))
    # Their comments may hold semicolons; their SQL holds no "--".
    body = re.sub(r"--[^\n]*", "", text)
    return [st.strip() for st in body.split(";") if st.strip()]


@test
def example_halfvec_schema_loads_binary_and_nearest_sql_answers():
    for statement in example_sql("schema-halfvec.sql", dims=EX_DIMS):
        DB.query(statement)
    d = tmpdir("example")
    sections = os.path.join(ROOT, "examples", "sections.jsonl")
    with Server() as srv:
        # The schema's own load command, in binary.
        r = run(base_args(srv, EX_DIMS, "-q", "--format", "binary", "--vector", "halfvec",
                          "--carry", "meta.url", "--columns", "id,key,embedding,meta.url,tokens,model",
                          "--", sections))
        check(r.rc == 2, "embedpipe exit %d (2: the example has rejected records)" % r.rc)
        ref = run(base_args(srv, EX_DIMS, "-q", "--", sections))
    path = write(d, "items.bin", r.out)
    DB.query("COPY items(id, key, embedding, url, tokens, model) FROM '/dev/blob' WITH (FORMAT binary)",
             blob=path)
    vectors = {}
    for line in ref.lines:
        id_text, arr, _ = harness.split_output_line(line)
        values = [float(t) for t in arr[1:-1].split(",")]
        vectors[str(id_value(id_text))] = struct.unpack(
            ">%de" % EX_DIMS, halves(struct.pack(">%df" % EX_DIMS, *values)))
    eq(sorted(r[0] for r in DB.query("SELECT id FROM items")), sorted(vectors), "ids loaded")
    (statement,) = example_sql("nearest.sql", id="intro-1")
    got = [(row[0], row[2]) for row in DB.query(statement)]
    ranked = sorted((cosine_distance(v, vectors["intro-1"]), k)
                    for k, v in vectors.items() if k != "intro-1")
    eq([g[0] for g in got], [k for _, k in ranked[:5]], "nearest.sql: ids in order")
    for (k, gd), (wd, _) in zip(got, ranked):
        check(abs(gd - wd) < 1e-5, "nearest.sql: distance of %r: %r, want %r" % (k, gd, wd))


def sync_export(table, d):
    """Every row of `table` (id, key, vector) as COPY BINARY bytes, by id."""
    path = os.path.join(d, table + ".export")
    DB.query("COPY (SELECT id, key, e FROM %s ORDER BY id COLLATE \"C\") TO '/dev/blob' "
             "WITH (FORMAT binary)" % table, out=path)
    with open(path, "rb") as f:
        return f.read()


@test
def incremental_sync_into_vector_equals_a_fresh_load():
    """Three runs of the nightly job (issue 21) into a vector column: export
    (id, key), run with --known --deleted --format binary, upsert and delete.
    After each, the table equals, byte for byte, a fresh load of the corpus;
    only new and changed texts reach the server (a renamed id's text comes
    from the checkpoint)."""
    d = tmpdir("sync")
    ids = ["tab\there", "new\nline", "back\\slash", "caf\u00e9", "\\N", "\\.", 7, "plain"]
    v1 = [{"id": i, "text": "sync section %d" % n} for n, i in enumerate(ids)]
    v2 = [dict(r, text=r["text"] + " edited") if r["id"] in ("new\nline", 7) else r
          for r in v1 if r["id"] != "\\."] + [{"id": "added", "text": "an added section"}]
    v3 = [dict(r, id="renamed") if r["id"] == "plain" else r for r in v2] + \
        [{"id": "twice", "text": "first take"}, {"id": "twice", "text": "second take"}]
    columns = ["--format", "binary", "--columns", "id,key,embedding"]
    create = "CREATE TABLE %s (id text PRIMARY KEY, key text, e vector(" + str(EX_DIMS) + "))"
    DB.query("DROP TABLE IF EXISTS synced")
    DB.query(create % "synced")
    with Server() as srv:
        for n, (recs, want_sent) in enumerate((
                (v1, {r["text"] for r in v1}),
                (v2, {"sync section 1 edited", "sync section 6 edited", "an added section"}),
                (v3, {"first take", "second take"}))):
            known, deleted = os.path.join(d, "known%d" % n), os.path.join(d, "deleted%d" % n)
            DB.query("COPY (SELECT id, key FROM synced) TO '/dev/blob'", out=known)
            base = len(srv.wait_for(lambda e: True) if n else [])
            r = run(base_args(srv, EX_DIMS, *columns, "--known", known, "--deleted", deleted,
                              "--checkpoint", os.path.join(d, "journal")),
                    stdin=jsonl(*recs))
            r.expect_rc(0)
            sent = {t for e in srv.wait_for(lambda e: True)[base:] for t in e["texts"]}
            eq(sent, want_sent, "run %d: texts sent" % (n + 1))
            changed = write(d, "changed%d.bin" % n, r.out)
            for statement in (
                    "BEGIN",
                    "CREATE TEMP TABLE gone (id text)",
                    ("COPY gone FROM '/dev/blob'", deleted),
                    "DELETE FROM synced USING gone WHERE synced.id = gone.id",
                    "CREATE TEMP TABLE changed (seq serial, id text, key text, e vector(%d))"
                    % EX_DIMS,
                    ("COPY changed(id, key, e) FROM '/dev/blob' WITH (FORMAT binary)", changed),
                    "INSERT INTO synced SELECT DISTINCT ON (id) id, key, e FROM changed "
                    "ORDER BY id, seq DESC ON CONFLICT (id) DO UPDATE SET key = excluded.key, "
                    "e = excluded.e",
                    "DROP TABLE changed, gone",
                    "COMMIT"):
                if isinstance(statement, tuple):
                    DB.query(statement[0], blob=statement[1])
                else:
                    DB.query(statement)
            # A fresh load of the same corpus: the last line of an id wins.
            last = {}
            for rec in recs:
                last.pop(json.dumps(rec["id"]), None)
                last[json.dumps(rec["id"])] = rec
            full = run(base_args(srv, EX_DIMS, *columns), stdin=jsonl(*last.values()))
            full.expect_rc(0)
            DB.query("DROP TABLE IF EXISTS fresh")
            DB.query(create % "fresh")
            DB.query("COPY fresh FROM '/dev/blob' WITH (FORMAT binary)",
                     blob=write(d, "full%d.bin" % n, full.out))
            eq(sync_export("synced", d), sync_export("fresh", d),
               "run %d: the synced table against a fresh load" % (n + 1))


if __name__ == "__main__":
    why = node_missing()
    if why:
        print("SKIP: tests/e2e/test_pgvector.py: %s (scripts/install-deps.sh installs it)" % why)
        print("0 passed, 0 failed")
        sys.exit(0)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(128 + 15))
    try:
        main()
    finally:
        DB.stop()
