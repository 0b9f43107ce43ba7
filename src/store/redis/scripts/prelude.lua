local function int(n) return string.format('%d', n) end
local function refresh_index(ukey, grace)
  local top = redis.call('ZRANGE', ukey, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', ukey, int(tonumber(top[2]) + grace))
  end
end
-- Drops at most INDEX_PRUNE_BATCH members scored (with their session's deadline) at or before
-- now - grace: their sessions expired longer than the grace ago, so Redis has dropped the
-- session keys and nothing will remove the members otherwise.
local function prune_index(ukey, now, grace)
  local stale = redis.call('ZRANGEBYSCORE', ukey, '-inf', int(now - grace),
    'LIMIT', 0, INDEX_PRUNE_BATCH)
  if #stale > 0 then redis.call('ZREM', ukey, unpack(stale)) end
end
local function index_add(ukey, member, expires, now, grace)
  redis.call('ZADD', ukey, int(expires), member)
  prune_index(ukey, now, grace)
  refresh_index(ukey, grace)
end
local function index_remove(ukey, member, grace)
  if redis.call('ZREM', ukey, member) == 1 then refresh_index(ukey, grace) end
end
local function write_record(key, expires, grace, first_field)
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(ARGV, first_field))
  redis.call('PEXPIREAT', key, int(expires + grace))
end
local function owner(key)
  if redis.call('TYPE', key)['ok'] ~= 'hash' then return false end
  return redis.call('HGET', key, 'ix')
end
