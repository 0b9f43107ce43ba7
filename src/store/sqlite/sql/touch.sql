UPDATE {table} SET last_active = ?2, expires_at = ?3
WHERE key = ?1 AND expires_at > ?4 AND version = ?5
