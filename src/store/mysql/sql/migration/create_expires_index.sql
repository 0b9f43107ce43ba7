CREATE INDEX {expires_index} ON {table} (expires_at)
