CREATE INDEX IF NOT EXISTS {user_index} ON {table} (user_id)
WHERE user_id IS NOT NULL
