-- check: no two rows of sales share a natural key (invoice_id, line_no)
-- params:
SELECT count(*) AS observed, 0 AS expected
FROM (SELECT invoice_id, line_no FROM sales GROUP BY invoice_id, line_no HAVING count(*) > 1) AS repeated
