-- check: every sha is 40 lower-case hex digits; parents are such SHAs joined by one space, parent_count of them
-- params:
SELECT count(*) AS observed, 0 AS expected
FROM commits
WHERE length(sha) <> 40
   OR strpos(sha, ' ') > 0
   OR length(regexp_replace(sha || parents, '[^0-9a-f ]', '', 'g')) <> 40 + length(parents)
   OR length(parents) <> greatest(parent_count * 41 - 1, 0)
