UPDATE {table} SET version = ?2, user_id = ?3, created_at = ?4,
last_active = ?5, expires_at = ?6, expiry = ?7, data = ?8, label = ?9, format = ?10
WHERE key = ?1 AND version = ?11 AND expires_at > ?12
