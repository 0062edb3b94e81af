-- The items table for embedpipe's output, with pgvector: the embedding is a
-- vector(:dims), searched with an HNSW index by cosine distance.
--   psql -v dims=1536 -f examples/postgres/schema-pgvector.sql
-- Load with: embedpipe --format tsv --vector pgvector --carry meta.url \
--   --columns id,embedding,meta.url,tokens,model ...  (see load.sh)
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS items (
  id        text PRIMARY KEY,      -- a numeric JSON id arrives as its text
  embedding vector(:dims) NOT NULL,
  url       text,                  -- carried meta.url; NULL when absent
  tokens    integer,
  model     text,
  loaded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS items_embedding_idx
  ON items USING hnsw (embedding vector_cosine_ops);
