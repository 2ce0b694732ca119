-- analysis: repositories with the most commits, with distinct authors and merge share
-- params: limit
SELECT repo,
       count(*) AS commits,
       count(DISTINCT author_email) AS authors,
       round(CAST(avg(CASE WHEN is_merge THEN 1.0 ELSE 0.0 END) AS NUMERIC), 4) AS merge_ratio,
       sum(additions) AS additions,
       sum(deletions) AS deletions
FROM commits
GROUP BY repo
ORDER BY commits DESC, repo
LIMIT $1
