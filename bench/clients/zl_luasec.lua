-- bench/cursor client: the cursor loop a Lua user writes with LuaSocket + LuaSec (a new
-- connection per page), luaossl for the ZC2-HMAC-SHA256 signature and lua-cjson for the
-- pages. Lua-cjson decodes every number as a double, so the 19-digit cursor is taken from the
-- page's text with a pattern and sent back as those digits. Usage: see zl_args.lua
local args = require "zl_args"
local https = require "ssl.https"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local digest = require "openssl.digest"
local hmac = require "openssl.hmac"

local a = args.parse(arg)
local host = a.base_url:match("^https://([^/]+)")

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
  local out = {}
  local _, code = https.request{
    url = a.base_url .. "/api/v2/zls", method = "POST", cafile = a.ca_file, verify = "peer",
    protocol = "any", options = { "all", "no_sslv2", "no_sslv3" },
    headers = {
      host = host, ["content-type"] = ct, ["content-length"] = tostring(#body),
      ["x-zc-action"] = "DescribeLogs", ["x-zc-version"] = "2023-08-04",
      ["x-zc-signature-method"] = "ZC2-HMAC-SHA256", ["x-zc-timestamp"] = ts,
      authorization = "ZC2-HMAC-SHA256 Credential=" .. a.id .. ", SignedHeaders=content-type;host, Signature=" .. sig,
    },
    source = ltn12.source.string(body), sink = ltn12.sink.table(out),
  }
  local text = table.concat(out)
  assert(code == 200, "DescribeLogs: " .. tostring(code) .. " " .. text:sub(1, 200))
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
