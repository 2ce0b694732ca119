-- Current inventory: every SKU on hand now, its quantity, price and stock value, from the current state.
-- tables: inventory
SELECT sku, name, quantity, price, CAST(quantity * price AS decimal(18, 2)) AS stock_value
FROM inventory
ORDER BY sku
