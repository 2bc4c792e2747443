-- Self-test of the emulator's vendor endpoints (tests/emulator/VENDORS.md), driven by the
-- curl command line; signatures come from loghaul.core's signers (checked against every
-- published vector in tests/core/sign_spec.lua), the emulator verifies them with its own code.
local cjson = require "cjson"
local core = require "loghaul.core"
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local vendors = require "helpers.vendors"

local F = vendors.fixtures

local q, sh = shell.quote, shell.run
local read_file, write_file = shell.read_file, shell.write_file

local e, tmp, host, seq = nil, nil, nil, 0

-- One request with curl. t = { method, path, query = "a=b", headers = {}, body = "", form = {...},
-- range = "0-99", no_ua = true } -> { status, headers = { lower = value }, body, rc }
local function req(t)
  seq = seq + 1
  local hf, bf = tmp .. "/h" .. seq, tmp .. "/b" .. seq
  local cmd = { "curl -sS --max-time 60 --cacert", q(e.ca_file), "-X", t.method or "GET", "-D", q(hf), "-o", q(bf) }
  for k, v in pairs(t.headers or {}) do cmd[#cmd + 1] = "-H " .. q(k .. ": " .. v) end
  if t.no_ua then cmd[#cmd + 1] = "-H 'User-Agent:'" end
  if t.body then
    local inf = tmp .. "/in" .. seq
    write_file(inf, t.body)
    cmd[#cmd + 1] = "--data-binary @" .. q(inf)
  end
  for _, f in ipairs(t.form or {}) do cmd[#cmd + 1] = "-F " .. q(f) end
  if t.range then cmd[#cmd + 1] = "-r " .. t.range end
  cmd[#cmd + 1] = q(e.base_url .. t.path .. (t.query and ("?" .. t.query) or ""))
  local _, rc = sh(table.concat(cmd, " ") .. " 2>/dev/null")
  local r = { rc = rc, headers = {}, body = "" }
  local hs = read_file(hf) or ""
  -- the last header block (after any 100 Continue)
  for block in hs:gmatch("HTTP/[^\r\n]*\r\n.-\r\n\r\n") do
    r.status = tonumber(block:match("^HTTP/%S+ (%d+)"))
    r.headers = {}
    for k, v in block:gmatch("\n([^:\r\n]+):%s*([^\r\n]*)") do r.headers[k:lower()] = v end
  end
  local body = read_file(bf)
  if body then r.body = body; r.file = bf end
  return r
end

local function decode(r) return cjson.decode(r.body) end

local function utc(offset) return os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + (offset or 0)) end

setup(function()
  e = emu.start()
  host = e.base_url:match("^https://(.*)$")
  tmp = shell.tmpdir("loghaul-test")
end)

teardown(function()
  shell.rmdir(tmp)
end)

before_each(function()
  emu.reset()
  vendors.reset()
end)

describe("vendor emulator: control", function()
  it("loads the fixtures and answers state and settings", function()
    assert.is_string(F.cms.access_key)
    assert.is_string(F.clouddc.sn)
    local s = vendors.state()
    assert.equal(0, s.yeastar.logins)
    assert.equal(3, s.settings.clouddc.polls)
    local set = vendors.configure { clouddc = { polls = 5 } }
    assert.equal(5, set.clouddc.polls)
    assert.has_error(function() vendors.configure { clouddc = { nope = 1 } } end)
    vendors.configure { clouddc = { polls = cjson.null } }
    assert.equal(3, vendors.state().settings.clouddc.polls)
  end)
end)

describe("vendor emulator: Huawei CC-CMS", function()
  local PATH = "/rest/cmsapp/v1/ClientLog/uploadClientLog"
  local function auth(ts, ak, sk)
    return core.sign_auth_v2 { access_key = ak or F.cms.access_key, secret_key = sk or F.cms.secret_key,
      timestamp = ts or utc(), method = "POST", path = PATH, headers = { host = host } }.headers.Authorization
  end
  local function upload(a, extra)
    local path = tmp .. "/OELOG_99991093_10.234.63.214_20250226162127.zip"
    write_file(path, string.rep("zipdata", 3000))
    local h = { Authorization = a, FileType = "0" }
    for k, v in pairs(extra or {}) do h[k] = v end
    return req { method = "POST", path = PATH, headers = h, form = { "file=@" .. path } }, path
  end

  it("accepts a good auth-v2 upload and records the file", function()
    local r, path = upload(auth())
    assert.equal(200, r.status)
    assert.equal("200", decode(r).status)
    local s = vendors.state().cms
    assert.equal(1, s.uploads)
    local got = s.received[1]
    assert.equal("OELOG_99991093_10.234.63.214_20250226162127.zip", got.name)
    assert.equal(21000, got.size)
    assert.equal((sh("sha256sum " .. q(path))):match("^(%x+)"), got.sha256)
  end)

  it("refuses a tampered signature, a wrong secret, an old timestamp, an unsigned host", function()
    local a = auth()
    local bad = a:sub(1, -2) .. (a:sub(-1) == "0" and "1" or "0")
    assert.equal(401, upload(bad).status)
    assert.equal(401, upload(auth(nil, nil, "wrong-secret")).status)
    assert.equal(401, upload(auth(utc(-16 * 60))).status)
    assert.equal(401, upload(auth(nil, "someone-else")).status)
    local nohost = core.sign_auth_v2 { access_key = F.cms.access_key, secret_key = F.cms.secret_key,
      timestamp = utc(), method = "POST", path = PATH, headers = { host = host, filetype = "0" } }
    assert.equal(200, upload(nohost.headers.Authorization).status)   -- extra signed headers are fine
    assert.equal(0 + 1, vendors.state().cms.uploads)
  end)

  it("requires FileType: 0 and a part named file", function()
    assert.equal(400, upload(auth(), { FileType = "1" }).status)
    local r = req { method = "POST", path = PATH, headers = { Authorization = auth(), FileType = "0" },
                    form = { "other=@/etc/hostname" } }
    assert.equal(400, r.status)
  end)
end)

describe("vendor emulator: Huawei IAM and CloudDC", function()
  local base = "/v1/" .. F.clouddc.project_id .. "/physicalservers/" .. F.clouddc.server_id .. "/logs/exports"
  local function login(password)
    local body = cjson.encode { auth = { identity = { methods = { "password" },
      password = { user = { name = F.iam.user, password = password or F.iam.password,
                            domain = { name = F.iam.domain } } } },
      scope = { project = { name = F.iam.project } } } }
    return req { method = "POST", path = "/v3/auth/tokens", query = "nocatalog=true", body = body,
                 headers = { ["Content-Type"] = "application/json;charset=utf8" } }
  end
  local function token()
    local r = login()
    assert.equal(201, r.status)
    return r.headers["x-subject-token"]
  end
  local function aksk(method, path, body, sk)
    local date = os.date("!%Y%m%dT%H%M%SZ")
    local h = { host = host }
    if body then h["Content-Type"] = "application/json" end
    local s = core.sign_sdk_hmac_sha256 { access_key = F.clouddc.access_key, secret_key = sk or F.clouddc.secret_key,
      date = date, method = method, path = path, headers = h, body = body or "" }
    local out = { Authorization = s.headers.Authorization, ["X-Sdk-Date"] = s.headers["X-Sdk-Date"] }
    if body then out["Content-Type"] = "application/json" end
    return out
  end

  it("issues a long token with expires_at, refuses a wrong password", function()
    local r = login()
    assert.equal(201, r.status)
    assert.is_true(#r.headers["x-subject-token"] >= 2000)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", decode(r).token.expires_at)
    local bad = login("nope")
    assert.equal(401, bad.status)
    assert.equal("IAM.0004", decode(bad).error_code)
    assert.equal(1, vendors.state().iam.logins)
  end)

  it("exports, progresses over polls, completes, and serves the archive with Range", function()
    local h = { ["X-Auth-Token"] = token() }
    local c = req { method = "POST", path = base, headers = h }
    assert.equal(202, c.status)
    local v = decode(c)
    assert.equal("Running", v.status)
    assert.equal("30%", v.percentage)
    assert.is_string(v.created_at)
    local url = base .. "/" .. v.export_id
    assert.equal(400, req { path = url .. "/content", headers = h }.status)   -- not completed yet
    local seen = {}
    for i = 1, 3 do
      local p = decode(req { path = url, headers = h })
      seen[i] = p
    end
    assert.equal("Running", seen[1].status)
    assert.equal("Running", seen[2].status)
    assert.equal("completed", seen[3].status)
    assert.equal("100%", seen[3].percentage)
    local d = req { path = url .. "/content", headers = h }
    assert.equal(200, d.status)
    assert.equal("attachment; filename=" .. F.clouddc.sn .. "-dump.tar.gz", d.headers["content-disposition"])
    assert.equal("application/octet-stream;charset=UTF-8", d.headers["content-type"])
    assert.is_true(#d.body > 100000)
    local list, rc = sh("tar tzf " .. q(d.file))
    assert.equal(0, rc)
    assert.matches("logs/bmc.log", list)
    local part = req { path = url .. "/content", headers = h, range = "100-199" }
    assert.equal(206, part.status)
    assert.equal(d.body:sub(101, 200), part.body)
    local s = vendors.state().clouddc
    assert.equal(1, s.exports_created)
    assert.equal(3, s.polls)
    assert.equal(2, s.downloads)
  end)

  it("verifies SDK-HMAC-SHA256 and refuses a tampered one", function()
    local c = req { method = "POST", path = base, headers = aksk("POST", base, "{}"), body = "{}" }
    assert.equal(202, c.status)
    local bad = req { method = "POST", path = base, headers = aksk("POST", base, "{}", "wrong"), body = "{}" }
    assert.equal(401, bad.status)
    assert.equal("APIG.0301", decode(bad).error_code)
    local url = base .. "/" .. decode(c).export_id
    assert.equal(200, req { path = url, headers = aksk("GET", url) }.status)
    local h = aksk("GET", url)
    h["X-Sdk-Date"] = os.date("!%Y%m%dT%H%M%SZ", os.time() - 3600)
    assert.equal(401, req { path = url, headers = h }.status)
  end)

  it("refuses unknown and expired tokens, unknown exports", function()
    local r = req { method = "POST", path = base, headers = { ["X-Auth-Token"] = "MIIbogus" } }
    assert.equal(401, r.status)
    assert.equal("APIG.0301", decode(r).error_code)
    vendors.configure { iam = { token_ttl = 1 } }
    local t = token()
    sh("sleep 1.5")
    r = req { method = "POST", path = base, headers = { ["X-Auth-Token"] = t } }
    assert.equal(401, r.status)
    assert.equal("APIG.0307", decode(r).error_code)
    vendors.configure { iam = { token_ttl = cjson.null } }
    r = req { path = base .. "/nope", headers = { ["X-Auth-Token"] = token() } }
    assert.equal(404, r.status)
    assert.is_string(decode(r).error_msg)
  end)

  it("switches: processing style, numeric percentage, failure, hostile file name, 429", function()
    vendors.configure { clouddc = { polls = 2, status_style = "processing", percentage = "number" } }
    local h = { ["X-Auth-Token"] = token() }
    local v = decode(req { method = "POST", path = base, headers = h })
    assert.equal("processing", v.status)
    assert.equal(30, v.percentage)
    local url = base .. "/" .. v.export_id
    assert.equal("processing", decode(req { path = url, headers = h }).status)
    local done = decode(req { path = url, headers = h })
    assert.equal("completed", done.status)
    assert.equal(100, done.percentage)
    vendors.configure { clouddc = { fail = true, hostile_filename = "../../etc/passwd" } }
    v = decode(req { method = "POST", path = base, headers = h })
    url = base .. "/" .. v.export_id
    req { path = url, headers = h }
    assert.equal("failed", decode(req { path = url, headers = h }).status)
    vendors.configure { clouddc = { fail = false } }
    v = decode(req { method = "POST", path = base, headers = h })
    url = base .. "/" .. v.export_id
    req { path = url, headers = h }
    req { path = url, headers = h }
    local d = req { path = url .. "/content", headers = h }
    assert.equal("attachment; filename=../../etc/passwd", d.headers["content-disposition"])
    emu.fault { path = "/v1/", status = 429, retry_after = 2, count = 1,
                body = '{"error_code":"APIG.0308","error_msg":"The request is throttled."}' }
    local r = req { path = url, headers = h }
    assert.equal(429, r.status)
    assert.equal("2", r.headers["retry-after"])
    assert.equal("APIG.0308", decode(r).error_code)
    assert.equal(200, req { path = url, headers = h }.status)
  end)

  it("runs under the generic cut fault (archive cut after N bytes)", function()
    local h = { ["X-Auth-Token"] = token() }
    vendors.configure { clouddc = { polls = 0 } }
    local v = decode(req { method = "POST", path = base, headers = h })
    local url = base .. "/" .. v.export_id .. "/content"
    emu.fault { path = url, cut_after = 1000, count = 1 }
    local r = req { path = url, headers = h }
    assert.are_not.equal(0, r.rc)
    assert.equal(1000, #r.body)
    assert.equal(200, req { path = url, headers = h }.status)
  end)
end)

describe("vendor emulator: Yeastar", function()
  local function api(ep, t)
    t = t or {}
    t.path = "/openapi/v1.0/" .. ep
    t.headers = t.headers or {}
    t.headers["User-Agent"] = t.headers["User-Agent"] or "OpenAPI"
    local r = req(t)
    assert.equal(200, r.status)
    return decode(r), r
  end
  local function login()
    local v = api("get_token", { method = "POST", headers = { ["Content-Type"] = "application/json" },
      body = cjson.encode { username = F.yeastar.client_id, password = F.yeastar.client_secret } })
    assert.equal(0, v.errcode)
    return v
  end

  it("logs in once for many calls; refuses bad credentials, missing User-Agent, header tokens", function()
    assert.equal(10005, api("get_token", { method = "POST",
      body = cjson.encode { username = F.yeastar.client_id, password = "x" } }).errcode)
    local t = login()
    assert.equal(1800, t.access_token_expire_time)
    assert.equal(86400, t.refresh_token_expire_time)
    for _ = 1, 5 do
      assert.equal(0, api("system_log/list", { query = "access_token=" .. t.access_token }).errcode)
    end
    assert.equal(10005, decode(req { path = "/openapi/v1.0/system_log/list", query = "access_token=" .. t.access_token,
                                     no_ua = true }).errcode)
    assert.equal(10004, api("system_log/list", { headers = { access_token = t.access_token,
      Authorization = "Bearer " .. t.access_token } }).errcode)
    assert.equal(10001, api("nothing_here", { query = "access_token=" .. t.access_token }).errcode)
    local s = vendors.state().yeastar
    assert.equal(1, s.logins)
    assert.equal(10, s.requests)
  end)

  it("caps live access tokens at 8 (60002) and blocks an IP after 5 failed logins (70004)", function()
    local function get_token(password)
      return api("get_token", { method = "POST", headers = { ["Content-Type"] = "application/json" },
        body = cjson.encode { username = F.yeastar.client_id, password = password or F.yeastar.client_secret } })
    end
    local tokens = {}
    for i = 1, 8 do tokens[i] = login().access_token end
    local ninth = get_token()
    assert.equal(60002, ninth.errcode)
    assert.equal("MAX LIMITATION EXCEEDED", ninth.errmsg)
    assert.equal(8, vendors.state().yeastar.live_access_tokens)
    assert.equal(0, api("del_token", { query = "access_token=" .. tokens[1] }).errcode)
    assert.equal(7, vendors.state().yeastar.live_access_tokens)
    login()                                    -- a revoked token frees its slot
    vendors.reset()
    for _ = 1, 4 do assert.equal(10005, get_token("wrong").errcode) end
    login()                                    -- a success clears the count
    for _ = 1, 5 do assert.equal(10005, get_token("wrong").errcode) end
    assert.equal(70004, get_token().errcode)   -- blocked, even with the right secret
    assert.equal(70004, get_token("wrong").errcode)
    local s = vendors.state().yeastar
    assert.equal(9, s.failed_logins)
    assert.equal(2, s.blocked_logins)
    vendors.reset()                            -- Security > Blocked IPs
    login()
  end)

  it("lists ~40 daily files with paging and checks parameters", function()
    local at = "access_token=" .. login().access_token
    local v = api("system_log/list", { query = at })
    assert.equal(40, v.total_number)
    assert.equal(40, #v.data)
    assert.matches("^%d%d%d%d%d%d%d%d$", v.data[1].file_name)
    local p2 = api("system_log/list", { query = at .. "&page=2&page_size=10&sort_by=file_name&order_by=asc" })
    assert.equal(10, #p2.data)
    assert.equal(v.data[30].file_name, p2.data[1].file_name)
    assert.equal(40002, api("system_log/list", { query = at .. "&page=0" }).errcode)
    assert.equal(40002, api("system_log/list", { query = at .. "&order_by=up" }).errcode)
  end)

  it("gives a download URL and serves a real .tar (Range), 60001 / 40002 on bad files", function()
    local at = "access_token=" .. login().access_token
    local names = api("system_log/list", { query = at }).data
    local files = names[1].file_name .. "," .. names[2].file_name
    local v = api("system_log/download", { query = at .. "&files=" .. files })
    assert.equal(0, v.errcode)
    assert.equal("SUCCESS", v.errmsg)
    assert.matches("^PBX%-SystemLog%-.*%.tar$", v.file)
    assert.equal("/api/download/" .. v.file, v.download_resource_url)
    local d = req { path = v.download_resource_url, query = at, headers = { ["User-Agent"] = "OpenAPI" } }
    assert.equal(200, d.status)
    local list, rc = sh("tar tf " .. q(d.file))
    assert.equal(0, rc)
    assert.matches(names[1].file_name, list)
    local part = req { path = v.download_resource_url, query = at, headers = { ["User-Agent"] = "OpenAPI" },
                       range = "0-511" }
    assert.equal(206, part.status)
    assert.equal(d.body:sub(1, 512), part.body)
    assert.equal(60001, api("system_log/download", { query = at .. "&files=19990101" }).errcode)
    assert.equal(40002, api("system_log/download", { query = at }).errcode)
    local nodl = req { path = v.download_resource_url, headers = { ["User-Agent"] = "OpenAPI" } }
    assert.equal(10004, decode(nodl).errcode)
  end)

  it("expires access tokens, refreshes, expires URLs (JSON or 403), hostile names", function()
    vendors.configure { yeastar = { access_token_ttl = 1, download_url_ttl = 1 } }
    local t = login()
    sh("sleep 1.5")
    assert.equal(10004, api("system_log/list", { query = "access_token=" .. t.access_token }).errcode)
    local n = api("refresh_token", { method = "POST", body = cjson.encode { refresh_token = t.refresh_token } })
    assert.equal(0, n.errcode)
    assert.equal(1, n.access_token_expire_time)
    assert.equal(10004, api("refresh_token", { method = "POST",
      body = cjson.encode { refresh_token = "bogus" } }).errcode)
    vendors.configure { yeastar = { access_token_ttl = cjson.null } }
    t = api("refresh_token", { method = "POST", body = cjson.encode { refresh_token = n.refresh_token } })
    local at = "access_token=" .. t.access_token
    local day = api("system_log/list", { query = at }).data[1].file_name
    local v = api("system_log/download", { query = at .. "&files=" .. day })
    sh("sleep 1.5")
    local stale = req { path = v.download_resource_url, query = at, headers = { ["User-Agent"] = "OpenAPI" } }
    assert.equal(200, stale.status)
    assert.equal(10004, decode(stale).errcode)
    vendors.configure { yeastar = { expired_download = "403", hostile_file = "../../etc/passwd" } }
    stale = req { path = v.download_resource_url, query = at, headers = { ["User-Agent"] = "OpenAPI" } }
    assert.equal(403, stale.status)
    v = api("system_log/download", { query = at .. "&files=" .. day })
    assert.equal("../../etc/passwd", v.file)
    assert.matches("^/api/download/PBX%-SystemLog%-", v.download_resource_url)
    assert.equal(0, api("del_token", { query = at }).errcode)
    assert.equal(10004, api("system_log/list", { query = at }).errcode)
    local s = vendors.state().yeastar
    assert.equal(1, s.logins)
    assert.equal(2, s.refreshes)
  end)
end)

describe("vendor emulator: Zenlayer", function()
  local function call(params, opt)
    opt = opt or {}
    local body = opt.raw or cjson.encode(params)
    if opt.cursor then body = body:sub(1, -2) .. ',"cursor":[' .. opt.cursor .. "]}" end
    local ct = opt.content_type or "application/json"
    local ts = opt.timestamp or os.time()
    local s = core.sign_zc2 { access_key_id = F.zenlayer.access_key_id,
      access_key_password = opt.password or F.zenlayer.access_key_password,
      timestamp = tostring(ts), host = host, content_type = ct, body = body }
    local h = { ["Content-Type"] = ct, ["X-ZC-Action"] = "DescribeLogs", ["X-ZC-Version"] = "2023-08-04" }
    for k, v in pairs(s.headers) do h[k] = v end
    local r = req { method = "POST", path = "/api/v2/zls", headers = h, body = body }
    local ok, v = pcall(cjson.decode, r.body)
    return r, ok and v or nil
  end
  local function window(from_days_ago, to_days_ago)
    return { startTime = utc(-from_days_ago * 86400), endTime = utc(-to_days_ago * 86400) }
  end

  it("answers a signed request with 20 records and a 19-digit cursor", function()
    local r, v = call(window(10, 0))
    assert.equal(200, r.status)
    assert.equal(20, #v.response.dataSet)
    assert.is_string(v.requestId)
    local cur = r.body:match('"cursor":%[(%d+)%]')
    assert.equal(19, #cur)
    local rec = v.response.dataSet[1]
    for _, k in ipairs { "resUid", "resType", "resEvent", "opsTime", "eventSource", "apiVersion", "opsUser",
                         "clientIP" } do
      assert.is_string(rec[k], k)
    end
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", rec.opsTime)
    assert.is_true(v.response.dataSet[1].opsTime > v.response.dataSet[20].opsTime)   -- newest first
    local ct = call(window(10, 0), { content_type = "application/json; charset=utf-8" })
    assert.equal(200, ct.status)
  end)

  it("refuses a tampered signature and an old timestamp", function()
    local r, v = call(window(1, 0), { password = "wrong" })
    assert.equal(401, r.status)
    assert.equal("SIGNATURE_FAILURE", v.code)
    assert.is_string(v.requestId)
    r, v = call(window(1, 0), { timestamp = os.time() - 16 * 60 })
    assert.equal(401, r.status)
    assert.equal("SIGNATURE_EXPIRED", v.code)
  end)

  it("enforces the API's rules with its codes", function()
    local function code(p) local r, v = call(p) return r.status, v and v.code end
    assert.same({ 400, "INVALID_TIME_FORMAT" }, { code { startTime = "2024-01-01 00:00:00", endTime = utc() } })
    assert.same({ 400, "INVALID_PARAMETER__ILLEGAL_TIME" }, { code(window(1, 2)) })
    assert.same({ 400, "INVALID_PARAMETER__ILLEGAL_TIME" }, { code(window(30, 0)) })
    assert.same({ 400, "INVALID_PARAMETER__ILLEGAL_TIME" }, { code(window(91, 80)) })
    local p = window(5, 0)
    p.size = 1001
    assert.same({ 400, "INVALID_PARAMETER_VALUE" }, { code(p) })
    p.size = 1000
    assert.same({ 200 }, { (call(p)).status })
  end)

  it("pages over a window: every matching record exactly once, 19-digit cursors, exact page count", function()
    local function all(params)
      local seen, list, cursor, pages = {}, {}, nil, 0
      repeat
        local r, v = call(params, { cursor = cursor })
        assert.equal(200, r.status)
        pages = pages + 1
        for _, rec in ipairs(v.response.dataSet) do
          local key = rec.opsTime .. rec.resUid
          assert.is_nil(seen[key], "record seen twice")
          seen[key] = true
          list[#list + 1] = rec
        end
        cursor = r.body:match('"cursor":%[(%d+)%]')
        if cursor then assert.equal(19, #cursor) end
      until not cursor
      return list, pages
    end
    local p = window(29, 0)
    p.size = 1000
    local big, bp = all(p)
    assert.is_true(#big > 1000)
    p.size = 250
    local small, sp = all(p)
    assert.equal(#big, #small)
    assert.equal(math.ceil(#big / 250), sp)
    assert.equal(math.ceil(#big / 1000), bp)
    assert.equal(bp + sp, vendors.state().zenlayer.pages)
    for i = 1, #big do assert.equal(big[i].opsTime, small[i].opsTime) end
    p = window(29, 0)
    p.size, p.resEvent, p.clientIP = 100, "rename bmi", "203.0.113.10"
    local f = all(p)
    assert.is_true(#f > 0)
    for _, rec in ipairs(f) do
      assert.equal("rename bmi", rec.resEvent)
      assert.equal("203.0.113.10", rec.clientIP)
    end
  end)

  it("refuses a cursor rounded through a double, or one it never issued", function()
    local p = window(10, 0)
    local r = call(p)
    local cur = r.body:match('"cursor":%[(%d+)%]')
    assert.equal(200, (call(p, { cursor = cur })).status)
    local rounded = string.format("%.0f", tonumber(cur))
    assert.are_not.equal(cur, rounded)
    local r2, v2 = call(p, { cursor = rounded })
    assert.equal(400, r2.status)
    assert.equal("INVALID_CURSOR", v2.code)
    local _, v3 = call(p, { cursor = "1691028715371000001" })
    assert.equal("INVALID_CURSOR", v3.code)
  end)

  it("throttles through the generic faults (429, REQUEST_LIMIT_EXCEEDED)", function()
    emu.fault { path = "/api/v2/zls", status = 429, retry_after = 1, count = 1,
                body = '{"requestId":"r-1","code":"REQUEST_LIMIT_EXCEEDED","message":"too many requests"}' }
    local r, v = call(window(1, 0))
    assert.equal(429, r.status)
    assert.equal("REQUEST_LIMIT_EXCEEDED", v.code)
    assert.equal(200, (call(window(1, 0))).status)
    emu.fault { path = "/api/v2/zls", cut_after = 50, count = 1 }
    r = call(window(1, 0))
    assert.are_not.equal(0, r.rc)
    assert.equal(50, #r.body)
  end)
end)
