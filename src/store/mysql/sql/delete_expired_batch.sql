DELETE FROM {table} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?
