UPDATE {table} SET version = $2, user_id = $3, created_at = $4,
last_active = $5, expires_at = $6, expiry = $7::jsonb, data = $8
WHERE key = $1 AND version = $9 AND expires_at > $10
