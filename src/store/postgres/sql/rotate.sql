WITH moved AS (
    UPDATE {table} SET key = $1, version = $2, user_id = $3, created_at = $4,
    last_active = $5, expires_at = $6, expiry = $7::jsonb, data = $8
    WHERE key = $9 AND version = $10 AND expires_at > $11
    AND version <> {marker_version} RETURNING 1)
INSERT INTO {table}
(key, version, user_id, created_at, last_active, expires_at, expiry, data)
SELECT $9, {marker_version}, NULL, $11, $11, $12, NULL, ''::bytea
FROM moved
