-- The knowledge-base documents matching any of the question's words, best first (PostgreSQL).
-- The query parameter is a tsquery text of OR-ed lexemes built by prep_support.how_to_store; the title weighs
-- more than the body (setweight A/B in migration 0008); the GIN index on `search` finds the rows.
SELECT d.id, d.source, d.title, d.url, d.body, ts_rank_cd(d.search, q) AS rank
FROM how_to_documents AS d, to_tsquery('english', :query) AS q
WHERE d.search @@ q
ORDER BY rank DESC, d.id
LIMIT :limit
