-- The emulator's own verifiers of the three signing schemes of VENDORS.md, written from the
-- algorithm with emu.crypto (LuaJIT FFI to libcrypto), never with loghaul. Pure functions:
-- they take what the request carried and return the expected signature and canonical text,
-- so they can be checked against the published vectors outside nginx (luajit).
local crypto = require "emu.crypto"

local M = {}

local hex = crypto.sha256_hex
local hmac_hex = crypto.hmac_sha256_hex

--- auth-v2 normalize: every byte but A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex).
function M.normalize(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- RFC 3986 escape (the same unreserved set), used by SDK-HMAC-SHA256.
M.escape = M.normalize

local function sorted_pairs_text(query, esc)
  -- query: { k = "v" | { "v1", "v2" } | true }
  local items = {}
  for k, v in pairs(query or {}) do
    local vals = type(v) == "table" and v or { v }
    for _, x in ipairs(vals) do
      if x == true then x = "" end
      items[#items + 1] = { esc(k), esc(x) }
    end
  end
  table.sort(items, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  local out = {}
  for i, it in ipairs(items) do out[i] = it[1] .. "=" .. it[2] end
  return table.concat(out, "&")
end

--- Parse "auth-v2/AK/timestamp/signedheaders/signature" -> table or nil, why.
function M.parse_auth_v2(h)
  if type(h) ~= "string" then return nil, "no Authorization header" end
  local ak, ts, sh, sig = h:match("^auth%-v2/([^/]+)/([^/]+)/([^/]+)/(%x+)$")
  if not ak then return nil, "Authorization is not auth-v2/AK/timestamp/signedheaders/signature" end
  return { access_key = ak, timestamp = ts, signed_headers = sh, signature = sig }
end

--- auth-v2 expected signature. t = { secret_key, access_key, timestamp, signed_headers ("a;host"),
-- method, path (as sent), query (decoded table or nil), headers (lower-name -> value), body }
function M.auth_v2(t)
  local prefix = "auth-v2/" .. t.access_key .. "/" .. t.timestamp .. "/" .. t.signed_headers
  local signing_key = hmac_hex(t.secret_key, prefix)
  local names = {}
  for n in t.signed_headers:gmatch("[^;]+") do names[#names + 1] = n end
  table.sort(names)
  local lines = {}
  for _, n in ipairs(names) do
    local v = t.headers[n]
    if v == nil then return nil, "signed header " .. n .. " is missing" end
    lines[#lines + 1] = M.normalize(n:lower()) .. ":" .. M.normalize(v)
  end
  table.sort(lines)
  local parts = { t.method, t.path }
  local q = sorted_pairs_text(t.query, M.normalize)
  if q ~= "" then parts[#parts + 1] = q end
  parts[#parts + 1] = t.signed_headers
  parts[#parts + 1] = table.concat(lines, "\n")
  local cr = table.concat(parts, "\n") .. "\n"
  if type(t.body) == "string" and t.body ~= "" then cr = cr .. M.normalize(t.body) end
  return hmac_hex(signing_key, cr), cr, signing_key
end

-- "<scheme> K=v, K=v, ..." holding the three parameters `keys` -> { [names[i]] = value of keys[i] },
-- or nil, why.
local function parse_params(h, scheme, keys, names)
  if type(h) ~= "string" then return nil, "no Authorization header" end
  local rest = h:match("^" .. (scheme:gsub("%-", "%%-")) .. "%s+(.*)$")
  if not rest then return nil, "Authorization is not " .. scheme end
  local r = {}
  for k, v in rest:gmatch("(%a+)=([^,%s]+)") do r[k] = v end
  local out = {}
  for i, k in ipairs(keys) do
    if not r[k] then return nil, "Authorization lacks " .. keys[1] .. ", " .. keys[2] .. " or " .. keys[3] end
    out[names[i]] = r[k]
  end
  return out
end

--- Parse "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex".
function M.parse_sdk(h)
  return parse_params(h, "SDK-HMAC-SHA256", { "Access", "SignedHeaders", "Signature" },
    { "access_key", "signed_headers", "signature" })
end

local function trim(s) return (tostring(s):gsub("^%s+", ""):gsub("%s+$", "")) end

--- SDK-HMAC-SHA256 expected signature. t = { secret_key, date, signed_headers, method,
-- path (decoded), query (decoded table), headers (lower-name -> value), body | body_sha256 }
function M.sdk(t)
  local segs = {}
  for seg in (t.path .. "/"):gmatch("([^/]*)/") do segs[#segs + 1] = M.escape(seg) end
  local uri = table.concat(segs, "/")
  if uri:sub(-1) ~= "/" then uri = uri .. "/" end
  local names = {}
  for n in t.signed_headers:gmatch("[^;]+") do names[#names + 1] = n:lower() end
  table.sort(names)
  local hl = {}
  for _, n in ipairs(names) do
    local v = t.headers[n]
    if v == nil then return nil, "signed header " .. n .. " is missing" end
    hl[#hl + 1] = n .. ":" .. trim(v) .. "\n"
  end
  local cr = table.concat({
    t.method, uri, sorted_pairs_text(t.query, M.escape), table.concat(hl), table.concat(names, ";"),
    t.body_sha256 or hex(t.body or ""),
  }, "\n")
  local sts = "SDK-HMAC-SHA256\n" .. t.date .. "\n" .. hex(cr)
  return hmac_hex(t.secret_key, sts), cr, sts
end

--- Parse "ZC2-HMAC-SHA256 Credential=ID, SignedHeaders=content-type;host, Signature=hex".
function M.parse_zc2(h)
  return parse_params(h, "ZC2-HMAC-SHA256", { "Credential", "SignedHeaders", "Signature" },
    { "access_key_id", "signed_headers", "signature" })
end

--- ZC2-HMAC-SHA256 expected signature. t = { password, timestamp, content_type, host, body }
function M.zc2(t)
  local cr = "POST\n/\n\ncontent-type:" .. t.content_type .. "\nhost:" .. t.host
    .. "\n\ncontent-type;host\n" .. hex(t.body or "")
  local sts = "ZC2-HMAC-SHA256\n" .. tostring(t.timestamp) .. "\n" .. hex(cr)
  return hmac_hex(t.password, sts), cr, sts
end

--- Constant-time-ish comparison of two hex strings.
function M.equal(a, b)
  if type(a) ~= "string" or type(b) ~= "string" or #a ~= #b then return false end
  local d = 0
  for i = 1, #a do
    if a:byte(i) ~= b:byte(i) then d = d + 1 end
  end
  return d == 0
end

return M
