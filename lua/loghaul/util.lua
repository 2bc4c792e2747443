--- Small pure helpers shared by the Lua layers: URL pieces, query strings, UTC times.
-- @module loghaul.util
local M = {}

local floor = math.floor

--- Percent-encodes every byte except the RFC 3986 unreserved set (A-Z a-z 0-9 - . _ ~).
-- @tparam string s
-- @treturn string
function M.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

--- Encodes a query table as `k=v&...`, keys sorted, a list value repeating its key.
-- @tparam table q name → string/number/boolean, or a list of them
-- @treturn string the query without the leading `?` ("" when empty)
function M.encode_query(q)
  if not q then return "" end
  local keys = {}
  for k in pairs(q) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = q[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do out[#out + 1] = M.urlencode(k) .. "=" .. M.urlencode(tostring(x)) end
    else
      out[#out + 1] = M.urlencode(k) .. "=" .. M.urlencode(tostring(v))
    end
  end
  return table.concat(out, "&")
end

--- Appends an encoded query string to a URL.
-- @tparam string url
-- @tparam string query already encoded ("" adds nothing)
-- @treturn string
function M.add_query(url, query)
  if not query or query == "" then return url end
  return url .. (url:find("?", 1, true) and "&" or "?") .. query
end

--- Splits `scheme://host[:port][/path]`.
-- @tparam string url
-- @treturn table|nil `{ scheme, host, port (number or nil), path }`, or nil when not a URL
function M.parse_url(url)
  if type(url) ~= "string" then return nil end
  local scheme, authority, path = url:match("^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  if authority:find("@", 1, true) then return nil end -- no credentials in URLs
  local host, port = authority:match("^(%[[%x:.]+%]):?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host or host == "" then return nil end
  return { scheme = scheme:lower(), host = host, port = port ~= "" and tonumber(port) or nil, path = path }
end

local default_port = { http = 80, https = 443 }

--- The Host header a client sends for a URL (`host` or `host:port` when the port is not the default).
-- @tparam string url
-- @treturn string|nil
function M.host_header(url)
  local u = M.parse_url(url)
  if not u then return nil end
  if u.port and u.port ~= default_port[u.scheme] then return u.host .. ":" .. u.port end
  return u.host
end

--- Normalises a base URL option: checks `scheme://host[:port]`, drops a trailing `/`.
-- Raises (at the caller's line) when it is not an http(s) URL, or when it has a path: the
-- client adds the API's own paths, and a path here would double them.
-- @tparam string url
-- @tparam string what the option's name, for the message
-- @tparam[opt] string adds the API's path the client adds (`/rest/cmsapp/...`), for the message
-- @treturn string
function M.base_url(url, what, adds)
  local u = M.parse_url(url)
  if not u or (u.scheme ~= "https" and u.scheme ~= "http") then
    M.raise(("loghaul: %s must be an http(s) URL like https://host:port, got %s"):format(what, tostring(url)))
  end
  if u.path:find("[^/]") then
    M.raise(("loghaul: %s must be scheme://host[:port]; the client adds %s (got %s)"):format(
      what, adds or "the API's paths", url))
  end
  return (url:gsub("/+$", ""))
end

-- Argument checks. Errors for programming mistakes point at the user's line: the first
-- stack frame that is not loghaul's own code (nor a C function such as pcall).

-- "@.../loghaul/": the folder of loghaul's Lua files (auth/ included)
local own_source = debug.getinfo(1, "S").source:match("^(@.*[/\\])[^/\\]*$")

--- Raises `msg` at the caller's line: the first function outside loghaul on the stack.
-- @param msg the message (or an error object, raised as it is)
function M.raise(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then break end
    if info.what ~= "C" and not (own_source and info.source:sub(1, #own_source) == own_source) then
      error(msg, level)
    end
    level = level + 1
  end
  error(msg, 2)
end

--- A set (`name → true`) of the names given, for `check_options`.
-- @tparam {string,...} ... lists of names
-- @treturn table
function M.set(...)
  local s = {}
  for i = 1, select("#", ...) do
    for _, name in ipairs((select(i, ...))) do s[name] = true end
  end
  return s
end

-- Damerau-Levenshtein distance (adjacent transpositions count 1: "tiemout" is 1 from "timeout")
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[#a][#b]
end

-- names users reach for that are spelt otherwise here
local aliases = {
  ca_cert = "ca_file", cacert = "ca_file", ca_path = "ca_file", ca_bundle = "ca_file", cafile = "ca_file",
  ca = "ca_file", verify = "insecure", ssl_verify = "insecure", verify_ssl = "insecure",
  retries = "retry", max_retries = "retry", progress = "on_progress", logger = "log",
  url = "endpoint", host = "endpoint", output = "dest", path = "dest", dir = "dest",
  from = "start_time", to = "end_time", since = "start_time", ["until"] = "end_time",
}

local function squash(s) return (s:lower():gsub("[_%-]", "")) end

--- The known name closest to an unknown one, or nil when none is close.
-- @tparam string key
-- @tparam table allowed a set of names
-- @treturn string|nil the name
-- @treturn boolean|nil true when only the spelling differs (`startTime` for `start_time`)
function M.nearest(key, allowed)
  if type(key) ~= "string" then return nil end
  local sq = squash(key)
  for name in pairs(allowed) do
    if squash(name) == sq then return name, true end
  end
  local alias = aliases[key:lower()]
  if alias and allowed[alias] then return alias end
  if #sq >= 3 then -- a name cut short or run long: `order` for `order_by`, `timeouts` for `timeout`
    for name in pairs(allowed) do
      local n = squash(name)
      if name:sub(1, 1) ~= "_" and (n:sub(1, #sq) == sq or sq:sub(1, #n) == n) then return name end
    end
  end
  local best, bd
  for name in pairs(allowed) do
    if name:sub(1, 1) ~= "_" then
      local d = distance(key, name)
      if (not bd or d < bd or (d == bd and name < best)) then best, bd = name, d end
    end
  end
  if best and bd <= math.max(1, math.floor(#key / 3)) then return best end
  return nil
end

--- Refuses a key a function does not take, naming it and the nearest known one:
-- `loghaul.zenlayer: unknown option 'tiemout' (did you mean 'timeout'?)`. Raises at the
-- caller's line (a misspelt option is a programming error, found before anything is sent).
-- @tparam table t the options table
-- @tparam table allowed the set of names (`util.set{...}`), declared beside the function
-- @tparam string where what took them, for the message (`loghaul.zenlayer`, `zl:each_log`)
function M.check_options(t, allowed, where)
  local bad = {}
  for k in pairs(t) do
    if not allowed[k] then
      if type(k) ~= "string" then
        M.raise(("%s: unexpected list item [%s]: options are named (name = value)"):format(where, tostring(k)))
      end
      local near, spelling = M.nearest(k, allowed)
      local hint = ""
      if spelling then
        hint = (" (%s spells it '%s')"):format(where, near)
      elseif near then
        hint = (" (did you mean '%s'?)"):format(near)
      end
      bad[#bad + 1] = "'" .. k .. "'" .. hint
    end
  end
  if #bad == 1 then M.raise(("%s: unknown option %s"):format(where, bad[1])) end
  if #bad > 1 then
    table.sort(bad) -- all of them at once, in a stable order
    M.raise(("%s: unknown options %s"):format(where, table.concat(bad, ", ")))
  end
end

--- Checks that a method was called with a colon (`obj:method(...)`), not a dot.
-- @param self what the method received as self
-- @tparam table class the method's metatable
-- @tparam string usage how to call it, for the message (`zl:each_log{ ... }`)
function M.check_self(self, class, usage)
  if getmetatable(self) ~= class then
    M.raise(("loghaul: %s called without its client: call it with a colon, %s"):format(
      usage:match("^[%w_]+[:.]([%w_]+)") or usage, usage))
  end
end

--- Checks that an options table is a table (or nil), then its keys.
-- @param t the options (nil is fine: no options)
-- @tparam table allowed the set of names
-- @tparam string where for the messages
-- @treturn table t, or an empty table
function M.options(t, allowed, where)
  if t == nil then return {} end
  if type(t) ~= "table" then M.raise(("%s: options must be a table, got %s"):format(where, type(t))) end
  M.check_options(t, allowed, where)
  return t
end

-- days since 1970-01-01 of a civil date (proleptic Gregorian), after H. Hinnant.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local mdays = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

--- Parses a strict UTC time `yyyy-MM-ddTHH:mm:ssZ` into Unix seconds.
-- @tparam string s
-- @treturn number|nil seconds, or nil when the text is not exactly that format or not a real date
function M.parse_utc(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)Z$")
  if not y then return nil end
  y, mo, d, h, mi, se = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(se)
  if mo < 1 or mo > 12 or h > 23 or mi > 59 or se > 59 or d < 1 then return nil end
  local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  local dim = mdays[mo] + ((mo == 2 and leap) and 1 or 0)
  if d > dim then return nil end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se
end

--- Formats Unix seconds as `yyyy-MM-ddTHH:mm:ssZ` (UTC).
-- @tparam number t
-- @treturn string
function M.format_utc(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(t))
end

--- Shallow copy of a table (nil gives an empty table).
-- @tparam table|nil t
-- @treturn table
function M.copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

--- Checks an identifier that goes into a URL path (project, server and export ids).
-- @param v the value
-- @treturn boolean true when it is a non-empty string of unreserved characters
function M.is_path_id(v)
  return type(v) == "string" and v ~= "" and #v <= 256 and v:find("^[%w%-%._~]+$") ~= nil
    and v ~= "." and v ~= ".."
end

--- A vendor code as text: JSON numbers decode as doubles, so 10004 must not become "10004.0".
-- @param v a string or number (nil stays nil)
-- @treturn string|nil
function M.code(v)
  if v == nil then return nil end
  if type(v) == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return string.format("%.0f", v)
  end
  return tostring(v)
end

return M
