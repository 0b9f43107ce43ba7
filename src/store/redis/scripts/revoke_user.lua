local now, grace, page = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local members = redis.call('ZRANGE', KEYS[1], 0, page - 1)
local revoked = 0
local removed = 0
for _, member in ipairs(members) do
  local key = ARGV[1] .. member
  if owner(key) ~= KEYS[1] then
    redis.call('ZREM', KEYS[1], member)
    removed = removed + 1
  elseif member ~= ARGV[2] then
    local expires = tonumber(redis.call('HGET', key, 'expires'))
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], member)
    removed = removed + 1
    if expires and expires > now then revoked = revoked + 1 end
  end
end
if removed > 0 then refresh_index(KEYS[1], grace) end
if #members == page then return {revoked, 1} end
return {revoked, 0}
