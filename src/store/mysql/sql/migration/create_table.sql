CREATE TABLE IF NOT EXISTS {table} (
    `key`       BINARY(32) NOT NULL PRIMARY KEY,
    version     BIGINT     NOT NULL,
    user_id     VARBINARY(1024),
    created_at  BIGINT     NOT NULL,
    last_active BIGINT     NOT NULL,
    expires_at  BIGINT     NOT NULL,
    expiry      TEXT,
    data        LONGBLOB   NOT NULL,
    label       TEXT,
    format      SMALLINT   NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
