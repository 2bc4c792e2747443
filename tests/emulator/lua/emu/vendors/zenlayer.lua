-- Zenlayer ZLS DescribeLogs: POST /api/v2/zls, ZC2-HMAC-SHA256, audit-log records of the
-- last `span_days` (default 80; `record_count` records, default 5000), cursors that are
-- 19-digit integers written into (and read from) the JSON text itself, never through a double.
local common = require "emu.vendors.common"
local fixtures = require "emu.fixtures"
local json = require "emu.json"
local rate = require "emu.vendors.rate"
local sign = require "emu.vendors.sign"

local M = {}

M.MAX_COUNT = 400000                 -- record_count's cap (cursor_text has room for 499999)
-- cursor = BASE + 2*index + 1 with BASE = 1691028715371000000: 19 digits, odd, so never a
-- double; built and read as text (BASE_TEXT .. six digits of 2*index + 1)
local BASE_TEXT = "1691028715371"

local RES_EVENTS = { "create bmi", "rename bmi", "reboot bmi", "delete bmi", "modify security group" }
local RES_TYPES = { "BMI", "BMI", "BMI", "BMI", "SECURITY_GROUP" }
local IPS = { "203.0.113.10", "203.0.113.77", "198.51.100.23", "192.0.2.150" }
local USERS = { "ops@example.com", "api-robot@example.com", "admin@example.com" }

local data, data_key

local FIELDS = { "resUid", "resType", "resEvent", "opsTime", "eventSource", "apiVersion", "opsUser", "clientIP",
                 "request", "response" }

-- a JSON object from a flat list { k1, v1, k2, v2, ... }, keys in that order
local function ordered(kv)
  local parts = {}
  for j = 1, #kv, 2 do parts[#parts + 1] = json.encode(kv[j]) .. ":" .. json.encode(kv[j + 1]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function h(i) return (i * 2654435761 + 12345) % 4294967296 end

