if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local expires, grace, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
write_record(KEYS[1], expires, grace, 5)
if KEYS[2] then index_add(KEYS[2], ARGV[1], expires, now, grace) end
return 1
