-- Requests in flight: started in the rewrite phase (emu.prelude), ended in the log phase
-- (http-level log_by_lua_block), so specs can prove a client never exceeds its concurrency.
-- Exact across workers: every change is an atomic incr in the `emu` shared dict.
--
-- max_inflight is the highest value any start() saw since the last reset. Starts raise the
-- count one at a time, so the values they see form the contiguous range k+1..M (k = in flight
-- at the reset): add("hit:n") succeeds exactly once per value, and the largest hit is M,
-- whatever the order the workers get there in.
--
-- The marker that says "this request was started" is keyed by the request's address, not
-- kept in ngx.ctx: ngx.exec (the archives served through /_vfiles/) drops ngx.ctx, and
-- $request_id is not stable across it, yet the request must still end exactly once.
local base = require "resty.core.base"
local ffi = require "ffi"

local M = {}

-- Which vendor a path belongs to (tests/emulator/conf.d/vendors.conf), for the per-vendor view.
local PREFIXES = {
  { "/v1/", "clouddc" }, { "/v3/auth/", "iam" }, { "/openapi/", "yeastar" },
  { "/api/download/", "yeastar" }, { "/api/v2/zls", "zenlayer" }, { "/rest/cmsapp/", "cms" },
}

local function vendor_of(uri)
  for _, p in ipairs(PREFIXES) do
    if uri:sub(1, #p[1]) == p[1] then return p[2] end
  end
  return nil
end

local function raise(d, scope)
  local n = d:incr("inflight" .. scope, 1, 0)
  d:add("inflight_hit" .. scope .. ":" .. n, true)
end

-- This worker's started requests: request address -> vendor ("" when none). The log phase
-- runs in the same worker as the rewrite phase, on the same ngx_http_request_t.
local started = {}

local function request_key()
  return tonumber(ffi.cast("intptr_t", base.get_request()))
end

--- Count the current request as in flight (rewrite phase; the requests emu.stats counts:
-- not subrequests, not /_emu/*; once per request).
function M.start()
  if ngx.is_subrequest or ngx.var.uri:sub(1, 6) == "/_emu/" then return end
  local key = request_key()
  if started[key] then return end
  local v = vendor_of(ngx.var.uri) or ""
  started[key] = v
  local d = ngx.shared.emu
  raise(d, "")
  if v ~= "" then raise(d, "@" .. v) end
end

--- End the current request if start() counted it (log phase; once per request).
function M.finish()
  local key = request_key()
  local v = started[key]
  if v == nil then return end
  started[key] = nil
  local d = ngx.shared.emu
  d:incr("inflight", -1, 0)
  if v ~= "" then d:incr("inflight@" .. v, -1, 0) end
end

--- Add inflight, max_inflight and by_vendor = { v = { inflight, max_inflight } } to `out`.
function M.into(out)
  local d = ngx.shared.emu
  local max, cur = {}, {}
  for _, k in ipairs(d:get_keys(0)) do
    local scope, n = k:match("^inflight_hit([^:]*):(%d+)$")
    if scope then
      n = tonumber(n)
      if n > (max[scope] or 0) then max[scope] = n end
    else
      scope = k:match("^inflight(@?[%w_]*)$")
      if scope then cur[scope] = d:get(k) end
    end
  end
  out.inflight = cur[""] or 0
  out.max_inflight = max[""] or 0
  local by = {}
  for scope, n in pairs(cur) do
    if scope ~= "" then by[scope:sub(2)] = { inflight = n, max_inflight = max[scope] or 0 } end
  end
  for scope, n in pairs(max) do
    if scope ~= "" and not by[scope:sub(2)] then by[scope:sub(2)] = { inflight = 0, max_inflight = n } end
  end
  out.by_vendor = by
  return out
end

--- Forget the maxima; what is in flight now is the new starting maximum.
function M.reset()
  local d = ngx.shared.emu
  for _, k in ipairs(d:get_keys(0)) do
    if k:match("^inflight_hit") then d:delete(k) end
  end
  for _, k in ipairs(d:get_keys(0)) do
    local scope = k:match("^inflight(@?[%w_]*)$")
    local n = scope and d:get(k) or 0
    if n > 0 then d:add("inflight_hit" .. scope .. ":" .. n, true) end
  end
end

return M
