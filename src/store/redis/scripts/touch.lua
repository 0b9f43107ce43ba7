local cur = redis.call('HMGET', KEYS[1], 'expires', 'ix', 'version')
if not cur[1] or tonumber(cur[1]) <= tonumber(ARGV[4]) then return 0 end
if cur[3] ~= ARGV[6] then return 2 end
local expires, now, grace = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'active', ARGV[2], 'expires', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], int(expires + grace))
if cur[2] then index_add(cur[2], ARGV[1], expires, now, grace) end
return 1
