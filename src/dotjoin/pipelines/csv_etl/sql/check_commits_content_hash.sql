-- check: every row carries its 16-byte content hash (change detection depends on it)
-- params:
SELECT count(*) AS observed, 0 AS expected
FROM commits
WHERE content_hash IS NULL OR octet_length(content_hash) <> 16
