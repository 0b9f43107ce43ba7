INSERT INTO {table}
(key, version, user_id, created_at, last_active, expires_at, expiry, data, label, format)
VALUES (?1, {marker_version}, NULL, ?2, ?2, ?3, NULL, X'', NULL, ?4)
