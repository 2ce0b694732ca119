-- The sales table: one row per (invoice_id, line_no), amounts exact (see cleaning_retail.py).
CREATE TABLE IF NOT EXISTS sales (
    invoice_id VARCHAR NOT NULL,
    line_no BIGINT NOT NULL,
    sold_at TIMESTAMPTZ NOT NULL,
    sold_on DATE NOT NULL,
    store_code VARCHAR NOT NULL,
    sku VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    customer_imputed BOOLEAN NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price DECIMAL(24, 6) NOT NULL,
    currency VARCHAR NOT NULL,
    currency_imputed BOOLEAN NOT NULL,
    discount DECIMAL(20, 8) NOT NULL,
    fx_rate DECIMAL(16, 10) NOT NULL,
    amount_usd DECIMAL(38, 12) NOT NULL,
    content_hash BYTEA NOT NULL,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
)
