local loghaul = require "loghaul"
local fake = require "vendors.fake"

local TASK = '{"export_id":"1","status":"Running","percentage":"30%","created_at":"2024-07-01T11:32:49Z"}'

local function client(script, auth, extra)
  local o = { endpoint = "https://clouddc.cn-east-3.myhuaweicloud.com", project_id = "proj1",
              auth = auth or { token = "TOKEN-abcdef" } }
  for k, v in pairs(extra or {}) do o[k] = v end
  local opts, session, clock = fake.opts(o, script)
  return loghaul.clouddc(opts), session, clock
end

local IAM = { iam_endpoint = "https://iam.cn-east-3.myhuaweicloud.com", user = "U", password = "PW-secret-1",
              domain = "D", project = "cn-east-3" }

local function iam_ok(token)
  return { status = 201, headers = { ["X-Subject-Token"] = token }, body = '{"token":{}}' }
end

describe("clouddc", function()
  it("creates an export with X-Auth-Token and normalises the answer", function()
    local dc, session = client{ { status = 202, body = TASK } }
    local task = assert(dc:export_server_logs("srv-1"))
    local req = session.requests[1]
    assert.equal("POST", req.method)
    assert.equal("https://clouddc.cn-east-3.myhuaweicloud.com/v1/proj1/physicalservers/srv-1/logs/exports", req.url)
    assert.equal("TOKEN-abcdef", req.headers["X-Auth-Token"])
    assert.same({ export_id = "1", status = "Running", percentage = 30, created_at = "2024-07-01T11:32:49Z" }, task)
  end)

  it("never retries a create that may have reached the server, but does after a 429", function()
    local dc, session = client{ { status = 500, body = '{"error_code":"CDC.500","error_msg":"boom"}' } }
    local task, err = dc:export_server_logs("srv-1")
    assert.is_nil(task)
    assert.equal(1, #session.requests)
    assert.same({ "api", "CDC.500", 500, true, 1 }, { err.kind, err.code, err.status, err.retryable, err.attempts })
    local dc2, session2, clock2 = client{
      { status = 429, body = '{"error_code":"APIG.0308","error_msg":"too many"}', headers = { ["Retry-After"] = "2" } },
      { err = { kind = "network", code = "CURLE_COULDNT_CONNECT", message = "refused" } },
      { status = 202, body = TASK },
    }
    assert(dc2:export_server_logs("srv-1"))
    assert.equal(3, #session2.requests)
    assert.equal(2, clock2.sleeps[1])
  end)

  it("retries a create after a timeout that sent nothing, never after one that sent the request", function()
    local dc, session = client{
      { err = { kind = "timeout", code = "CURLE_OPERATION_TIMEDOUT", message = "connect timed out",
                request_sent = false } },
      { status = 202, body = TASK },
    }
    assert(dc:export_server_logs("srv-1"))
    assert.equal(2, #session.requests)
    local dc2, session2 = client{
      { err = { kind = "timeout", code = "CURLE_OPERATION_TIMEDOUT", message = "no answer", request_sent = true } },
      { status = 202, body = TASK },
    }
    local task, err = dc2:export_server_logs("srv-1")
    assert.is_nil(task)
    assert.equal("timeout", err.kind)
    assert.equal(1, #session2.requests)
  end)

  it("reads the status case-insensitively and retries status polls on 5xx", function()
    local dc, session = client{ { status = 503, body = "<html>busy</html>" },
                                { status = 200, body = '{"export_id":"1","status":"COMPLETED","percentage":100}' } }
    local st = assert(dc:show_logs_export_status("srv-1", "1"))
    assert.equal("COMPLETED", st.status)   -- as the API sent it
    assert.equal(100, st.percentage)
    assert.equal(2, #session.requests)
    assert.equal("GET", session.requests[2].method)
    assert.matches("/logs/exports/1$", session.requests[2].url)
  end)

  it("refuses ids that would change the path", function()
    local dc, session = client{}
    local _, err = dc:show_logs_export_status("../x", "1")
    assert.equal("invalid", err.kind)
    assert.equal(0, #session.requests)
  end)

  it("export_and_download polls with growing waits, then downloads", function()
    local dir = fake.tmpdir()
    local events = {}
    local dc, session, clock = client({
      { status = 202, body = TASK },
      { status = 200, body = '{"export_id":"1","status":"processing","percentage":"60%"}' },
      { status = 200, body = '{"export_id":"1","status":"Completed","percentage":"100%"}' },
      { status = 200, file = "TARGZ", headers = { ["Content-Disposition"] = "attachment; filename=SN42-dump.tar.gz" } },
    }, nil, { on_progress = function(ev) events[#events + 1] = ev end })
    local file = assert(dc:export_and_download("srv-1", { dest = dir .. "/", poll_interval = 5 }))
    assert.equal(dir .. "/SN42-dump.tar.gz", file.path)
    assert.equal(5, file.bytes)
    assert.same({ 1, 1.5 }, clock.sleeps)   -- a short first wait growing to poll_interval (5)
    assert.matches("/logs/exports/1/content$", session.requests[4].url)
    assert.equal("export", events[1].phase)
    assert.equal(30, events[1].percent)
    os.execute("rm -rf " .. dir)
  end)

  it("export_and_download waits at least 1 s between polls, even with poll_interval = 0", function()
    local dir = fake.tmpdir()
    local dc, _, clock = client{
      { status = 202, body = TASK },
      { status = 200, body = TASK },
      { status = 200, body = '{"export_id":"1","status":"Completed","percentage":"100%"}' },
      { status = 200, file = "TARGZ" },
    }
    assert(dc:export_and_download("srv-1", { dest = dir .. "/x.tar.gz", poll_interval = 0, max_poll_interval = 0 }))
    assert.same({ 1, 1 }, clock.sleeps)
    os.execute("rm -rf " .. dir)
  end)

  it("export_and_download fails on an unknown status and on its deadline", function()
    local dc = client{ { status = 202, body = '{"export_id":"1","status":"Failed"}' } }
    local _, err = dc:export_and_download("srv-1", {})
    assert.equal("EXPORT_FAILED", err.code)
    assert.matches("Failed", tostring(err))
    local dc2 = client{ { status = 202, body = TASK }, default = { status = 200, body = TASK } }
    local _, err2 = dc2:export_and_download("srv-1", { poll_interval = 10, timeout = 60 })
    assert.equal("timeout", err2.kind)
    assert.equal("EXPORT_TIMEOUT", err2.code)
  end)

  it("gets an IAM token once (201, X-Subject-Token) and reuses it", function()
    local dc, session = client({ iam_ok("IAMTOKEN-1"), { status = 202, body = TASK },
                                 { status = 200, body = TASK } }, IAM)
    assert(dc:export_server_logs("srv-1"))
    assert(dc:show_logs_export_status("srv-1", "1"))
    local r = session.requests
    assert.equal("https://iam.cn-east-3.myhuaweicloud.com/v3/auth/tokens?nocatalog=true", r[1].url)
    assert.same({ auth = { identity = { methods = { "password" }, password = { user = { name = "U",
      password = "PW-secret-1", domain = { name = "D" } } } }, scope = { project = { name = "cn-east-3" } } } },
      fake.json(r[1].body))
    assert.equal("IAMTOKEN-1", r[2].headers["X-Auth-Token"])
    assert.equal("IAMTOKEN-1", r[3].headers["X-Auth-Token"])
    assert.equal(3, #r)
  end)

  it("renews the IAM token once on a 401 and before its 24 h expiry", function()
    local dc, session, clock = client({
      iam_ok("T1"),
      { status = 401, body = '{"error_code":"APIG.1002","error_msg":"token expired"}' },
      iam_ok("T2"), { status = 200, body = TASK },
      iam_ok("T3"), { status = 200, body = TASK },
    }, IAM)
    assert(dc:show_logs_export_status("srv-1", "1"))
    assert.equal("T2", session.requests[4].headers["X-Auth-Token"])
    clock.t = clock.t + 23.5 * 3600
    assert(dc:show_logs_export_status("srv-1", "1"))
    assert.equal("T3", session.requests[6].headers["X-Auth-Token"])
  end)

  it("gives up after one renewal when the API keeps answering 401", function()
    local dc, session = client({ iam_ok("T1"), { status = 401, body = '{"error_code":"E","error_msg":"no"}' },
                                 iam_ok("T2"), { status = 401, body = '{"error_code":"E","error_msg":"no"}' } }, IAM)
    local _, err = dc:show_logs_export_status("srv-1", "1")
    assert.equal("auth", err.kind)
    assert.equal(4, #session.requests)
    assert.not_matches("PW%-secret%-1", tostring(err))
  end)

  it("signs with SDK-HMAC-SHA256 when given AK/SK", function()
    local dc, session = client({ { status = 202, body = TASK } }, { access_key = "AK1", secret_key = "SK-secret" })
    assert(dc:export_server_logs("srv-1"))
    local h = session.requests[1].headers
    assert.matches("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$", h["X-Sdk-Date"])
    assert.matches("^SDK%-HMAC%-SHA256 Access=AK1, SignedHeaders=content%-type;host;x%-sdk%-date, Signature=%x+$",
                   h.Authorization)
  end)
end)
