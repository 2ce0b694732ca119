-- analysis: commits per UTC day (by committed_at), with merges and lines changed
-- params:
SELECT CAST(committed_at AT TIME ZONE 'UTC' AS DATE) AS day,
       count(*) AS commits,
       sum(CASE WHEN is_merge THEN 1 ELSE 0 END) AS merges,
       sum(additions) AS additions,
       sum(deletions) AS deletions
FROM commits
GROUP BY 1
ORDER BY 1
