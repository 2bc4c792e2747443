--- Drive the emulator's vendor endpoints (tests/emulator/VENDORS.md) from specs: the fixed
-- test credentials, the switches, and the counters. Uses the curl command line only.
--
--   local vendors = require "helpers.vendors"
--   vendors.fixtures.cms.access_key
--   vendors.configure{ yeastar = { access_token_ttl = 2 }, clouddc = { polls = 5 } }
--   vendors.state().yeastar.logins
--   vendors.reset()
--   vendors.server_ids(300)   -- CloudDC fleet servers "srv-0001" .. "srv-0300"
local cjson = require "cjson"
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local util = require "helpers.util"

local M = {}

local q, run = shell.quote, shell.capture

--- The same table the emulator uses (tests/emulator/lua/emu/fixtures.lua).
M.fixtures = dofile(shell.root .. "/tests/emulator/lua/emu/fixtures.lua")

--- CloudDC fleets (tests/emulator/lua/emu/vendors/fleet.lua, the emulator's own file):
-- fleet.sn(id), fleet.export_seconds(id, settings), fleet.fraction(id).
M.fleet = dofile(shell.root .. "/tests/emulator/lua/emu/vendors/fleet.lua")

--- The ids of the first `n` CloudDC fleet servers: { "srv-0001", ..., "srv-000n" } (n <= 9999).
-- Each is a known server with its own serial number (fleet.sn) and its own archive.
function M.server_ids(n)
  assert(type(n) == "number" and n >= 0 and n <= M.fleet.MAX, "server_ids: n in 0 .. 9999")
  local out = {}
  for i = 1, n do out[i] = M.fleet.id(i) end
  return out
end

--- The most of `times` (ascending seconds, e.g. state().clouddc.accepted_times) that fall in
-- any window [t, t + seconds): a token bucket { per_second = r, burst = b } allows at most
-- b + r * seconds (plus one for the token refilled at the window's very edge).
function M.max_in_window(times, seconds)
  local best, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] >= seconds do j = j + 1 end
    if i - j + 1 > best then best = i - j + 1 end
  end
  return best
end

local function control(method, body)
  local e = emu.info() or emu.start()
  local cmd = "curl -sS --max-time 30 -X " .. method .. " -w '\\n%{http_code}'"
  if body then cmd = cmd .. " -H 'Content-Type: application/json' --data-binary " .. q(body) end
  local out, rc = run(cmd .. " " .. q(e.http_url .. "/_emu/vendors"))
  local text, code = out:match("^(.*)\n(%d+)$")
  if rc ~= 0 or not code then error("emulator " .. method .. " /_emu/vendors failed: " .. out, 3) end
  local v = cjson.decode(text)
  if tonumber(code) >= 400 then error("emulator /_emu/vendors: " .. tostring(v.error or text), 3) end
  return v
end

--- Merge settings (switches) into the vendor endpoints; `reset = true` forgets everything first.
-- Returns the effective settings of every vendor.
function M.configure(settings)
  return control("POST", cjson.encode(settings or {})).settings
end

--- Counters and recorded uploads: { cms = { requests, uploads, received = { {name,size,sha256} } },
-- iam = { logins, ... },
-- clouddc = { exports_created, polls, downloads, ... }, yeastar = { logins, refreshes, ... },
-- zenlayer = { pages, records, ... }, settings = {...} }.
function M.state()
  return control("GET")
end

--- Forget settings, counters, tokens, exports and issued cursors.
function M.reset()
  control("DELETE")
end

--- Lets CloudDC's export_and_download poll faster than its 1 s floor, so specs against
-- the emulator's sub-second exports stay short. Returns the function that restores it.
-- @treturn function restore
function M.fast_export_polls()
  local clouddc = require "loghaul.clouddc"
  local saved = clouddc.min_poll_interval
  clouddc.min_poll_interval = 0
  return function() clouddc.min_poll_interval = saved end
end

--- The setup of a spec file whose clients run whole vendor chains against the emulator:
-- fast CloudDC polls (see fast_export_polls), the emulator started with its faults, counters
-- and vendor state cleared, and a fresh temporary folder.
-- @treturn table the emulator's table (helpers.emulator start())
-- @treturn string the folder
-- @treturn function for teardown: restores the poll floor, clears the emulator again, removes the folder
function M.open_suite()
  local restore_polls = M.fast_export_polls()
  local e = emu.start()
  emu.reset()
  M.reset()
  local dir = util.tmpdir()
  return e, dir, function()
    restore_polls()
    emu.reset()
    M.reset()
    util.rmdir(dir)
  end
end

return M
