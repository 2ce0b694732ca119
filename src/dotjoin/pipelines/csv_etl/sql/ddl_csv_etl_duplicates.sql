-- Every record counted as a duplicate: where it is, and the line of the first record with its key.
CREATE TABLE IF NOT EXISTS csv_etl_duplicates (
    dataset VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    line BIGINT NOT NULL,
    duplicate_of_line BIGINT NOT NULL,
    natural_key VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (dataset, source, line)
)
