-- Request and connection counters, so specs can prove keep-alive reuse and retry counts.
-- A connection is counted once, when its first counted request arrives: the connection
-- serial number (ngx.var.connection) is shared by all workers, so a shared-dict key per
-- serial tells a new connection from a reused one. Those keys survive reset on purpose:
-- a connection kept alive across a reset is not "new" afterwards.
local M = {}

local function counted()
  return not ngx.is_subrequest and ngx.var.uri:sub(1, 6) ~= "/_emu/"
end

--- Count the current request (called by emu.prelude in the rewrite phase, before any answer).
function M.count()
  if ngx.ctx.emu_counted or not counted() then return end
  ngx.ctx.emu_counted = true
  local d = ngx.shared.emu
  d:incr("requests", 1, 0)
  d:incr("path:" .. ngx.var.uri, 1, 0)
  if ngx.shared.emu_conns:add(ngx.var.connection, true, 3600) then
    d:incr("connections", 1, 0)
  end
end

--- Count an answer sent gzip- or deflate-encoded (the log phase, from the header sent).
function M.count_encoding()
  if not ngx.ctx.emu_counted then return end
  local ce = ngx.var.sent_http_content_encoding
  if ce == "gzip" or ce == "deflate" then ngx.shared.emu:incr("compressed", 1, 0) end
end

function M.get()
  local d = ngx.shared.emu
  local paths = {}
  for _, k in ipairs(d:get_keys(0)) do
    local p = k:match("^path:(.*)$")
    if p then paths[p] = d:get(k) end
  end
  return {
    connections = d:get("connections") or 0,
    requests = d:get("requests") or 0,
    faults_fired = d:get("faults_fired") or 0,
    compressed = d:get("compressed") or 0,
    paths = paths,
  }
end

function M.reset()
  local d = ngx.shared.emu
  for _, k in ipairs(d:get_keys(0)) do
    if k:match("^path:") then d:delete(k) end
  end
  d:set("requests", 0)
  d:set("connections", 0)
  d:set("faults_fired", 0)
  d:set("compressed", 0)
end

return M
