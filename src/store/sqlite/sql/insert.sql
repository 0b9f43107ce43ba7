INSERT INTO {table}
(key, version, user_id, created_at, last_active, expires_at, expiry, data, label, format)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (key) DO NOTHING
