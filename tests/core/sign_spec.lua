-- loghaul.core signers: auth-v2, SDK-HMAC-SHA256, ZC2-HMAC-SHA256, against the VENDORS.md vectors.
local core = require "loghaul.core"

local function merge(base, extra)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- by sha256sum, not by the core whose signers are under test
local sha256_hex = require("helpers.util").sha256_hex

-- The line of a canonical request, 1-based.
local function line(s, n)
  local i = 0
  for l in (s .. "\n"):gmatch("([^\n]*)\n") do
    i = i + 1
    if i == n then return l end
  end
end

-- Asserts that f raises an error whose message contains every given text.
local function raises(f, ...)
  local ok, err = pcall(f)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  for _, text in ipairs { ... } do
    assert.is_truthy(err:find(text, 1, true), "error '" .. err .. "' lacks '" .. text .. "'")
  end
end

describe("core.sign_auth_v2", function()
  local base = {
    access_key = "globalaktest", secret_key = "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    timestamp = "2024-01-02T03:04:05Z", headers = { host = "10.22.26.181:28080" },
  }
  local function sign(t) return core.sign_auth_v2(merge(base, t)) end

  it("signs a JSON POST (vector 1)", function()
    local r = sign { method = "POST", path = "/rest/cmsapp/v1/ping", body = '{"say":"Hello world!"}' }
    assert.equal("974a50e6a440e8c94c2d79a7cd2f92d3592830724d176d8ebae9ed7ad2e6439f", r.signing_key)
    assert.equal("auth-v2/globalaktest/2024-01-02T03:04:05Z/host/"
      .. "fd822f1be6d858e2b14d7ebbbd9a0ddac6c6d9d931033532895e1aac9885f1ac", r.headers.Authorization)
    assert.equal("fd822f1be6d858e2b14d7ebbbd9a0ddac6c6d9d931033532895e1aac9885f1ac", r.signature)
    assert.equal("host", r.signed_headers)
    assert.equal("POST\n/rest/cmsapp/v1/ping\nhost\nhost:10.22.26.181%3A28080\n"
      .. "%7B%22say%22%3A%22Hello%20world%21%22%7D", r.canonical_request)
  end)

  it("signs an upload with an empty payload (vector 2)", function()
    local r = sign { method = "POST", path = "/rest/cmsapp/v1/ClientLog/uploadClientLog" }
    assert.equal("6d78ca160c668ec7cc1dd8a88b7aa13c98e42e9d92511c0b2e3222508b7e4022", r.signature)
    assert.equal("POST\n/rest/cmsapp/v1/ClientLog/uploadClientLog\nhost\nhost:10.22.26.181%3A28080\n",
      r.canonical_request)
    -- the signing key depends only on AK, timestamp and signed headers
    assert.equal("974a50e6a440e8c94c2d79a7cd2f92d3592830724d176d8ebae9ed7ad2e6439f", r.signing_key)
    -- body = "" is the same as no body
    local r2 = sign { method = "POST", path = "/rest/cmsapp/v1/ClientLog/uploadClientLog", body = "" }
    assert.equal(r.signature, r2.signature)
  end)

  it("signs a GET with a query and two headers (vector 3)", function()
    local r = sign {
      method = "GET", path = "/rest/cmsapp/v1/x", query = { b = "2 3", a = "1" },
      headers = { ["Content-Type"] = "application/json;charset=UTF-8", Host = "10.22.26.181:28080" },
    }
    assert.equal("a=1&b=2%203", line(r.canonical_request, 3))
    assert.equal("content-type;host", r.signed_headers)
    assert.equal("f993eaf566cf687aeb1a5b5641a249ef443edf2c735fa17551f03c18af4cdd0e", r.signature)
    assert.equal("GET\n/rest/cmsapp/v1/x\na=1&b=2%203\ncontent-type;host\n"
      .. "content-type:application%2Fjson%3Bcharset%3DUTF-8\nhost:10.22.26.181%3A28080\n", r.canonical_request)
    assert.equal("auth-v2/globalaktest/2024-01-02T03:04:05Z/content-type;host/" .. r.signature, r.headers.Authorization)
  end)

  it("leaves the query line out for an empty query table", function()
    local a = sign { method = "GET", path = "/p" }
    local b = sign { method = "GET", path = "/p", query = {} }
    assert.equal("GET\n/p\nhost\nhost:10.22.26.181%3A28080\n", b.canonical_request)
    assert.equal(a.signature, b.signature)
  end)

  it("signs repeated query keys as one pair per value, sorted", function()
    local r = sign { method = "GET", path = "/p", query = { k = { "v2", "v1", "a b" }, j = "0" } }
    assert.equal("j=0&k=a%20b&k=v1&k=v2", line(r.canonical_request, 3))
  end)

  it("percent-encodes unicode in the query as upper-case UTF-8 bytes", function()
    local r = sign { method = "GET", path = "/p", query = { ["名"] = "日本 ~-._" } }
    assert.equal("%E5%90%8D=%E6%97%A5%E6%9C%AC%20~-._", line(r.canonical_request, 3))
  end)

  it("sorts whole 'k=v' pairs, as VENDORS.md states", function()
    -- '-' (0x2D) sorts before '=' (0x3D): a key-only sort would put "a=1" first
    local r = sign { method = "GET", path = "/p", query = { a = "1", ["a-b"] = "2" } }
    assert.equal("a-b=2&a=1", line(r.canonical_request, 3))
  end)

  it("signs every header given, names lower-cased and sorted", function()
    local r = sign { method = "GET", path = "/p",
      headers = { ["X-B"] = "2", host = "h", ["x-a"] = "1 1" } }
    assert.equal("host;x-a;x-b", r.signed_headers)
    assert.equal("GET\n/p\nhost;x-a;x-b\nhost:h\nx-a:1%201\nx-b:2\n", r.canonical_request)
  end)

  it("sorts SignedHeaders by name but CanonicalHeaders by whole line, as VENDORS.md states", function()
    -- '-' (0x2D) sorts before ':' (0x3A): "x-a-b:2" comes before "x-a:1"
    local r = sign { method = "GET", path = "/p", headers = { host = "h", ["x-a"] = "1", ["x-a-b"] = "2" } }
    assert.equal("host;x-a;x-a-b", r.signed_headers)
    assert.equal("GET\n/p\nhost;x-a;x-a-b\nhost:h\nx-a-b:2\nx-a:1\n", r.canonical_request)
  end)

  it("raises on missing or ill-typed fields, naming the field", function()
    raises(function() sign { method = "GET", path = "/p", headers = { ["content-type"] = "x" } } end,
      "sign_auth_v2", "'headers.host'")
    raises(function() sign { method = "GET", path = "/p", headers = false } end, "sign_auth_v2", "'headers'", "boolean")
    raises(function() sign { path = "/p" } end, "sign_auth_v2: field 'method' (string expected, got nil)")
    raises(function() sign { method = "GET", path = 1 } end, "field 'path' (string expected, got number)")
    raises(function() sign { method = "GET", path = "/p", access_key = false } end, "'access_key'", "boolean")
    raises(function() sign { method = "GET", path = "/p", body = {} } end, "'body'", "table")
    raises(function() sign { method = "GET", path = "/p", query = { a = 1 } } end, "'query.a'", "number")
    raises(function() sign { method = "GET", path = "/p", query = { a = { "x", true } } } end,
      "'query.a[2]'", "boolean")
    raises(function() sign { method = "GET", path = "/p", query = "a=1" } end, "'query'", "table expected")
    raises(function() sign { method = "GET", path = "/p", headers = { host = 80 } } end, "'headers.host'", "number")
    raises(function() sign { method = "GET", path = "/p", headers = { host = "a", Host = "b" } } end,
      "'host' given twice")
    raises(function() sign { method = "GET", path = "/p", headers = { host = "a", ["bad name"] = "b" } } end,
      "invalid header name")
    raises(function() core.sign_auth_v2() end, "table expected")
  end)
end)

