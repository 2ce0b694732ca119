-- analysis: revenue in USD per product category
-- params:
SELECT p.category,
       count(*) AS lines,
       sum(s.quantity) AS quantity,
       round(sum(s.amount_usd), 2) AS revenue_usd
FROM sales AS s
JOIN products AS p ON p.sku = s.sku
GROUP BY p.category
ORDER BY revenue_usd DESC, p.category
