SELECT version, user_id, created_at, last_active, expires_at, expiry, data, label, format
FROM {table} WHERE `key` = ?