describe("core.sign_sdk_hmac_sha256", function()
  local base = { access_key = "AccessKey", secret_key = "SecretKey", date = "20060102T150405Z" }
  local function sign(t) return core.sign_sdk_hmac_sha256(merge(base, t)) end

  it("signs GET /path?limit=1 (published vector)", function()
    local r = sign { method = "GET", path = "/path", query = { limit = "1" } }
    assert.equal("GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n"
      .. "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", r.canonical_request)
    assert.equal("5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624", r.signature)
    assert.equal("SDK-HMAC-SHA256\n20060102T150405Z\n" .. sha256_hex(r.canonical_request), r.string_to_sign)
    assert.equal("x-sdk-date", r.signed_headers)
    assert.equal("SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, "
      .. "Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624", r.headers.Authorization)
    assert.equal("20060102T150405Z", r.headers["X-Sdk-Date"])
  end)

  it("signs POST /path?key=value with a trailing newline (published vector)", function()
    local r = sign { method = "POST", path = "/path", query = { key = "value" }, body = '{"Name":"test","Id":1}\n' }
    assert.equal("cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59", r.signature)
  end)

  it("signs the same POST without the newline", function()
    local r = sign { method = "POST", path = "/path", query = { key = "value" }, body = '{"Name":"test","Id":1}' }
    assert.equal("83599e5230b5b31fb58837c5760b4c2d407542df1f9493834ead538696e17a35", r.signature)
  end)

  it("takes a precomputed body_sha256 as is", function()
    local body = '{"Name":"test","Id":1}\n'
    local r = sign { method = "POST", path = "/path", query = { key = "value" }, body_sha256 = sha256_hex(body) }
    assert.equal("cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59", r.signature)
    assert.equal(sha256_hex(body), line(r.canonical_request, 7))
  end)

  it("escapes the query like the Go SDK (published escaping vector)", function()
    local r = sign { method = "GET", path = "/path", query = {
      test = "一 (&=?!#%.*)", path = "/tmp/123", multi = { "3", "1", "2" }, limit = "1", enable = "true" } }
    assert.equal("enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123"
      .. "&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29", line(r.canonical_request, 3))
  end)

  it("sorts on raw keys, then each key's values", function()
    -- raw "." (0x2E) sorts before "/" (0x2F), though escaped "%2F" would sort before "."
    local r = sign { method = "GET", path = "/", query = { ["/"] = "1", ["."] = "2", k = { "b", "a", "a" } } }
    assert.equal(".=2&%2F=1&k=a&k=a&k=b", line(r.canonical_request, 3))
  end)

  it("escapes path segments and appends exactly one '/'", function()
    assert.equal("/a%20b/%E6%97%A5/", line(sign { method = "GET", path = "/a b/日" }.canonical_request, 2))
    assert.equal("/v1/x/", line(sign { method = "GET", path = "/v1/x/" }.canonical_request, 2))
    assert.equal("/", line(sign { method = "GET", path = "/" }.canonical_request, 2))
    assert.equal("", line(sign { method = "GET", path = "/" }.canonical_request, 3))
  end)

  it("signs the given headers plus x-sdk-date, lower-cased, trimmed and sorted", function()
    local r = sign { method = "GET", path = "/p",
      headers = { Host = "example.huaweicloud.com", ["Content-Type"] = "  application/json\t" } }
    assert.equal("content-type;host;x-sdk-date", r.signed_headers)
    assert.equal("GET\n/p/\n\ncontent-type:application/json\nhost:example.huaweicloud.com\n"
      .. "x-sdk-date:20060102T150405Z\n\ncontent-type;host;x-sdk-date\n"
      .. "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", r.canonical_request)
    assert.matches("SignedHeaders=content%-type;host;x%-sdk%-date, ", r.headers.Authorization)
  end)

  it("raises on missing or ill-typed fields, naming the field", function()
    raises(function() core.sign_sdk_hmac_sha256 { access_key = "a", secret_key = "s", method = "GET", path = "/" } end,
      "sign_sdk_hmac_sha256: field 'date' (string expected, got nil)")
    raises(function() sign { method = "GET" } end, "sign_sdk_hmac_sha256: field 'path' (string expected, got nil)")
    raises(function() sign { method = "GET", path = "/", secret_key = 5 } end, "'secret_key'", "number")
    raises(function() sign { method = "GET", path = "/", body = "x", body_sha256 = sha256_hex("x") } end,
      "'body'", "'body_sha256'")
    raises(function() sign { method = "GET", path = "/", body_sha256 = "abc" } end, "'body_sha256'", "64 hex")
    raises(function() sign { method = "GET", path = "/", headers = { ["X-SDK-DATE"] = "x" } } end, "X-Sdk-Date")
    raises(function() sign { method = "GET", path = "/", headers = { Host = true } } end, "'headers.Host'", "boolean")
    raises(function() sign { method = "GET", path = "/", query = { a = false } } end, "'query.a'", "boolean")
    raises(function() sign { method = "GET", path = "/", query = { [1] = "x" } } end, "'query'", "string keys")
  end)
end)

