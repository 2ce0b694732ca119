-- analysis: revenue in USD per store, with its country and local currency
-- params:
SELECT s.store_code,
       st.name AS store,
       st.country,
       st.currency,
       count(*) AS lines,
       round(sum(s.amount_usd), 2) AS revenue_usd
FROM sales AS s
JOIN stores AS st ON st.store_code = s.store_code
GROUP BY s.store_code, st.name, st.country, st.currency
ORDER BY revenue_usd DESC, s.store_code
