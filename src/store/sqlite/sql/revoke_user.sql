DELETE FROM {table} WHERE user_id = ?1 AND key IS NOT ?2
RETURNING expires_at > ?3 AS live
