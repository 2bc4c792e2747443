local loghaul = require "loghaul"
local fake = require "vendors.fake"
local util = require "loghaul.util"

local function client(script, extra)
  local clock = fake.clock(util.parse_utc("2024-01-02T03:04:05Z"))
  local o = { base_url = "https://10.22.26.181:28080", access_key = "globalaktest",
              secret_key = "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p" }
  for k, v in pairs(extra or {}) do o[k] = v end
  local opts, session = fake.opts(o, script, clock)
  return loghaul.cms(opts), session
end

describe("cms:upload_client_log", function()
  local path
  before_each(function()
    path = os.tmpname()
    local f = assert(io.open(path, "wb")) f:write("PK zip bytes") f:close()
  end)
  after_each(function() os.remove(path) end)

  it("streams a multipart part named file with FileType 0 and an auth-v2 signature (VENDORS vector)", function()
    local cms, session = client{ { status = 200, body = "" } }
    local res = assert(cms:upload_client_log(path, { filename = "OELOG_99991093_10.1.2.3_20250226162127.zip" }))
    assert.same({ status = "200" }, res)
    local req = session.requests[1]
    assert.equal("POST", req.method)
    assert.equal("https://10.22.26.181:28080/rest/cmsapp/v1/ClientLog/uploadClientLog", req.url)
    assert.equal("0", req.headers.FileType)
    assert.same({ { name = "file", path = path, filename = "OELOG_99991093_10.1.2.3_20250226162127.zip",
                    content_type = "application/octet-stream" } }, req.form)
    assert.equal("auth-v2/globalaktest/2024-01-02T03:04:05Z/host/"
      .. "6d78ca160c668ec7cc1dd8a88b7aa13c98e42e9d92511c0b2e3222508b7e4022", req.headers.Authorization)
  end)

  it("refuses a missing file before sending", function()
    local cms, session = client{}
    local res, err = cms:upload_client_log("/nonexistent/x.zip")
    assert.is_nil(res)
    assert.equal("io", err.kind)
    assert.matches("/nonexistent/x.zip", err.message)
    assert.equal(0, #session.requests)
  end)

  it("reports a 401 as auth, without the secret key", function()
    local cms = client{ { status = 401, body = "" } }
    local _, err = cms:upload_client_log(path)
    assert.same({ "auth", 401, false, 1 }, { err.kind, err.status, err.retryable, err.attempts })
    assert.not_matches("1qaz2wsx", tostring(err))
  end)

  it("accepts a JSON body with status 200 and refuses another status", function()
    local cms = client{ { status = 200, body = '{"status":"200"}' }, { status = 200, body = '{"status":"500"}' } }
    assert.equal("200", assert(cms:upload_client_log(path)).status)
    local _, err = cms:upload_client_log(path)
    assert.equal("api", err.kind)
    assert.equal("500", err.code)
  end)
end)

describe("loghaul", function()
  it("has its version and lazy constructors", function()
    assert.equal("0.1.0", loghaul.version)
    assert.is_function(loghaul.cms)
    assert.is_function(loghaul.clouddc)
    assert.is_function(loghaul.yeastar)
    assert.is_function(loghaul.zenlayer)
    assert.is_function(loghaul.errors.is)
  end)

  it("warns when TLS verification is turned off, through log", function()
    local lines = {}
    local opts = fake.opts{ base_url = "https://h", access_key = "a", secret_key = "sssss",
                            insecure = true, log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end }
    loghaul.cms(opts)
    assert.matches("^warn TLS verification is OFF", lines[1])
  end)

  it("raises on programming errors", function()
    assert.has_error(function() loghaul.cms{ base_url = "https://h" } end)
    assert.has_error(function() loghaul.zenlayer{ access_key_id = 1, access_key_password = "x" } end)
    assert.has_error(function() loghaul.yeastar{ base_url = "ftp://x", client_id = "a", client_secret = "b" } end)
  end)
end)
