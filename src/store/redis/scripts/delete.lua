local ix = owner(KEYS[1])
local deleted = redis.call('DEL', KEYS[1])
if ix then index_remove(ix, ARGV[1], tonumber(ARGV[2])) end
return deleted
