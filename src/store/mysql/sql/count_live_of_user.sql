SELECT COUNT(*) FROM {table}
WHERE user_id = ? AND NOT (`key` <=> ?) AND expires_at > ? FOR UPDATE
