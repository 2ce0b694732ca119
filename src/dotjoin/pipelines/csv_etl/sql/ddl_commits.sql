-- The commits table: one row per (repo, sha), normalised (see cleaning_commits.py).
CREATE TABLE IF NOT EXISTS commits (
    repo VARCHAR NOT NULL,
    sha VARCHAR NOT NULL,
    author_name VARCHAR,
    author_email VARCHAR,
    authored_at TIMESTAMPTZ NOT NULL,
    committer_name VARCHAR,
    committed_at TIMESTAMPTZ NOT NULL,
    message VARCHAR,
    parents VARCHAR,
    parent_count INTEGER NOT NULL,
    is_merge BOOLEAN NOT NULL,
    additions BIGINT NOT NULL,
    deletions BIGINT NOT NULL,
    content_hash BYTEA NOT NULL,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repo, sha)
)
