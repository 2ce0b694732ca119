CREATE TABLE IF NOT EXISTS products (
    sku VARCHAR NOT NULL PRIMARY KEY,
    name VARCHAR,
    category VARCHAR,
    list_price_usd DECIMAL(24, 6)
)
