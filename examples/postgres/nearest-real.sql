-- The 5 items nearest to item :'id' by cosine distance, for the real[]
-- table of schema-real.sql (a full scan; cosine_distance is defined there).
--   psql -v id=intro-1 -f examples/postgres/nearest-real.sql
SELECT b.id, b.url, cosine_distance(b.embedding, a.embedding) AS distance
FROM items a, items b
WHERE a.id = :'id' AND b.id <> a.id
ORDER BY distance, b.id
LIMIT 5;
