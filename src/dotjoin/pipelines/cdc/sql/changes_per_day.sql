-- Changes per day (UTC, of the source commit) and table: new versions by operation, from the histories
-- (a repeated snapshot read of an unchanged row is not a change).
-- tables: users, inventory, inventory_movements
WITH versions AS (
    SELECT 'users' AS source_table, op, valid_from FROM users_history
    UNION ALL SELECT 'inventory', op, valid_from FROM inventory_history
    UNION ALL SELECT 'inventory_movements', op, valid_from FROM inventory_movements_history
)
SELECT CAST(valid_from AT TIME ZONE 'UTC' AS date) AS day, source_table,
       CAST(sum(CASE WHEN op = 'r' THEN 1 ELSE 0 END) AS bigint) AS snapshot_reads,
       CAST(sum(CASE WHEN op = 'c' THEN 1 ELSE 0 END) AS bigint) AS inserts,
       CAST(sum(CASE WHEN op = 'u' THEN 1 ELSE 0 END) AS bigint) AS updates,
       CAST(sum(CASE WHEN op = 'd' THEN 1 ELSE 0 END) AS bigint) AS deletes,
       CAST(count(*) AS bigint) AS versions
FROM versions
GROUP BY 1, 2
ORDER BY 1, 2
