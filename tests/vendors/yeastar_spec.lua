local loghaul = require "loghaul"
local fake = require "vendors.fake"

local function token(n, at, rt)
  return { status = 200, body = ('{"errcode":0,"errmsg":"SUCCESS","access_token_expire_time":%d,'
    .. '"access_token":"AT%d-xyz","refresh_token_expire_time":%d,"refresh_token":"RT%d-xyz"}'):format(
      at or 1800, n, rt or 86400, n) }
end
local LIST = { status = 200,
  body = '{"errcode":0,"errmsg":"SUCCESS","total_number":1,"data":[{"file_name":"20240610"}]}' }
local EXPIRED = { status = 200, body = '{"errcode":10004,"errmsg":"TOKEN EXPIRED"}' }
local LINK = { status = 200, body = '{"errcode":0,"errmsg":"SUCCESS","file":"PBX-SystemLog-1.tar",'
  .. '"download_resource_url":"/api/download/PBX-SystemLog-1.tar"}' }

local function client(script, extra)
  local o = { base_url = "https://pbx.example.com:8088", client_id = "ID", client_secret = "SECRET-xyz" }
  for k, v in pairs(extra or {}) do o[k] = v end
  local opts, session, clock = fake.opts(o, script)
  return loghaul.yeastar(opts), session, clock
end

describe("yeastar", function()
  it("logs in once and puts the token in the query string only", function()
    local pbx, session = client{ token(1), LIST, LIST }
    local page = assert(pbx:list_system_logs{ page = 1, page_size = 100, order_by = "desc" })
    assert.equal(1, page.total_number)
    assert.equal("20240610", page.data[1].file_name)
    assert(pbx:list_system_logs())
    local r = session.requests
    assert.equal(3, #r)
    assert.equal("https://pbx.example.com:8088/openapi/v1.0/get_token", r[1].url)
    assert.same({ username = "ID", password = "SECRET-xyz" }, fake.json(r[1].body))
    assert.equal("https://pbx.example.com:8088/openapi/v1.0/system_log/list?order_by=desc&page=1&page_size=100"
      .. "&access_token=AT1-xyz", r[2].url)
    -- no arguments: newest first (order_by = "desc"), the PBX's own page and size
    assert.equal("https://pbx.example.com:8088/openapi/v1.0/system_log/list?order_by=desc&access_token=AT1-xyz",
                 r[3].url)
    for _, req in ipairs(r) do
      for k, v in pairs(req.headers) do
        assert.not_matches("AT1", k .. v)
      end
    end
  end)

  it("refreshes before the access token expires", function()
    local pbx, session, clock = client{ token(1), LIST, token(2), LIST }
    assert(pbx:list_system_logs())
    clock.t = clock.t + 1790
    assert(pbx:list_system_logs())
    assert.matches("/refresh_token$", session.requests[3].url)
    assert.same({ refresh_token = "RT1-xyz" }, fake.json(session.requests[3].body))
    assert.matches("access_token=AT2%-xyz$", session.requests[4].url)
  end)

  it("on 10004 refreshes and retries once", function()
    local pbx, session = client{ token(1), EXPIRED, token(2), LIST }
    assert(pbx:list_system_logs())
    assert.matches("/refresh_token$", session.requests[3].url)
    assert.matches("access_token=AT2%-xyz$", session.requests[4].url)
  end)

  it("logs in again when the refresh token is dead", function()
    local pbx, session = client{ token(1), EXPIRED, EXPIRED, token(2), LIST }
    assert(pbx:list_system_logs())
    assert.matches("/get_token$", session.requests[4].url)
    assert.equal(5, #session.requests)
  end)

  it("reports 10004 as auth after the renewal failed, without secrets", function()
    local pbx = client{ token(1), EXPIRED, token(2), EXPIRED }
    local _, err = pbx:list_system_logs()
    assert.same({ "auth", "10004", "yeastar" }, { err.kind, err.code, err.vendor })
    local s = tostring(err)
    assert.not_matches("AT%d%-xyz", s)
    assert.not_matches("SECRET%-xyz", s)
  end)

  it("classifies errcodes: 40002 is an api error, not retried", function()
    local pbx, session = client{ token(1), { status = 200, body = '{"errcode":40002,"errmsg":"PARAMETER ERROR"}' } }
    local _, err = pbx:list_system_logs()
    assert.same({ "api", "40002", 200, false }, { err.kind, err.code, err.status, err.retryable })
    assert.equal(2, #session.requests)
  end)

  it("asks for a download URL with the files joined by commas", function()
    local pbx, session = client{ token(1), LINK }
    local link = assert(pbx:system_log_download_url{ "20240422", "20240423" })
    assert.equal("/api/download/PBX-SystemLog-1.tar", link.download_resource_url)
    assert.equal("https://pbx.example.com:8088/openapi/v1.0/system_log/download?files=20240422,20240423"
      .. "&access_token=AT1-xyz", session.requests[2].url)
    local _, err = pbx:system_log_download_url{ "a,b" }
    assert.equal("invalid", err.kind)
  end)

  it("refuses a download URL that points to another host", function()
    local pbx = client{ token(1), { status = 200, body = '{"errcode":0,"file":"x.tar",'
      .. '"download_resource_url":"//evil.example/x.tar"}' } }
    local _, err = pbx:system_log_download_url{ "20240422" }
    assert.equal("INVALID_RESPONSE", err.code)
  end)

  it("downloads the files named by the PBX into dest", function()
    local dir = fake.tmpdir()
    local pbx, session = client{ token(1), LINK, { status = 200, file = "TARBYTES" } }
    local file = assert(pbx:download_system_logs({ "20240422" }, { dest = dir .. "/" }))
    assert.equal(dir .. "/PBX-SystemLog-1.tar", file.path)
    assert.equal(8, file.bytes)
    assert.equal("https://pbx.example.com:8088/api/download/PBX-SystemLog-1.tar?access_token=AT1-xyz",
                 session.requests[3].url)
    assert.same({ "PBX-SystemLog-1.tar" }, fake.ls(dir))
    os.execute("rm -rf " .. dir)
  end)

  it("renews a stale URL once, then fails without leaving a file", function()
    local dir = fake.tmpdir()
    local pbx, session = client{ token(1), LINK, { status = 404, body = "Not Found" }, LINK,
                                 { status = 200, file = "TARBYTES" } }
    assert(pbx:download_system_logs({ "20240422" }, { dest = dir .. "/" }))
    assert.equal(5, #session.requests)
    local pbx2, session2 = client{ token(1), LINK, { status = 403, body = "Forbidden" }, token(2), LINK,
                                   { status = 403, body = "Forbidden" } }
    local res, err = pbx2:download_system_logs({ "20240422" }, { dest = dir .. "/x/" })
    assert.is_nil(res)
    assert.equal(403, err.status)
    -- a 403 is an auth answer: token and URL are renewed once (never the same URL again), then it fails
    assert.equal(6, #session2.requests)
    assert.matches("/refresh_token$", session2.requests[4].url)
    assert.matches("/system_log/download%?", session2.requests[5].url)
    assert.same({}, fake.ls(dir .. "/x"))
    os.execute("rm -rf " .. dir)
  end)
end)
