local cur = redis.call('HMGET', KEYS[1], 'version', 'expires', 'ix')
if not cur[1] or tonumber(cur[2]) <= tonumber(ARGV[5]) then return 0 end
if cur[1] == MARKER_VERSION then return 3 end
if cur[1] ~= ARGV[4] then return 2 end
local expires, grace, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
write_record(KEYS[1], expires, grace, 6)
if cur[3] and cur[3] ~= KEYS[2] then index_remove(cur[3], ARGV[1], grace) end
if KEYS[2] then index_add(KEYS[2], ARGV[1], expires, now, grace) end
return 1