local function iso_ms(ms)
  local s = math.floor(ms / 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", ms - s * 1000)
end

-- The data set: index 1 is the newest. Built per worker from the shared epoch and the
-- record_count / span_days settings; each record's JSON text is encoded once, here.
local function records(cfg)
  local d = ngx.shared.vendors
  local epoch = d:get("zl_epoch")
  if not epoch then
    d:add("zl_epoch", math.floor(common.now() * 1000))
    epoch = d:get("zl_epoch")
  end
  local count = math.max(1, math.min(math.floor(tonumber(cfg.record_count) or 5000), M.MAX_COUNT))
  local span_ms = math.max(1, math.floor((tonumber(cfg.span_days) or 80) * 86400 * 1000))
  local key = epoch .. ":" .. count .. ":" .. span_ms
  if data and data_key == key then return data end
  local step = math.max(1, math.floor(span_ms / count))
  local jitter = math.max(1, math.floor(step * 0.7))
  local out = {}
  for i = 1, count do
    local x = h(i)
    local ms = epoch - 60000 - (i - 1) * step - (x % jitter)
    local ev = (x % #RES_EVENTS) + 1
    local uid = string.format("bmi-%08x", (math.floor(x / 7) % 23) * 2654435 % 4294967296)
    local with_body = x % 3 ~= 0
    local rec = {
      resUid = uid, resType = RES_TYPES[ev], resEvent = RES_EVENTS[ev], opsTime = iso_ms(ms),
      eventSource = (x % 2 == 0) and "console" or "api", apiVersion = "2023-08-04",
      opsUser = USERS[(math.floor(x / 11) % #USERS) + 1],
      clientIP = IPS[(math.floor(x / 13) % #IPS) + 1],
      request = with_body and ordered({ "instanceId", uid, "seq", i, "name", "node-" .. (x % 1000) }) or json.null,
      response = with_body and ordered({ "requestId", string.format("%08x", x), "ok", true }) or json.null,
    }
    local kv = {}
    for _, k in ipairs(FIELDS) do kv[#kv + 1] = k; kv[#kv + 1] = rec[k] end
    -- the text is built in a fixed key order: every worker sends the same bytes (a table's
    -- iteration order differs between workers)
    out[i] = { t = math.floor(ms / 1000), rec = rec, text = ordered(kv) }
  end
  data, data_key = out, key
  return data
end

-- the first index whose record is at or before second e (records are newest first)
local function first_at_or_before(recs, e)
  local lo, hi = 1, #recs + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if recs[mid].t <= e then hi = mid else lo = mid + 1 end
  end
  return lo
end

local function cursor_text(index)     -- 19 digits, exact, as text
  local low = 2 * index + 1           -- < 1e6 while index < 499999
  return BASE_TEXT .. string.format("%06d", low)
end

local function cursor_index(text)
  if #text ~= 19 or text:sub(1, 13) ~= BASE_TEXT then return nil end
  local low = tonumber(text:sub(14))
  if low % 2 ~= 1 then return nil end
  return (low - 1) / 2
end

local function err(status, code, message)
  common.count("zenlayer", "errors")
  common.count("zenlayer", "code_" .. code)
  ngx.req.discard_body()
  return json.reply({ requestId = common.uuid(), code = code, message = message }, status)
end

local function verify(cfg, body)
  local hs = common.headers()
  if hs["x-zc-signature-method"] ~= "ZC2-HMAC-SHA256" then
    return 401, "SIGNATURE_FAILURE", "X-ZC-Signature-Method must be ZC2-HMAC-SHA256"
  end
  local ts = hs["x-zc-timestamp"]
  if not ts or not ts:match("^%d+$") then
    return 401, "SIGNATURE_FAILURE", "X-ZC-Timestamp is missing or malformed"
  end
  if math.abs(common.now() - tonumber(ts)) > cfg.max_skew then
    return 401, "SIGNATURE_EXPIRED", "X-ZC-Timestamp is more than 15 minutes off"
  end
  local a, why = sign.parse_zc2(hs.authorization)
  if not a then return 401, "SIGNATURE_FAILURE", why end
  if a.access_key_id ~= fixtures.zenlayer.access_key_id then
    return 401, "INVALID_ACCESS_KEY", "unknown access key id"
  end
  if a.signed_headers ~= "content-type;host" then
    return 401, "SIGNATURE_FAILURE", "SignedHeaders must be content-type;host"
  end
  if not hs["content-type"] or not hs.host then
    return 401, "SIGNATURE_FAILURE", "Content-Type and Host are required"
  end
  local expect = sign.zc2 { password = fixtures.zenlayer.access_key_password, timestamp = ts,
                            content_type = hs["content-type"], host = hs.host, body = body }
  if not sign.equal(expect, a.signature:lower()) then
    return 401, "SIGNATURE_FAILURE", "the request signature does not match"
  end
end

-- The top-level "cursor" of the raw body: nil (absent or []), index, or false (refused).
local function raw_cursor(body)
  local has = body:find('"cursor"%s*:')
  if not has then return nil end
  local arr = body:match('"cursor"%s*:%s*(%b[])')
  if not arr then return false end
  local inner = arr:sub(2, -2)
  if inner:match("^%s*$") then return nil end
  local digits = inner:match("^%s*(%d+)%s*$")
  if not digits then return false end
  if not ngx.shared.vendors:get("zl_cur:" .. digits) then return false end
  return cursor_index(digits) or false
end

function M.handle()
  common.count("zenlayer", "requests")
  if not rate.admit("zenlayer") then
    return err(429, "REQUEST_LIMIT_EXCEEDED", "Request limit exceeded, please try again later.")
  end
  local cfg = common.settings("zenlayer")
  if ngx.req.get_method() ~= "POST" then return err(405, "UNSUPPORTED_OPERATION", "POST only") end
  local body = common.body()
  local status, code, msg = verify(cfg, body)
  if status then
    common.count("zenlayer", "auth_failures")
    return err(status, code, msg)
  end
  if ngx.var.http_x_zc_action ~= "DescribeLogs" then
    return err(400, "INVALID_ACTION", "unsupported X-ZC-Action " .. tostring(ngx.var.http_x_zc_action))
  end
  if ngx.var.http_x_zc_version ~= "2023-08-04" then
    return err(400, "INVALID_VERSION", "unsupported X-ZC-Version " .. tostring(ngx.var.http_x_zc_version))
  end
  local p = json.decode(body)
  if type(p) ~= "table" then return err(400, "INVALID_PARAMETER", "the body is not a JSON object") end
  if p.startTime == nil or p.endTime == nil then
    return err(400, "MISSING_PARAMETER", "startTime and endTime are required")
  end
  local s, e = common.parse_iso(p.startTime), common.parse_iso(p.endTime)
  if not s or not e then return err(400, "INVALID_TIME_FORMAT", "time must be yyyy-MM-ddTHH:mm:ssZ (UTC)") end
  local now = common.now()
  if s >= e then return err(400, "INVALID_PARAMETER__ILLEGAL_TIME", "startTime must be before endTime") end
  if e - s >= 30 * 86400 then
    return err(400, "INVALID_PARAMETER__ILLEGAL_TIME",
      "the interval between start and end time must be less than 30 days")
  end
  if s < now - 90 * 86400 then
    return err(400, "INVALID_PARAMETER__ILLEGAL_TIME", "startTime must be within the last 90 days")
  end
  local size = p.size
  if size == nil then size = 20 end
  if type(size) ~= "number" or size ~= math.floor(size) or size < 1 or size > 1000 then
    return err(400, "INVALID_PARAMETER_VALUE", "size must be an integer from 1 to 1000")
  end
  for _, k in ipairs { "resUid", "resEvent", "clientIP" } do
    if p[k] ~= nil and type(p[k]) ~= "string" then
      return err(400, "INVALID_PARAMETER_VALUE", k .. " must be a string")
    end
  end
  local from = raw_cursor(body)
  if from == false then
    common.count("zenlayer", "bad_cursors")
    return err(400, "INVALID_CURSOR", "cursor is not one this server issued (send it back exactly as received)")
  end
  local recs = records(cfg)
  local function match(r)
    return r.t >= s and r.t <= e and (not p.resUid or r.rec.resUid == p.resUid)
      and (not p.resEvent or r.rec.resEvent == p.resEvent) and (not p.clientIP or r.rec.clientIP == p.clientIP)
  end
  local out, i, nxt = {}, from and from + 1 or first_at_or_before(recs, e), nil
  while i <= #recs do
    local r = recs[i]
    if r.t < s then break end
    if match(r) then
      if #out < size then out[#out + 1] = r.text else nxt = i break end
    end
    i = i + 1
  end
  common.count("zenlayer", "pages")
  common.count("zenlayer", "records", #out)
  local rid = common.uuid()
  local ds = "[" .. table.concat(out, ",") .. "]"
  local cur = ""
  if nxt then
    local text = cursor_text(nxt - 1)
    ngx.shared.vendors:set("zl_cur:" .. text, true, 3600)
    cur = ',"cursor":[' .. text .. "]"
  elseif cfg.last_cursor == "empty" then
    cur = ',"cursor":[]'
  end
  local text = '{"requestId":' .. json.encode(rid) .. ',"response":{"requestId":' .. json.encode(rid)
    .. ',"dataSet":' .. ds .. cur .. "}}"
  return json.reply(text)
end

return M
