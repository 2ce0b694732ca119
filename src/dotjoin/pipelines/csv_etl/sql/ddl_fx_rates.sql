CREATE TABLE IF NOT EXISTS fx_rates (
    rate_date DATE NOT NULL,
    currency VARCHAR NOT NULL,
    rate_to_usd DECIMAL(16, 10) NOT NULL,
    PRIMARY KEY (rate_date, currency)
)
