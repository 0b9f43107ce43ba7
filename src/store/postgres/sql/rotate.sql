WITH moved AS (
    UPDATE {table} SET key = $1, version = $2, user_id = $3, created_at = $4,
    last_active = $5, expires_at = $6, expiry = $7::jsonb, data = $8, label = $9,
    format = $10
    WHERE key = $11 AND version = $12 AND expires_at > $13
    AND version <> {marker_version} RETURNING 1)
INSERT INTO {table}
(key, version, user_id, created_at, last_active, expires_at, expiry, data, label, format)
SELECT $11, {marker_version}, NULL, $13, $13, $14, NULL, ''::bytea, NULL, $10
FROM moved
