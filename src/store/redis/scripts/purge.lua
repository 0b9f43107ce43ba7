local now, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
local purged = 0
for _, key in ipairs(KEYS) do
  if redis.call('TYPE', key)['ok'] == 'hash' then
    local cur = redis.call('HMGET', key, 'expires', 'ix')
    local expires = tonumber(cur[1])
    if expires and expires <= now then
      redis.call('DEL', key)
      if cur[2] then index_remove(cur[2], string.sub(key, -64), grace) end
      purged = purged + 1
    end
  end
end
return purged