describe("core.sign_zc2", function()
  local base = {
    access_key_id = "AKID", access_key_password = "Gu5t9xGARNpq86cd98joQYCN3", host = "console.zenlayer.com",
    timestamp = "1673361177", content_type = "application/json; charset=utf-8",
    body = '{"pageSize":10,"pageNum":1,"zoneId":"HKG-A"}',
  }
  local function sign(t) return core.sign_zc2(merge(base, t)) end

  it("signs the published vector", function()
    local r = sign()
    assert.equal("efb356c32e55c781e10dc676da59462c22596d82e91c57803666243379555b2f", r.signature)
    assert.equal("POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:console.zenlayer.com\n\n"
      .. "content-type;host\n" .. sha256_hex(base.body), r.canonical_request)
    assert.equal("ZC2-HMAC-SHA256\n1673361177\n" .. sha256_hex(r.canonical_request), r.string_to_sign)
    assert.equal("ZC2-HMAC-SHA256 Credential=AKID, SignedHeaders=content-type;host, "
      .. "Signature=efb356c32e55c781e10dc676da59462c22596d82e91c57803666243379555b2f", r.headers.Authorization)
    assert.equal("1673361177", r.headers["X-ZC-Timestamp"])
    assert.equal("ZC2-HMAC-SHA256", r.headers["X-ZC-Signature-Method"])
  end)

  it("signs the Content-Type as sent (computed vector)", function()
    assert.equal("9fdd5117d611874c57b6514c5265c94aee7b716f33906836f9ebda1b56cbc119",
      sign { content_type = "application/json" }.signature)
  end)

  it("takes the timestamp as an integer number too", function()
    local r = sign { timestamp = 1673361177 }
    assert.equal("efb356c32e55c781e10dc676da59462c22596d82e91c57803666243379555b2f", r.signature)
    assert.equal("1673361177", r.headers["X-ZC-Timestamp"])
  end)

  it("raises on missing or ill-typed fields, naming the field", function()
    raises(function() sign { host = false } end, "sign_zc2: field 'host' (string expected, got boolean)")
    local t = merge(base)
    t.host = nil
    raises(function() core.sign_zc2(t) end, "sign_zc2: field 'host' (string expected, got nil)")
    raises(function() sign { access_key_password = 1 } end, "'access_key_password'", "number")
    raises(function() sign { content_type = {} } end, "'content_type'", "table")
    raises(function() sign { timestamp = "12a" } end, "sign_zc2: field 'timestamp'", "12a")
    raises(function() sign { timestamp = "" } end, "sign_zc2: field 'timestamp'")
    raises(function() sign { timestamp = 1.5 } end, "sign_zc2: field 'timestamp'")
    raises(function() sign { timestamp = -1 } end, "sign_zc2: field 'timestamp'")
    raises(function() sign { timestamp = true } end, "sign_zc2: field 'timestamp'", "boolean")
    raises(function() core.sign_zc2("x") end, "table expected")
  end)
end)
