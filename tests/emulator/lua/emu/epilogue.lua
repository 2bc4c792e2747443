-- Runs for every request in the log phase (the one http-level log_by_lua_block, nginx.conf.in):
-- the counterpart of emu.prelude. nginx allows one log_by_lua* per level, so every log-phase
-- job of the emulator goes here instead of a block of its own (a second http-level block,
-- e.g. in http.d/, makes nginx refuse to start: "directive is duplicate").
local inflight = require "emu.inflight"
local stats = require "emu.stats"

local M = {}

function M.run()
  inflight.finish()
  if stats.count_encoding then stats.count_encoding() end   -- gzip answers (http.d/gzip.conf)
end

return M
