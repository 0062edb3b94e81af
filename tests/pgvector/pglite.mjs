// Real pgvector without a server: PostgreSQL compiled to WASM (PGlite) with
// the pgvector extension, both pinned in package-lock.json (install with
// `npm ci` here). One in-memory database for the life of the process, since
// starting one takes seconds.
//
// Reads requests from stdin, one JSON object a line, and answers each with
// one JSON line on stdout, in order:
//   {"sql": "...", "params": [...], "blob": "/path", "out": "/path"}
//     runs one statement; "blob" is the file a `COPY ... FROM '/dev/blob'`
//     reads, "out" the file that gets what `COPY ... TO '/dev/blob'` wrote.
//     Answers {"rows": [[v, ...], ...], "ms": N} (values as PGlite gives
//     them: text, numbers, null; ms is the statement's wall time), or
//     {"error": "message"} when PostgreSQL refused it.
// The first line out, once the database is up: {"ready": "<version>",
// "pgvector": "<version>"}. Exits at the end of stdin.
import fs from "node:fs";
import readline from "node:readline";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";

const db = await PGlite.create({ extensions: { vector } });
await db.exec("CREATE EXTENSION vector");
const info = await db.query(
  "SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'vector')",
  [], { rowMode: "array" });
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
say({ ready: info.rows[0][0], pgvector: info.rows[0][1] });

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  const options = { rowMode: "array" };
  if (request.blob) options.blob = new Blob([fs.readFileSync(request.blob)]);
  const start = performance.now();
  try {
    const result = await db.query(request.sql, request.params || [], options);
    const ms = performance.now() - start;
    if (request.out) {
      // A COPY of no rows gives no blob at all: the file is then empty.
      const bytes = result.blob ? await result.blob.arrayBuffer() : new ArrayBuffer(0);
      fs.writeFileSync(request.out, Buffer.from(bytes));
    }
    say({ rows: result.rows, ms });
  } catch (e) {
    say({ error: e.message });
  }
}
await db.close();
