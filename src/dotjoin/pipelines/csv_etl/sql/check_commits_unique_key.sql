-- check: no two rows of commits share a natural key (repo, sha)
-- params:
SELECT count(*) AS observed, 0 AS expected
FROM (SELECT repo, sha FROM commits GROUP BY repo, sha HAVING count(*) > 1) AS repeated
