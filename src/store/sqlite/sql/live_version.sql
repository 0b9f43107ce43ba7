SELECT version FROM {table} WHERE key = ?1 AND expires_at > ?2
