-- The items table for embedpipe's output with pgvector's halfvec: each value
-- a 16-bit float, so the table is half the size of a vector(:dims) one, and
-- the HNSW index takes up to 4000 dimensions where vector's takes 2000
-- (text-embedding-3-large gives 3072). Searched by cosine distance.
--   psql -v dims=3072 -f examples/postgres/schema-halfvec.sql
-- Load with: embedpipe --format tsv --vector halfvec --carry meta.url \
--   --columns id,key,embedding,meta.url,tokens,model ...  (see load.sh)
-- (--format binary loads faster; it writes halfvec's own binary form.)
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS items (
  id        text PRIMARY KEY,      -- a numeric JSON id arrives as its text
  key       text,                  -- embedpipe's content key (--known)
  embedding halfvec(:dims) NOT NULL,
  url       text,                  -- carried meta.url; NULL when absent
  tokens    integer,
  model     text,
  loaded_at timestamptz NOT NULL DEFAULT now()
);
-- A table made before the key column: its rows are rewritten once by the
-- next incremental.sh run (a NULL key never matches).
ALTER TABLE items ADD COLUMN IF NOT EXISTS key text;

CREATE INDEX IF NOT EXISTS items_embedding_idx
  ON items USING hnsw (embedding halfvec_cosine_ops);
