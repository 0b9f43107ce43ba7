CREATE TABLE IF NOT EXISTS {table} (
    key         BLOB    NOT NULL PRIMARY KEY CHECK (length(key) = 32),
    version     INTEGER NOT NULL,
    user_id     TEXT,
    created_at  INTEGER NOT NULL,
    last_active INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    expiry      TEXT,
    data        BLOB    NOT NULL,
    label       TEXT,
    format      INTEGER NOT NULL DEFAULT 0
) STRICT
