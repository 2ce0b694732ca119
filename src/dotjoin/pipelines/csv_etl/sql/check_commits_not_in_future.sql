-- check: no authored_at or committed_at at or after the run's reference time
-- params: reference_time
SELECT count(*) AS observed, 0 AS expected
FROM commits
WHERE authored_at >= $1 OR committed_at >= $1
