-- bench/cursor client: the same loop with lua-http (cqueues + luaossl; a new connection per
-- page, as request:go() makes one), luaossl for the signature, lua-cjson for the pages.
-- Debian installs lua-http for Lua 5.1-5.3 only; it is pure Lua, so bench/cursor puts the
-- 5.3 tree on LUA_PATH for Lua 5.4. Usage: see zl_args.lua
local args = require "zl_args"
local ok, request = pcall(require, "http.request")
if not ok then args.unsupported("lua-http: " .. tostring(request):match("[^\n]*")) end
local http_tls = require "http.tls"
local x509_store = require "openssl.x509.store"
local cjson = require "cjson"
local digest = require "openssl.digest"
local hmac = require "openssl.hmac"

local a = args.parse(arg)
local host = a.base_url:match("^https://([^/]+)")
local ctx = http_tls.new_client_context()
local store = x509_store.new()
store:add(a.ca_file)
ctx:setStore(store)

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
local function sha256_hex(s) return hex(digest.new("sha256"):final(s)) end

local function describe_logs(body)
  local ct, ts = "application/json", tostring(os.time())
  local canonical = "POST\n/\n\ncontent-type:" .. ct .. "\nhost:" .. host .. "\n\ncontent-type;host\n"
    .. sha256_hex(body)
  local sts = "ZC2-HMAC-SHA256\n" .. ts .. "\n" .. sha256_hex(canonical)
  local sig = hex(hmac.new(a.password, "sha256"):final(sts))
  local req = request.new_from_uri(a.base_url .. "/api/v2/zls")
  req.ctx = ctx
  req.version = 1.1
  local h = req.headers
  h:upsert(":method", "POST")
  h:upsert(":authority", host)
  h:upsert("content-type", ct)
  h:upsert("x-zc-action", "DescribeLogs")
  h:upsert("x-zc-version", "2023-08-04")
  h:upsert("x-zc-signature-method", "ZC2-HMAC-SHA256")
  h:upsert("x-zc-timestamp", ts)
  h:upsert("authorization",
    "ZC2-HMAC-SHA256 Credential=" .. a.id .. ", SignedHeaders=content-type;host, Signature=" .. sig)
  req:set_body(body)
  local headers, stream = assert(req:go(30))
  local text = assert(stream:get_body_as_string(30))
  stream:shutdown()
  assert(headers:get(":status") == "200", "DescribeLogs: " .. headers:get(":status") .. " " .. text:sub(1, 200))
  return text
end

local n = 0
for _, w in ipairs(args.windows(a.start_time, a.end_time)) do
  local cursor
  repeat
    local body = string.format('{"startTime":"%s","endTime":"%s","size":1000%s}', w[1], w[2],
      cursor and (',"cursor":[' .. cursor .. "]") or "")
    local text = describe_logs(body)
    local page = cjson.decode(text)
    for _, rec in ipairs(page.response.dataSet) do
      if rec.opsTime then n = n + 1 end
    end
    cursor = text:match('"cursor"%s*:%s*%[%s*(%d+)%s*%]')
  until not cursor or #page.response.dataSet == 0
end
print("records=" .. n)
