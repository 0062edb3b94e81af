-- The items table for embedpipe's output without pgvector: the embedding is
-- a real[] (float4[]) of :dims floats. No index can search it; nearest-real.sql
-- scans the table, which is fine for some ten thousand rows.
--   psql -v dims=1536 -f examples/postgres/schema-real.sql
-- Load with: embedpipe --format tsv --vector pgarray --carry meta.url \
--   --columns id,key,embedding,meta.url,tokens,model ...  (see load.sh)
CREATE TABLE IF NOT EXISTS items (
  id        text PRIMARY KEY,      -- a numeric JSON id arrives as its text
  key       text,                  -- embedpipe's content key (--known)
  embedding real[] NOT NULL CHECK (cardinality(embedding) = :dims),
  url       text,                  -- carried meta.url; NULL when absent
  tokens    integer,
  model     text,
  loaded_at timestamptz NOT NULL DEFAULT now()
);
-- A table made before the key column: its rows are rewritten once by the
-- next incremental.sh run (a NULL key never matches).
ALTER TABLE items ADD COLUMN IF NOT EXISTS key text;

-- 1 - cosine similarity, as pgvector's <=> computes it.
CREATE OR REPLACE FUNCTION cosine_distance(a real[], b real[])
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT 1 - sum(x::float8 * y) / sqrt(sum(x::float8 * x) * sum(y::float8 * y))
  FROM unnest(a, b) AS t(x, y)
$$;
