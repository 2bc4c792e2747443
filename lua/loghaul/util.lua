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
-- Raises when it is not an http(s) URL (a programming error).
-- @tparam string url
-- @tparam string what the option's name, for the message
-- @treturn string
function M.base_url(url, what)
  local u = M.parse_url(url)
  if not u or (u.scheme ~= "https" and u.scheme ~= "http") then
    error(("loghaul: %s must be an http(s) URL like https://host:port, got %s"):format(what, tostring(url)), 3)
  end
  return (url:gsub("/+$", ""))
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
