-- check: every sale's currency has a rate in fx_rates on or before its UTC sale date, the one it used
-- params:
SELECT count(*) AS observed, 0 AS expected
FROM sales AS s
WHERE NOT EXISTS (
    SELECT 1 FROM fx_rates AS f
    WHERE f.currency = s.currency
      AND f.rate_to_usd = s.fx_rate
      AND f.rate_date = (SELECT max(g.rate_date) FROM fx_rates AS g
                         WHERE g.currency = s.currency AND g.rate_date <= s.sold_on)
)
