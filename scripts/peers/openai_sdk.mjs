// A user's embedding script with the official openai SDK: batches of
// --batch texts, --concurrency requests in flight (a promise pool), the SDK's
// own retries (2 by default).
//   node openai_sdk.mjs --in CORPUS.jsonl --out OUT.jsonl --base-url URL
//                       --model M --dimensions D --batch N --concurrency N
import OpenAI from "openai";
import { parseArgs, readRecords, writeEmbeddings } from "./common.mjs";

const args = parseArgs(process.argv.slice(2),
                       ["in", "out", "base-url", "model", "dimensions", "batch", "concurrency"]);
const client = new OpenAI({ baseURL: args["base-url"] });  // key from OPENAI_API_KEY
const records = await readRecords(args.in);
const size = Number(args.batch);
const batches = [];
for (let i = 0; i < records.length; i += size) batches.push(records.slice(i, i + size));

const results = new Array(batches.length);
let next = 0;
async function worker() {
  while (next < batches.length) {
    const b = next++;
    const response = await client.embeddings.create({
      model: args.model,
      input: batches[b].map((r) => r.text),
      dimensions: Number(args.dimensions),
    });
    results[b] = response.data.map((d) => d.embedding);
  }
}
await Promise.all(Array.from({ length: Number(args.concurrency) }, worker));
await writeEmbeddings(args.out, records, results.flat());
console.error(`embedded ${records.length} records in ${batches.length} batches`);
