UPDATE {table} SET last_active = ?, expires_at = ?
WHERE `key` = ? AND expires_at > ? AND version = ?
