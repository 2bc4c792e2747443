-- Shared pieces of the vendor endpoints: settings (switches), counters, clocks and UTC
-- times, small request/answer helpers, and the files served through nginx itself.
-- Everything lives in the `vendors` shared dict so both workers agree.
local body = require "emu.body"
local config = require "emu.config"
local crypto = require "emu.crypto"
local json = require "emu.json"

local M = {}

-- Settings and their defaults (tests/emulator/VENDORS.md, "Switches").
M.DEFAULTS = {
  cms = { max_skew = 900 },
  iam = { token_ttl = 86400, token_size = 3000, error_style = "huawei" },
  clouddc = {
    max_skew = 900, polls = 3, status_style = "Running", percentage = "string",
    fail = false, archive_size = 300000, hostile_filename = false,
  },
  yeastar = {
    access_token_ttl = 1800, refresh_token_ttl = 86400, download_url_ttl = 1800,
    expired_download = "json", hostile_file = false, archive_size = 200000, files = 40,
  },
  zenlayer = { max_skew = 900, last_cursor = "missing", record_count = 5000, span_days = 80 },
}

-- Counters always present in state() (0 until counted); others appear when counted.
M.COUNTERS = {
  cms = { "requests", "uploads", "rejected" },
  iam = { "requests", "logins", "failures" },
  clouddc = { "requests", "exports_created", "polls", "downloads", "auth_failures", "auth_token", "auth_aksk" },
  yeastar = { "requests", "login_attempts", "logins", "refreshes", "deletes", "lists", "download_urls",
              "downloads", "stale_downloads", "errors", "authorized" },
  zenlayer = { "requests", "pages", "records", "errors", "auth_failures", "bad_cursors" },
}

-- Fleet runs (issue 10, VENDORS.md "Fleets"): exports that take time, one archive per fleet
-- server, rate limits. Kept out of the tables above so other settings merge without conflict.
for k, v in pairs { export_seconds = false, export_seconds_spread = 0, fleet_archive_size = 16384 } do
  M.DEFAULTS.clouddc[k] = v
end
for _, v in ipairs { "clouddc", "yeastar", "zenlayer" } do M.DEFAULTS[v].rate = false end

-- Checks of setting values by key: a function returning an error text for a bad value.
local function at_least(min, what)
  return function(v)
    if type(v) ~= "number" or v < min then return what end
  end
end
M.CHECKS = {
  export_seconds = function(v)
    if v ~= false and (type(v) ~= "number" or v < 0) then return "false or seconds >= 0" end
  end,
  export_seconds_spread = at_least(0, "seconds >= 0"),
  fleet_archive_size = function(v)
    if type(v) ~= "number" or v < 1024 or v > 64 * 2^20 then return "bytes, 1024 .. 64 MiB" end
  end,
  rate = function(v)
    if v == false then return nil end
    if type(v) ~= "table" then return "false or { per_second =, burst = }" end
    for k in pairs(v) do
      if k ~= "per_second" and k ~= "burst" then return "unknown field " .. tostring(k) end
    end
    return at_least(1e-3, "per_second must be a number > 0")(v.per_second)
      or (v.burst ~= nil and at_least(1, "burst must be a number >= 1")(v.burst)) or nil
  end,
}

local function dict() return ngx.shared.vendors end

local cache, cache_ver

--- The effective settings of one vendor (defaults overlaid with /_emu/vendors POSTs).
function M.settings(vendor)
  local d = dict()
  local ver = d:get("config_ver") or 0
  if cache_ver ~= ver then
    cache = json.decode(d:get("config") or "{}") or {}
    cache_ver = ver
  end
  local out = {}
  for k, v in pairs(M.DEFAULTS[vendor] or {}) do out[k] = v end
  for k, v in pairs(cache[vendor] or {}) do out[k] = v end
  return out
end

