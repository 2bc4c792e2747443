-- /_emu/*: the control endpoints the test helper drives. Never counted, never faulted.
--   GET  /_emu/ping    {"ok":true}
--   GET  /_emu/stats   {"connections":N,"requests":N,"faults_fired":N,"compressed":N,"paths":{...}}
--   POST /_emu/reset   clear counters and faults
--   POST /_emu/fault   arm a fault spec or a list of them (see emu.faults)
--   GET  /_emu/fault   the armed specs with left/fired; DELETE clears them
-- (ping also has "now", the server's clock; stats also has emu.inflight's counts)
local body = require "emu.body"
local faults = require "emu.faults"
local inflight = require "emu.inflight"
local json = require "emu.json"
local stats = require "emu.stats"

local function read_json()
  local s = body.read_all()
  if s == "" then return nil, "empty body" end
  local v, err = json.decode(s)
  if v == nil then return nil, "bad JSON: " .. tostring(err) end
  return v
end

return function()
  local what = ngx.var.uri:match("^/_emu/(.*)$")
  local method = ngx.req.get_method()
  if what == "ping" then
    ngx.update_time()
    return json.reply { ok = true, now = ngx.now() }   -- now: the server's clock, for timing specs
  elseif what == "stats" then
    return json.reply(inflight.into(stats.get()))
  elseif what == "reset" and method == "POST" then
    ngx.req.discard_body()
    faults.clear()
    stats.reset()
    inflight.reset()
    return json.reply { ok = true }
  elseif what == "fault" then
    if method == "POST" then
      local spec, err = read_json()
      local armed
      if spec then armed, err = faults.arm(spec) end
      if not armed then return json.reply({ error = err }, 400) end
      return json.reply { ok = true, armed = armed }
    elseif method == "DELETE" then
      faults.clear()
      return json.reply { ok = true }
    else
      local list = faults.list()
      return json.reply { faults = #list > 0 and list or json.empty_array }
    end
  end
  ngx.req.discard_body()
  return json.reply({ error = "unknown control endpoint", path = ngx.var.uri }, 404)
end
