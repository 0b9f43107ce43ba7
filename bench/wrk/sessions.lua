-- wrk script: every connection logs in once, then requests /counter with a session.
--
--   wrk -t2 -c64 -d15s --latency -s bench/wrk/sessions.lua http://127.0.0.1:3000 -- 32 GET
--
-- Arguments after `--`: the connections per wrk thread (-c divided by -t; each thread keeps
-- that many sessions) and the method for /counter (GET reads the counter, POST increments
-- it; PLAIN requests `GET /plain` instead, which has no session, and LOGIN only logs in,
-- a new session per request). wrk runs one Lua state per thread and does not say which connection a request goes
-- to, so each thread's first N requests (one per connection) are logins, and the requests
-- after them take the thread's N session cookies in turn: every request carries a valid
-- session, and each session is used by about one connection at a time.

local sessions_per_thread = 32
local method = "GET"
local cookies = {}
local logins_sent = 0
local next_cookie = 0

function init(args)
  sessions_per_thread = tonumber(args[1]) or sessions_per_thread
  method = args[2] or method
end

function request()
  if method == "PLAIN" then
    return wrk.format("GET", "/plain")
  end
  if method == "LOGIN" then
    logins_sent = logins_sent + 1
    return wrk.format("POST", "/login", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, "username=fill" .. tostring(logins_sent))
  end
  -- A connection that (re)connects before any login of its thread has been answered logs
  -- in too: never send a request without a session.
  if logins_sent < sessions_per_thread or #cookies == 0 then
    logins_sent = logins_sent + 1
    local body = "username=loadtest" .. tostring(logins_sent)
    return wrk.format("POST", "/login", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, body)
  end
  next_cookie = next_cookie % #cookies + 1
  return wrk.format(method, "/counter", { ["Cookie"] = cookies[next_cookie] }, nil)
end

function response(status, headers, body)
  local set_cookie = headers["Set-Cookie"] or headers["set-cookie"]
  if method == "LOGIN" or method == "PLAIN" then
    if status >= 400 then
      error("unexpected status " .. status)
    end
    return
  end
  if status == 303 and set_cookie and #cookies < sessions_per_thread then
    cookies[#cookies + 1] = set_cookie:match("^[^;]+")
  elseif status >= 400 then
    -- Stops the run: every request carries a valid session, so this is a server error.
    error("unexpected status " .. status)
  end
end
