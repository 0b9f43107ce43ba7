SELECT key, created_at, last_active, expires_at, label FROM {table}
WHERE user_id = ?1 AND expires_at > ?2 ORDER BY created_at, key
