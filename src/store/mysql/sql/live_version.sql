SELECT version FROM {table} WHERE `key` = ? AND expires_at > ?
