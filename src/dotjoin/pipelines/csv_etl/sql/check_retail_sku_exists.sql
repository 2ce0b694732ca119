-- check: referential integrity: every sale's sku is in products
-- params:
SELECT count(*) AS observed, 0 AS expected
FROM sales AS s
WHERE NOT EXISTS (SELECT 1 FROM products AS p WHERE p.sku = s.sku)
