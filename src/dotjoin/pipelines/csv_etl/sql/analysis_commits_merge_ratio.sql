-- analysis: share of merge commits (two or more parents), overall and by month
-- params:
SELECT CAST(date_trunc('month', committed_at AT TIME ZONE 'UTC') AS DATE) AS month,
       count(*) AS commits,
       sum(CASE WHEN is_merge THEN 1 ELSE 0 END) AS merges,
       round(CAST(avg(CASE WHEN is_merge THEN 1.0 ELSE 0.0 END) AS NUMERIC), 4) AS merge_ratio
FROM commits
GROUP BY 1
UNION ALL
SELECT NULL, count(*), sum(CASE WHEN is_merge THEN 1 ELSE 0 END),
       round(CAST(avg(CASE WHEN is_merge THEN 1.0 ELSE 0.0 END) AS NUMERIC), 4)
FROM commits
ORDER BY 1 NULLS LAST
