-- The knowledge-base documents matching any of the question's words, best first (SQLite FTS5).
-- The query parameter is an FTS5 query of OR-ed quoted words built by prep_support.how_to_store; bm25 weighs a
-- title match 4x a body match and is negative (lower is better), so it is negated into `rank`.
SELECT d.id, d.source, d.title, d.url, d.body, -bm25(how_to_fts, 4.0, 1.0) AS rank
FROM how_to_fts
JOIN how_to_documents AS d ON d.id = how_to_fts.rowid
WHERE how_to_fts MATCH :query
ORDER BY bm25(how_to_fts, 4.0, 1.0), d.id
LIMIT :limit
