DELETE FROM {table} WHERE key IN (
    SELECT key FROM {table} WHERE expires_at <= ?1 LIMIT ?2)
