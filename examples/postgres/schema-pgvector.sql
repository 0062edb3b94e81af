-- The items table for embedpipe's output, with pgvector: the embedding is a
-- vector(:dims), searched with an HNSW index by cosine distance.
--   psql -v dims=1536 -f examples/postgres/schema-pgvector.sql
-- Load with: embedpipe --format tsv --vector pgvector --carry meta.url \
--   --columns id,key,embedding,meta.url,tokens,model ...  (see load.sh)
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS items (
  id        text PRIMARY KEY,      -- a numeric JSON id arrives as its text
  key       text,                  -- embedpipe's content key (--known)
  embedding vector(:dims) NOT NULL,
  url       text,                  -- carried meta.url; NULL when absent
  tokens    integer,
  model     text,
  loaded_at timestamptz NOT NULL DEFAULT now()
);
-- A table made before the key column: its rows are rewritten once by the
-- next incremental.sh run (a NULL key never matches).
ALTER TABLE items ADD COLUMN IF NOT EXISTS key text;

CREATE INDEX IF NOT EXISTS items_embedding_idx
  ON items USING hnsw (embedding vector_cosine_ops);
