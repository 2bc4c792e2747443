local loghaul = require "loghaul"
local fake = require "vendors.fake"

describe("the request pipeline", function()
  it("never logs a token, secret or password", function()
    local lines = {}
    local opts, session = fake.opts({ base_url = "https://pbx:8088", client_id = "ID",
      client_secret = "CLIENT-SECRET-9",
      log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end }, {
      { status = 200, body = '{"errcode":0,"access_token":"ACCESS-TOKEN-7","refresh_token":"REFRESH-TOKEN-7"}' },
      { status = 503, body = "busy ACCESS-TOKEN-7" },
      { err = { kind = "timeout", code = "CURLE_OPERATION_TIMEDOUT",
                message = "timeout on /x?access_token=ACCESS-TOKEN-7" } },
      { status = 200, body = '{"errcode":40001,"errmsg":"bad REFRESH-TOKEN-7"}' },
    })
    local pbx = loghaul.yeastar(opts)
    local _, err = pbx:list_system_logs()
    assert.equal(4, #session.requests)
    assert.is_true(#lines > 3)
    local all = table.concat(lines, "\n") .. tostring(err) .. err.message
    for _, secret in ipairs{ "ACCESS%-TOKEN%-7", "REFRESH%-TOKEN%-7", "CLIENT%-SECRET%-9" } do
      assert.not_matches(secret, all)
    end
  end)

  it("retries network failures and timeouts of reads with growing jittered waits", function()
    local opts, session, clock = fake.opts({ access_key_id = "A", access_key_password = "PPPP",
      retry = { max_attempts = 4, base_delay = 1, max_delay = 3 } }, {
      { err = { kind = "network", code = "CURLE_RECV_ERROR", message = "reset" } },
      { err = { kind = "timeout", code = "CURLE_OPERATION_TIMEDOUT", message = "slow" } },
      { status = 502, body = "<html>bad gateway</html>" },
      { status = 200, body = '{"requestId":"r","response":{"dataSet":[]}}' },
    })
    opts._random = function() return 1 end
    local zl = loghaul.zenlayer(opts)
    local now = os.date("!%Y-%m-%dT%H:%M:%SZ", clock.t - 3600)
    local page = assert(zl:describe_logs{ startTime = now, endTime = os.date("!%Y-%m-%dT%H:%M:%SZ", clock.t) })
    assert.same({}, page.dataSet)
    assert.is_nil(page.cursor)
    assert.equal(4, #session.requests)
    assert.same({ 1, 2, 3 }, clock.sleeps)
  end)

  it("says how many attempts were made and why each failed", function()
    local opts = fake.opts({ access_key_id = "A", access_key_password = "PPPP", retry = { max_attempts = 3 } }, {
      default = { status = 503, body = '{"requestId":"r","code":"SERVICE_TEMPORARY_UNAVAILABLE","message":"x"}' } })
    local zl = loghaul.zenlayer(opts)
    local t = os.time()
    local _, err = zl:describe_logs{ startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", t - 60),
                                     endTime = os.date("!%Y-%m-%dT%H:%M:%SZ", t) }
    assert.equal(3, err.attempts)
    assert.is_true(err.retryable)
    assert.matches("after 3 attempts %(HTTP 503 SERVICE_TEMPORARY_UNAVAILABLE; HTTP 503", tostring(err))
  end)

  it("after renewing credentials, retries the operation's own URL, method and body", function()
    local opts, session = fake.opts({ endpoint = "https://dc.test", project_id = "p1",
      auth = { iam_endpoint = "https://iam.test", user = "U", password = "PW-secret-1", domain = "D",
               project = "p" } }, {
      { status = 201, headers = { ["X-Subject-Token"] = "T1" }, body = "{}" },
      { status = 303, headers = { Location = "/v1/p1/elsewhere" } },
      { status = 401, body = '{"error_code":"APIG.1002","error_msg":"token expired"}' },
      { status = 201, headers = { ["X-Subject-Token"] = "T2" }, body = "{}" },
      { status = 202, body = '{"export_id":"1","status":"Running"}' },
    })
    local dc = loghaul.clouddc(opts)
    assert(dc:export_server_logs("srv-1"))
    local r = session.requests
    assert.equal(5, #r)
    assert.equal("GET", r[3].method)
    assert.equal("https://dc.test/v1/p1/elsewhere", r[3].url)
    assert.equal("POST", r[5].method)
    assert.equal("https://dc.test/v1/p1/physicalservers/srv-1/logs/exports", r[5].url)
    assert.equal("{}", r[5].body)
    assert.equal("T2", r[5].headers["X-Auth-Token"])
  end)

  it("treats a truncated JSON answer as an http error", function()
    local opts = fake.opts({ access_key_id = "A", access_key_password = "PPPP", retry = { max_attempts = 1 } },
                           { { status = 200, body = '{"requestId":"r","response":{"dataSet":[' } })
    local zl = loghaul.zenlayer(opts)
    local t = os.time()
    local _, err = zl:describe_logs{ startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", t - 60),
                                     endTime = os.date("!%Y-%m-%dT%H:%M:%SZ", t) }
    assert.equal("http", err.kind)
    assert.equal("INVALID_RESPONSE", err.code)
  end)
end)
