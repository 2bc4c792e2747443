-- Starts and drives tests/reliability/hostile_server.lua from specs.
--   local hostile = require "reliability.hostile"
--   local h = hostile.start()     -- { url = "http://127.0.0.1:P", port =, dir = }
--   hostile.mode("flood", "redirect http://127.0.0.2:P/x")   -- answers, in order
--   hostile.requests()            -- { { host =, head = }, ... } since the last clear
local shell = require "helpers.shell"

local M = {}

local q, read, write = shell.quote, shell.read_file, shell.write_file

local state

--- Starts the server (plain lua5.4 and LuaSocket: no LUA_INIT, no sanitizer preload).
function M.start()
  if state then return state end
  local dir = shell.tmpdir("loghaul-hostile")
  local cmd = "echo $$ > " .. q(dir .. "/pid") .. "; exec env -u LUA_INIT -u LD_PRELOAD lua5.4 "
    .. q(shell.root .. "/tests/reliability/hostile_server.lua") .. " " .. q(dir)
    .. " >" .. q(dir .. "/server.out") .. " 2>&1"
  os.execute("sh -c " .. q(cmd) .. " &")
  for _ = 1, 100 do
    if read(dir .. "/port") then break end
    os.execute("sleep 0.05")
  end
  local port = tonumber(read(dir .. "/port") or "")
  assert(port, "hostile server did not start: " .. tostring(read(dir .. "/server.out")))
  state = { dir = dir, port = port, url = "http://127.0.0.1:" .. port, other = "http://127.0.0.2:" .. port }
  return state
end

function M.stop()
  if not state then return end
  write(state.dir .. "/stop", "1")
  local pid = tonumber(read(state.dir .. "/pid") or "")
  if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
  shell.rmdir(state.dir)
  state = nil
end

--- Sets the answers, one per request, in order; the last repeats.
function M.mode(...)
  write(state.dir .. "/mode", table.concat({ ... }, "\n") .. "\n")
  os.remove(state.dir .. "/requests.log")
end

--- The hex of a string (for the raw and name modes).
function M.hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- Request heads received since the last mode(): { { host =, head = } }.
function M.requests()
  local text = read(state.dir .. "/requests.log") or ""
  local out = {}
  for host, head in text:gmatch("\1REQ ([^\n]*)\n([^\1]*)") do out[#out + 1] = { host = host, head = head } end
  return out
end

return M
