-- Rate limits to throttle against: one token bucket per vendor (setting `rate = { per_second,
-- burst }`), shared by both workers. The bucket (tokens, last refill, settings version) lives
-- in the `vendors` dict; a tiny add()-based lock makes each read-refill-take-write atomic,
-- since a shared dict has no compare-and-swap. Changing any setting refills the buckets.
--
-- Accepted requests are stamped (server clock) so specs can check the rate a client kept;
-- refused ones count as `throttled` and answer the vendor's own throttling answer (the
-- handlers call admit() first and answer from there).
local common = require "emu.vendors.common"
local json = require "emu.json"

local M = {}

M.VENDORS = { "clouddc", "yeastar", "zenlayer" }

local function lock(d, key)
  for _ = 1, 5000 do
    if d:add(key, true, 0.1) then return true end   -- expires: a crashed holder frees it
    ngx.sleep(0.001)
  end
  return false
end

--- true when `vendor` has no rate set or a token was free (taken now); false when throttled.
function M.admit(vendor)
  local r = common.settings(vendor).rate
  if type(r) ~= "table" then return true end
  local per = tonumber(r.per_second) or 1
  local burst = tonumber(r.burst) or math.max(per, 1)
  local d = ngx.shared.vendors
  local lk = "rl_lock:" .. vendor
  local locked = lock(d, lk)
  local now = common.now()
  local ver = d:get("config_ver") or 0
  local sv, st, sl = (d:get("rl:" .. vendor) or ""):match("^(%S+) (%S+) (%S+)$")
  local tokens, last = burst, now
  if tonumber(sv) == ver then tokens, last = tonumber(st), tonumber(sl) end
  tokens = math.min(burst, tokens + math.max(now - last, 0) * per)
  local ok = tokens >= 1
  if ok then tokens = tokens - 1 end
  d:set("rl:" .. vendor, string.format("%d %.17g %.17g", ver, tokens, now))
  if locked then d:delete(lk) end
  if ok then
    local i = d:incr("rl_n:" .. vendor, 1, 0)
    d:set("rl_t:" .. vendor .. ":" .. i, now)
  else
    common.count(vendor, "throttled")
  end
  return ok
end

--- state(): per rate-limited vendor `throttled` (0 until counted) and `accepted_times`, the
-- server times (ngx.now(), ascending) of the requests its bucket let through since the reset.
function M.into(s)
  local d = ngx.shared.vendors
  local times = {}
  for _, k in ipairs(d:get_keys(0)) do
    local v = k:match("^rl_t:([^:]+):")
    if v then
      times[v] = times[v] or {}
      times[v][#times[v] + 1] = d:get(k)
    end
  end
  for _, v in ipairs(M.VENDORS) do
    s[v] = s[v] or {}
    s[v].throttled = s[v].throttled or 0
    local t = times[v] or {}
    table.sort(t)
    s[v].accepted_times = #t > 0 and t or json.empty_array
  end
  return s
end

return M
