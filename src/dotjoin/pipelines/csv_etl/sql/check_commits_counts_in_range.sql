-- check: additions and deletions are not negative, parent_count matches is_merge
-- params:
SELECT count(*) AS observed, 0 AS expected
FROM commits
WHERE additions < 0 OR deletions < 0 OR parent_count < 0 OR is_merge <> (parent_count >= 2)
