CREATE TABLE IF NOT EXISTS {table} (
    key         BYTEA    PRIMARY KEY CHECK (octet_length(key) = 32),
    version     BIGINT   NOT NULL,
    user_id     TEXT,
    created_at  BIGINT   NOT NULL,
    last_active BIGINT   NOT NULL,
    expires_at  BIGINT   NOT NULL,
    expiry      JSONB,
    data        BYTEA    NOT NULL,
    label       TEXT,
    format      SMALLINT NOT NULL DEFAULT 0
)
