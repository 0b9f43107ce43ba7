DELETE FROM {table} WHERE `key` = ?
