// A user's embedding script with LangChain's OpenAIEmbeddings: one
// embedDocuments call over all texts, which it splits by batchSize and runs
// maxConcurrency at a time (with LangChain's own retries).
//   node langchain.mjs --in CORPUS.jsonl --out OUT.jsonl --base-url URL
//                      --model M --dimensions D --batch N --concurrency N
import { OpenAIEmbeddings } from "@langchain/openai";
import { parseArgs, readRecords, writeEmbeddings } from "./common.mjs";

const args = parseArgs(process.argv.slice(2),
                       ["in", "out", "base-url", "model", "dimensions", "batch", "concurrency"]);
const embeddings = new OpenAIEmbeddings({
  model: args.model,
  dimensions: Number(args.dimensions),
  batchSize: Number(args.batch),
  maxConcurrency: Number(args.concurrency),
  configuration: { baseURL: args["base-url"] },  // key from OPENAI_API_KEY
});
const records = await readRecords(args.in);
const vectors = await embeddings.embedDocuments(records.map((r) => r.text));
await writeEmbeddings(args.out, records, vectors);
console.error(`embedded ${records.length} records`);
