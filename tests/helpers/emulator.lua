--- Start, drive and stop the local emulator (tests/emulator) from specs.
-- Talks to the emulator with the `curl` command line only, never with loghaul: the
-- thing under test must not be the tool that checks it.
--
--   local emu = require "helpers.emulator"
--   local e = emu.start()   -- { base_url =, http_url =, h2_url =, ca_file =, dir =, files_dir =, pid = }
--   emu.fault{ path = "/echo", status = 429, retry_after = 1, count = 2 }
--   emu.stats()             -- { connections =, requests =, faults_fired =, paths = { [uri] = n } }
--   emu.reset(); emu.stop()
local cjson = require "cjson"
local shell = require "helpers.shell"

local M = {}

local state      -- the table start() returns while the emulator runs

-- a shell command's output (stdout+stderr) and exit status
local q, run = shell.quote, shell.capture

local SCRIPT = shell.root .. "/tests/emulator/emulator"

local function on_close(fn)
  if newproxy then                       -- LuaJIT / 5.1: tables have no __gc, userdata do
    local u = newproxy(true)
    getmetatable(u).__gc = fn
    return u
  end
  return setmetatable({}, { __gc = fn })
end

-- busted loads this module afresh for every spec file (insulation), so `state` starts empty
-- in each: the registry remembers the emulator an earlier file started, which is stopped
-- before the next starts. Left to the garbage collector, 20 files' nginx (and their
-- watchdogs) ran at once to the end of the suite.
local REG = "loghaul.tests.emulator"

--- Start the emulator (once per process and spec file; later calls return the same table).
-- A watchdog given this process's pid stops it if the process dies without stop().
function M.start()
  if state then return state end
  local reg = debug.getregistry()
  if reg[REG] then
    run(q(SCRIPT) .. " stop " .. q(reg[REG]))
    reg[REG] = nil
  end
  local pid = run("echo $PPID"):match("%d+")   -- popen's shell is our child
  local out, rc = run(q(SCRIPT) .. " start --parent " .. pid)
  if rc ~= 0 then error("emulator start failed (" .. rc .. "):\n" .. out, 2) end
  local kv = {}
  for k, v in out:gmatch("([%w_]+)=([^\n]*)") do kv[k] = v end
  state = {
    base_url = kv.BASE_URL, http_url = kv.HTTP_URL, h2_url = kv.H2_URL, ca_file = kv.CA_FILE, dir = kv.DIR,
    files_dir = kv.DIR .. "/www/files", uploads_dir = kv.DIR .. "/uploads", pid = tonumber(kv.PID),
  }
  local dir = state.dir
  reg[REG] = dir
  local execute = os.execute
  -- Kept reachable in the module table until the interpreter closes; its __gc then stops nginx.
  M._sentinel = on_close(function()
    if state and state.dir == dir then execute(q(SCRIPT) .. " stop " .. q(dir) .. " >/dev/null 2>&1") end
  end)
  return state
end

--- Stop the emulator and remove its folder. Safe to call when it is not running.
function M.stop()
  if not state then return end
  local out, rc = run(q(SCRIPT) .. " stop " .. q(state.dir))
  local reg = debug.getregistry()
  if reg[REG] == state.dir then reg[REG] = nil end
  state, M._sentinel = nil, nil
  if rc ~= 0 then error("emulator stop failed:\n" .. out, 2) end
end

--- The running emulator's table, or nil.
function M.info() return state end

local function control(method, path, body)
  local e = state or M.start()
  local cmd = "curl -sS --max-time 30 -X " .. method .. " -w '\\n%{http_code}'"
  if body then cmd = cmd .. " -H 'Content-Type: application/json' --data-binary " .. q(body) end
  local out, rc = run(cmd .. " " .. q(e.http_url .. path))
  local text, code = out:match("^(.*)\n(%d+)$")
  if rc ~= 0 or not code then error("emulator " .. method .. " " .. path .. " failed: " .. out, 3) end
  local v = cjson.decode(text)
  if tonumber(code) >= 400 then error("emulator " .. path .. ": " .. tostring(v.error or text), 3) end
  return v
end

--- Arm a fault switch, or a list of them (see tests/emulator/README.md). Returns the armed specs.
function M.fault(spec)
  return control("POST", "/_emu/fault", cjson.encode(spec)).armed
end

--- The armed faults with `left` and `fired`.
function M.faults()
  local v = control("GET", "/_emu/fault").faults
  return type(v) == "table" and v or {}
end

--- Clear faults and counters.
function M.reset()
  control("POST", "/_emu/reset")
end

--- Counters since the last reset: { connections =, requests =, faults_fired =, paths = {} }.
function M.stats()
  return control("GET", "/_emu/stats")
end

--- Write `size` random bytes as files/<name> (served at /files/<name>).
-- Returns { url =, http_url =, path =, sha256 =, size = }.
function M.make_file(name, size)
  assert(type(name) == "string" and name:match("^[%w%._%-]+$") and not name:match("^%.%.?$"),
         "make_file: a plain file name")
  size = math.floor(assert(tonumber(size), "make_file: size"))
  local e = state or M.start()
  local path = e.files_dir .. "/" .. name
  local cmd = "head -c " .. size .. " /dev/urandom > " .. q(path) .. " && sha256sum " .. q(path)
  local out, rc = run(cmd)
  local sum = out:match("^(%x+)")
  if rc ~= 0 or not sum or #sum ~= 64 then error("make_file failed: " .. out, 2) end
  return { url = e.base_url .. "/files/" .. name, http_url = e.http_url .. "/files/" .. name,
           path = path, sha256 = sum, size = size }
end

return M
