-- analysis: revenue in USD per UTC sale date
-- params:
SELECT sold_on AS day,
       count(*) AS lines,
       count(DISTINCT invoice_id) AS invoices,
       sum(quantity) AS quantity,
       round(sum(amount_usd), 2) AS revenue_usd
FROM sales
GROUP BY sold_on
ORDER BY sold_on
