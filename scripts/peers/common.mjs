// What both peer programs share: their command line, reading the corpus and
// writing the output, the way a short script of a user of these libraries
// does it (JSON.parse each line, keep everything in memory, write at the end).
import fs from "node:fs";
import readline from "node:readline";
import { once } from "node:events";

/// --name value pairs into an object; every one of `required` must be given.
export function parseArgs(argv, required) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const name of required) {
    if (args[name] === undefined) throw new Error(`--${name} is required`);
  }
  return args;
}

/// The records of a JSONL file, {id, text} each; blank lines skipped.
export async function readRecords(path) {
  const records = [];
  const lines = readline.createInterface({
    input: fs.createReadStream(path, { encoding: "utf8" }),
    crlfDelay: Infinity,
  });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const { id, text } = JSON.parse(line);
    records.push({ id, text });
  }
  return records;
}

/// Writes {"id":..,"embedding":[..]} per record, waiting when the stream is full.
export async function writeEmbeddings(path, records, vectors) {
  const out = fs.createWriteStream(path);
  for (let i = 0; i < records.length; i++) {
    const line = JSON.stringify({ id: records[i].id, embedding: vectors[i] }) + "\n";
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}
