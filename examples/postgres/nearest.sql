-- The 5 items nearest to item :'id' by cosine distance, with pgvector (the
-- HNSW index of schema-pgvector.sql or schema-halfvec.sql answers the
-- ORDER BY ... LIMIT).
--   psql -v id=intro-1 -f examples/postgres/nearest.sql
SELECT b.id, b.url, b.embedding <=> a.embedding AS distance
FROM items a, items b
WHERE a.id = :'id' AND b.id <> a.id
ORDER BY b.embedding <=> a.embedding
LIMIT 5;
