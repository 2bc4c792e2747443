--- Shared setup of the vendor integration specs (tests/vendors/*_emulator_spec.lua): the
-- emulator over TLS, client options with fast retries, counters read from the emulator,
-- and a wall clock. Only the emulator and the command line (sha256sum, ls) judge results.
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local util = require "helpers.util"
local vendors = require "helpers.vendors"

local M = {}

M.emu, M.shell, M.util, M.vendors = emu, shell, util, vendors
M.F = vendors.fixtures

--- Starts the emulator (once per process) and returns its table.
function M.start()
  M.e = emu.start()
  return M.e
end

--- Clears generic faults and counters and the vendor state (settings, tokens, counters).
function M.reset()
  emu.reset()
  vendors.reset()
end

--- Client options pointing at the emulator over TLS, with fast retries, merged with `extra`.
-- @tparam[opt] table extra
-- @treturn table
function M.opts(extra)
  local e = M.e or M.start()
  local o = { base_url = e.base_url, ca_file = e.ca_file, log = false,
              retry = { base_delay = 0.01, max_delay = 0.05 } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

--- One vendor's counters (`vendors.state()[name]`), missing counters read as 0.
-- @tparam string name
-- @treturn table
function M.counters(name)
  local t = vendors.state()[name] or {}
  return setmetatable(t, { __index = function() return 0 end })
end

--- Requests the emulator saw on paths starting with `prefix` (generic counters, faults included).
-- @tparam string prefix
-- @treturn number
function M.path_requests(prefix)
  local n = 0
  for uri, c in pairs(emu.stats().paths or {}) do
    if uri:sub(1, #prefix) == prefix then n = n + c end
  end
  return n
end

--- Wall clock with sub-second resolution when LuaSocket is there (only for elapsed checks).
function M.clock()
  return require("loghaul.retry").now()
end

--- Sleeps (seconds).
function M.sleep(s)
  require("loghaul.retry").sleep(s)
end

--- Reads a whole file; raises when it cannot.
function M.read(path)
  return (assert(shell.read_file(path), "cannot read " .. path))
end

--- Writes a whole file.
M.write = shell.write_file

--- UTC `yyyy-MM-ddTHH:mm:ssZ` of Unix seconds.
function M.utc(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

--- A list of events recorded by an `on_progress` callback: returns the list and the callback.
function M.progress_log()
  local events = {}
  return events, function(ev)
    events[#events + 1] = { phase = ev.phase, done = ev.done, total = ev.total, percent = ev.percent }
  end
end

M.tmpdir, M.rmdir, M.sha256sum, M.size, M.ls = util.tmpdir, util.rmdir, util.sha256sum, util.size, util.ls

return M
