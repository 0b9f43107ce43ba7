WITH revoked AS (
    DELETE FROM {table} WHERE user_id = $1 AND key IS DISTINCT FROM $2
    RETURNING expires_at)
SELECT count(*) FILTER (WHERE expires_at > $3) FROM revoked
