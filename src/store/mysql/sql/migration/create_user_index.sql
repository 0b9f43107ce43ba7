CREATE INDEX {user_index} ON {table} (user_id)
