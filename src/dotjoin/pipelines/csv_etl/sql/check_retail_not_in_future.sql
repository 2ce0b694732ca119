-- check: no sold_at at or after the run's reference time
-- params: reference_time
SELECT count(*) AS observed, 0 AS expected
FROM sales
WHERE sold_at >= $1
