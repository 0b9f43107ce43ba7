SELECT `key`, created_at, last_active, expires_at, label FROM {table}
WHERE user_id = ? AND expires_at > ? ORDER BY created_at, `key`
