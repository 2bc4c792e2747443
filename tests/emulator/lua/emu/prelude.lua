-- Runs for every request in the rewrite phase (http-level rewrite_by_lua_block):
-- count it, then inject an armed fault. A location that sets its own rewrite_by_lua
-- replaces this one and must call require("emu.prelude").run() itself.
local stats = require "emu.stats"
local faults = require "emu.faults"
local inflight = require "emu.inflight"

local M = {}

function M.run()
  stats.count()
  inflight.start()   -- ended by inflight.finish() in the log phase
  return faults.apply()
end

return M
