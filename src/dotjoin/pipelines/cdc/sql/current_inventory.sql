-- Current inventory per warehouse: SKUs, units on hand and stock value, from the current state.
-- tables: inventory
SELECT warehouse,
       CAST(count(*) AS bigint) AS skus,
       CAST(sum(quantity) AS bigint) AS units,
       CAST(sum(quantity * price) AS decimal(18, 2)) AS stock_value
FROM inventory
GROUP BY warehouse
ORDER BY warehouse
