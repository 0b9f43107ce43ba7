local now, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local first, page = tonumber(ARGV[4]), tonumber(ARGV[5])
local members = redis.call('ZRANGE', KEYS[1], first, first + page - 1)
local listed = {}
local kept = 0
for _, member in ipairs(members) do
  local key = ARGV[1] .. member
  if owner(key) ~= KEYS[1] then
    redis.call('ZREM', KEYS[1], member)
  else
    kept = kept + 1
    local cur = redis.call('HMGET', key, 'created', 'active', 'expires', 'label')
    local expires = tonumber(cur[3])
    if not expires or expires > now then
      listed[#listed + 1] = member
      listed[#listed + 1] = cur[1] or ''
      listed[#listed + 1] = cur[2] or ''
      listed[#listed + 1] = cur[3] or ''
      -- A nil would end the reply's array: a label comes behind '=', none as ''.
      listed[#listed + 1] = cur[4] and ('=' .. cur[4]) or ''
    end
  end
end
if kept < #members then refresh_index(KEYS[1], grace) end
return {#members, kept, listed}
