local cur = redis.call('HMGET', KEYS[1], 'version', 'expires', 'ix')
if not cur[1] or tonumber(cur[2]) <= tonumber(ARGV[6]) then return 0 end
if cur[1] == MARKER_VERSION then return 4 end
if cur[1] ~= ARGV[5] then return 2 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 3 end
local expires, grace, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
-- The old key keeps only a rotation marker, which Redis drops when it expires.
local marker = int(now + MARKER_LIFETIME_MS)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', MARKER_VERSION, 'expires', marker)
redis.call('PEXPIREAT', KEYS[1], marker)
if cur[3] then index_remove(cur[3], ARGV[1], grace) end
write_record(KEYS[2], expires, grace, 7)
if KEYS[3] then index_add(KEYS[3], ARGV[2], expires, now, grace) end
return 1
