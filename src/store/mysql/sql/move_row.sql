UPDATE {table} SET `key` = ?, version = ?, user_id = ?, created_at = ?, last_active = ?,
expires_at = ?, expiry = ?, data = ?, label = ?, format = ?
WHERE `key` = ? AND version = ? AND expires_at > ? AND version <> {marker_version}
