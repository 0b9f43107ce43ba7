DELETE FROM {table} WHERE user_id = ? AND NOT (`key` <=> ?)