--- Merge `{ vendor = { key = value } }` into the settings; a JSON null restores the default.
function M.configure(t)
  local d = dict()
  local cur = json.decode(d:get("config") or "{}") or {}
  for vendor, kv in pairs(t) do
    if not M.DEFAULTS[vendor] then return nil, "unknown vendor " .. tostring(vendor) end
    if type(kv) ~= "table" then return nil, vendor .. " settings must be an object" end
    cur[vendor] = type(cur[vendor]) == "table" and cur[vendor] or {}
    for k, v in pairs(kv) do
      if M.DEFAULTS[vendor][k] == nil then return nil, "unknown setting " .. vendor .. "." .. tostring(k) end
      local bad = v ~= json.null and M.CHECKS[k] and M.CHECKS[k](v)
      if bad then return nil, vendor .. "." .. k .. ": " .. bad end
      if v == json.null then cur[vendor][k] = nil else cur[vendor][k] = v end
    end
  end
  d:set("config", json.encode(cur))
  d:incr("config_ver", 1, 0)
  return true
end

--- Forget settings, counters, tokens, exports, issued cursors (the data set's clock stays).
function M.reset()
  local d = dict()
  for _, k in ipairs(d:get_keys(0)) do
    if k ~= "zl_epoch" and k ~= "config_ver" then d:delete(k) end
  end
  d:incr("config_ver", 1, 0)
end

--- Counters: count("yeastar", "logins").
function M.count(vendor, what, n)
  dict():incr("n:" .. vendor .. "." .. what, n or 1, 0)
end

--- Keep a small JSON list (the last `max` items) under `key`.
function M.push(key, item, max)
  local d = dict()
  local list = json.decode(d:get(key) or "[]") or {}
  list[#list + 1] = item
  while #list > (max or 50) do table.remove(list, 1) end
  d:set(key, json.encode(list))
end

local function list(key)
  return json.decode(dict():get(key) or "[]") or {}
end

--- All counters as { vendor = { counter = n } } plus recorded lists.
function M.state()
  local d = dict()
  local s = {}
  for v, names in pairs(M.COUNTERS) do
    s[v] = {}
    for _, n in ipairs(names) do s[v][n] = 0 end
  end
  local live = 0
  for _, k in ipairs(d:get_keys(0)) do
    local v, what = k:match("^n:([^.]+)%.(.+)$")
    if v then
      s[v] = s[v] or {}
      s[v][what] = d:get(k)
    elseif k:match("^ys_at:") then
      live = live + 1
    end
  end
  local up = list("cms_uploads")
  s.cms.received = #up > 0 and up or json.empty_array
  s.yeastar.live_access_tokens = live
  local cfg = {}
  for v in pairs(M.DEFAULTS) do cfg[v] = M.settings(v) end
  s.settings = cfg
  return s
end

function M.now()
  ngx.update_time()
  return ngx.now()
end

-- Days since 1970-01-01 of a civil date (proleptic Gregorian), H. Hinnant's algorithm.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- Unix seconds of a UTC civil time, after range checks; nil when impossible.
function M.utc(y, mo, d, h, mi, s)
  if mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or s > 59 then return nil end
  local mdays = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  if y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then mdays[2] = 29 end
  if d > mdays[mo] then return nil end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
end

-- Unix seconds of a UTC time `s` whose six captures in `pattern` are y, mo, d, h, mi, s; or nil.
local function parse_utc(s, pattern)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, se = s:match(pattern)
  if not y then return nil end
  return M.utc(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(se))
end

--- "yyyy-MM-ddTHH:mm:ssZ" -> Unix seconds, or nil (strict).
function M.parse_iso(s)
  return parse_utc(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)Z$")
end

--- "YYYYMMDDTHHMMSSZ" (X-Sdk-Date) -> Unix seconds, or nil.
function M.parse_sdk_date(s)
  return parse_utc(s, "^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
end

function M.iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

--- Random bytes from /dev/urandom.
function M.random(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local s = f:read(n)
  f:close()
  return s
end

function M.random_hex(n)
  return crypto.hex(M.random(n))
end

function M.uuid()
  local h = M.random_hex(16)
  return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) .. "-" .. h:sub(21, 32)
end

--- The whole (small) request body as a string ("" when none).
M.body = body.read_all

--- Request headers as lower-name -> value (repeated headers joined by ",").
function M.headers()
  local h = {}
  for k, v in pairs(ngx.req.get_headers(0, true)) do
    h[k:lower()] = type(v) == "table" and table.concat(v, ",") or v
  end
  return h
end

--- The path of the request as sent (not decoded), without the query.
function M.raw_path()
  return (ngx.var.request_uri or ngx.var.uri):match("^([^?]*)")
end

--- Huawei envelope answer.
function M.huawei(status, code, msg, headers)
  ngx.req.discard_body()
  return json.reply({ error_code = code, error_msg = msg }, status, headers)
end

-- Files served by nginx from <dir>/www/_vfiles/ (made by the start script) through the
-- internal location /_vfiles/.
function M.files_dir()
  return config.dir .. "/www/_vfiles"
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- Write roughly `size` bytes of log-like text (base64 of random bytes) into path.
local function log_text_cmd(path, size, label)
  local raw = math.max(math.floor(size * 3 / 4), 16)
  return string.format("{ printf '%%s\\n' '# %s'; head -c %d /dev/urandom | base64 -w 120 | "
    .. "sed 's/^/%s INFO [main] /'; } > '%s'", label, raw, os.date("!%Y-%m-%dT%H:%M:%SZ"), path)
end

-- Build the archive `name` under files_dir(): each of `files` ({ name, size, label }) is
-- written as generated log text into <top>/, `tar_flags` (czf or cf) packs <top>, and the
-- result is moved into place whole. The work folder goes either way; raises on failure.
local function build_archive(name, top, tar_flags, files)
  local dir = M.files_dir()
  local work = string.format("%s/.work-%d-%s", dir, ngx.worker.pid(), M.random_hex(4))
  local cmds = { "mkdir -p '" .. work .. "/" .. top .. "'" }
  for _, f in ipairs(files) do
    cmds[#cmds + 1] = log_text_cmd(work .. "/" .. top .. "/" .. f[1], f[2], f[3])
  end
  cmds[#cmds + 1] = string.format("tar %s '%s/out' -C '%s' %s", tar_flags, work, work, top)
  cmds[#cmds + 1] = string.format("mv -f '%s/out' '%s/%s'", work, dir, name)
  local r = os.execute(table.concat(cmds, " && "))
  os.execute("rm -rf '" .. work .. "'")
  if r ~= true and r ~= 0 then error("could not make " .. dir .. "/" .. name) end
  return name
end

--- A real .tar.gz of a few generated log files, about `size` bytes, made once per size.
-- Returns its name under /_vfiles/.
function M.tar_gz(prefix, size)
  size = math.max(math.floor(size), 1024)
  local name = string.format("%s-%d.tar.gz", prefix, size)
  if exists(M.files_dir() .. "/" .. name) then return name end
  local files = {}
  for i, n in ipairs { "bmc.log", "os-messages.log", "raid.log" } do
    files[i] = { n, size / 0.77 / 3, prefix .. " " .. i }   -- base64 text gzips to ~77%: aim at `size`
  end
  return build_archive(name, "logs", "czf", files)
end

--- A real .tar holding one generated log file per name, about `size` bytes in all.
function M.tar(name, members, size)
  local files = {}
  for i, m in ipairs(members) do files[i] = { m .. ".log", size / math.max(#members, 1), m } end
  return build_archive(name, "syslog", "cf", files)
end

--- Hand the request to nginx to serve <dir>/www/_vfiles/<name> (Range, sendfile), with the
-- given Content-Type and Content-Disposition (set by file_headers() in that location).
function M.serve(name, content_type, disposition)
  ngx.req.discard_body()
  return ngx.exec("/_vfiles/" .. name, { ct = content_type or "", cd = disposition or "" })
end

--- header_filter of the /_vfiles/ location.
function M.file_headers()
  local st = ngx.status
  if st ~= 200 and st ~= 206 then return end
  local args = ngx.req.get_uri_args()
  if args.ct and args.ct ~= "" then ngx.header["Content-Type"] = args.ct end
  if args.cd and args.cd ~= "" then ngx.header["Content-Disposition"] = args.cd end
end

return M
