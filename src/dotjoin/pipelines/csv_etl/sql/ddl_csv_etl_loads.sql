-- Load bookkeeping: the last load of each source file, written in the same transaction as its rows.
CREATE TABLE IF NOT EXISTS csv_etl_loads (
    dataset VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    records BIGINT NOT NULL,
    output_rows BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    attributed_elsewhere BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (dataset, source)
)
