-- check: quantity above 0, unit_price and discount not negative, amount_usd has the sign of (1 - discount)
-- params:
SELECT count(*) AS observed, 0 AS expected
FROM sales
WHERE quantity <= 0
   OR unit_price < 0
   OR discount < 0
   OR fx_rate <= 0
   OR (discount <= 1 AND amount_usd < 0)
