-- check: referential integrity: every sale's store_code is in stores
-- params:
SELECT count(*) AS observed, 0 AS expected
FROM sales AS s
WHERE NOT EXISTS (SELECT 1 FROM stores AS st WHERE st.store_code = s.store_code)
