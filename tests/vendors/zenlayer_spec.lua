local loghaul = require "loghaul"
local fake = require "vendors.fake"
local util = require "loghaul.util"

local NOW = util.parse_utc("2023-08-10T00:00:00Z")

local function page(records, cursor)
  local parts = {}
  for i, r in ipairs(records) do parts[i] = require("cjson").encode(r) end
  local c = cursor and (',"cursor":' .. cursor) or ""
  return { status = 200, headers = { ["Content-Type"] = "application/json" },
           body = '{"requestId":"R1","response":{"requestId":"R1","dataSet":[' .. table.concat(parts, ",") .. "]"
             .. c .. "}}" }
end

local function client(script, extra)
  local clock = fake.clock(NOW)
  local o = { access_key_id = "AKID", access_key_password = "Gu5t9xGARNpq86cd98joQYCN3" }
  for k, v in pairs(extra or {}) do o[k] = v end
  local opts, session = fake.opts(o, script, clock)
  return loghaul.zenlayer(opts), session, clock
end

describe("zenlayer:describe_logs", function()
  it("sends DescribeLogs with the ZC2 headers and returns the API's fields", function()
    local zl, session = client{ page({ { resEvent = "rename bmi", opsTime = "2023-08-03T06:52:23.008Z" } },
                                     "[1691028715371]") }
    local p = assert(zl:describe_logs{ startTime = "2023-07-26T16:00:00Z", endTime = "2023-08-03T15:59:59Z",
                                       size = 20 })
    local req = session.requests[1]
    assert.equal("POST", req.method)
    assert.equal("https://console.zenlayer.com/api/v2/zls", req.url)
    assert.equal("DescribeLogs", req.headers["X-ZC-Action"])
    assert.equal("2023-08-04", req.headers["X-ZC-Version"])
    assert.equal("application/json", req.headers["Content-Type"])
    assert.equal("ZC2-HMAC-SHA256", req.headers["X-ZC-Signature-Method"])
    assert.equal(tostring(NOW), req.headers["X-ZC-Timestamp"])
    assert.matches("^ZC2%-HMAC%-SHA256 Credential=AKID, SignedHeaders=content%-type;host, Signature=%x+$",
                   req.headers.Authorization)
    assert.same({ startTime = "2023-07-26T16:00:00Z", endTime = "2023-08-03T15:59:59Z", size = 20 },
                fake.json(req.body))
    assert.equal("R1", p.requestId)
    assert.equal("rename bmi", p.dataSet[1].resEvent)
    assert.equal("[1691028715371]", p.cursor)
  end)

  it("signs exactly as the published vector (real signer, injected clock)", function()
    local core = require "loghaul.core"
    local r = core.sign_zc2{ access_key_id = "AKID", access_key_password = "Gu5t9xGARNpq86cd98joQYCN3",
      timestamp = "1673361177", host = "console.zenlayer.com", content_type = "application/json; charset=utf-8",
      body = '{"pageSize":10,"pageNum":1,"zoneId":"HKG-A"}' }
    assert.equal("efb356c32e55c781e10dc676da59462c22596d82e91c57803666243379555b2f", r.signature)
  end)

  it("sends a 19-digit cursor back byte-identical", function()
    local cursor = "[1691028715371000123]"
    local zl, session = client{ page({ { opsTime = "2023-08-03T06:52:23.008Z" } }, cursor), page({}, nil) }
    local p1 = assert(zl:describe_logs{ startTime = "2023-08-01T00:00:00Z", endTime = "2023-08-03T00:00:00Z" })
    assert.equal(cursor, p1.cursor)
    local p2 = assert(zl:describe_logs{ startTime = "2023-08-01T00:00:00Z", endTime = "2023-08-03T00:00:00Z",
                                        cursor = p1.cursor })
    assert.truthy(session.requests[2].body:find('"cursor":[1691028715371000123]', 1, true))
    assert.is_nil(p2.cursor)
  end)

  it("refuses before sending, with the API's codes", function()
    local zl, session = client{}
    local cases = {
      { { startTime = "2023-08-01 00:00:00", endTime = "2023-08-02T00:00:00Z" }, "INVALID_TIME_FORMAT" },
      { { startTime = "2023-02-30T00:00:00Z", endTime = "2023-08-02T00:00:00Z" }, "INVALID_TIME_FORMAT" },
      { { startTime = "2023-08-02T00:00:00Z", endTime = "2023-08-01T00:00:00Z" }, "INVALID_PARAMETER__ILLEGAL_TIME" },
      { { startTime = "2023-07-01T00:00:00Z", endTime = "2023-07-31T00:00:00Z" }, "INVALID_PARAMETER__ILLEGAL_TIME" },
      { { startTime = "2023-05-01T00:00:00Z", endTime = "2023-05-02T00:00:00Z" }, "INVALID_PARAMETER__ILLEGAL_TIME" },
    }
    for _, c in ipairs(cases) do
      local p, err = zl:describe_logs(c[1])
      assert.is_nil(p)
      assert.equal("invalid", err.kind)
      assert.equal(c[2], err.code)
    end
    for _, size in ipairs{ 0, 1001, 2.5 } do
      local p, err = zl:describe_logs{ startTime = "2023-08-01T00:00:00Z", endTime = "2023-08-02T00:00:00Z",
                                       size = size }
      assert.is_nil(p)
      assert.equal("invalid", err.kind)
    end
    local _, err = zl:describe_logs{ startTime = "2023-08-01T00:00:00Z", endTime = "2023-08-02T00:00:00Z",
                                     cursor = '1],"size":5,"x":[' }
    assert.equal("invalid", err.kind)
    assert.equal(0, #session.requests)
  end)

  it("classifies the error envelope and retries throttling", function()
    local zl, session, clock = client{
      { status = 429, body = '{"requestId":"Q1","code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}',
        headers = { ["Retry-After"] = "3" } },
      { status = 200, body = '{"requestId":"Q2","code":"SERVICE_TEMPORARY_UNAVAILABLE","message":"later"}' },
      { status = 400, body = '{"requestId":"Q3","code":"INVALID_PARAMETER__ILLEGAL_TIME","message":"Invalid time."}' },
    }
    local p, err = zl:describe_logs{ startTime = "2023-08-01T00:00:00Z", endTime = "2023-08-02T00:00:00Z" }
    assert.is_nil(p)
    assert.equal(3, #session.requests)
    assert.equal(3, clock.sleeps[1])
    assert.same({ kind = "api", code = "INVALID_PARAMETER__ILLEGAL_TIME", status = 400, request_id = "Q3",
                  attempts = 3, retryable = false, vendor = "zenlayer", operation = "DescribeLogs" },
                { kind = err.kind, code = err.code, status = err.status, request_id = err.request_id,
                  attempts = err.attempts, retryable = err.retryable, vendor = err.vendor, operation = err.operation })
    assert.not_matches("Gu5t9xGARNpq86cd98joQYCN3", tostring(err))
  end)
end)

describe("zenlayer:each_log", function()
  it("follows cursors, passes filters and caps page_size at 1000", function()
    local zl, session = client{
      page({ { resEvent = "a", opsTime = "2023-08-02T00:00:01.000Z" } }, "[1691028715371000123]"),
      page({ { resEvent = "b", opsTime = "2023-08-01T00:00:01.000Z" } }, "[]"),
    }
    local got = {}
    for rec in zl:each_log{ start_time = "2023-08-01T00:00:00Z", end_time = "2023-08-03T00:00:00Z",
                            res_event = "rename bmi", res_uid = "bmi/1", client_ip = "10.0.0.1", page_size = 5000 } do
      got[#got + 1] = rec.resEvent
    end
    assert.same({ "a", "b" }, got)
    local b1, b2 = fake.json(session.requests[1].body), session.requests[2].body
    assert.same({ startTime = "2023-08-01T00:00:00Z", endTime = "2023-08-03T00:00:00Z", size = 1000,
                  resEvent = "rename bmi", resUid = "bmi/1", clientIP = "10.0.0.1" }, b1)
    assert.truthy(b2:find('"cursor":[1691028715371000123]', 1, true))
  end)

  it("splits a range longer than 30 days into legal windows, each record once", function()
    local seen = {}
    local zl, session = client{ default = function(req)
      local b = fake.json(req.body)
      seen[#seen + 1] = { b.startTime, b.endTime }
      -- a record exactly on every window's edges
      local recs = { { opsTime = b.startTime:sub(1, 19) .. ".000Z", resUid = "edge" .. b.startTime },
                     { opsTime = b.endTime:sub(1, 19) .. ".000Z", resUid = "edge" .. b.endTime } }
      local parts = {}
      for i, r in ipairs(recs) do parts[i] = require("cjson").encode(r) end
      return { status = 200, headers = {}, body = '{"requestId":"x","response":{"dataSet":['
        .. table.concat(parts, ",") .. '],"cursor":[]}}' }
    end }
    local count, uids = 0, {}
    for rec in zl:each_log{ start_time = "2023-06-01T00:00:00Z", end_time = "2023-08-01T00:00:00Z" } do
      count = count + 1
      assert.is_nil(uids[rec.resUid], "record yielded twice: " .. rec.resUid)
      uids[rec.resUid] = true
    end
    assert.equal(3, #session.requests)
    for i, w in ipairs(seen) do
      local s, e = util.parse_utc(w[1]), util.parse_utc(w[2])
      assert.is_true(e - s < 30 * 86400, "window " .. i .. " too long")
      if i > 1 then assert.equal(seen[i - 1][2], w[1]) end
    end
    assert.equal("2023-06-01T00:00:00Z", seen[1][1])
    assert.equal("2023-08-01T00:00:00Z", seen[3][2])
    assert.equal(4, count) -- 3 windows × 2 edge records, shared edges once
  end)

  it("raises CURSOR_LOOP when the server alternates cursors instead of looping forever", function()
    local n = 0
    local zl, session = client{ default = function()
      n = n + 1
      if n > 10 then error("still looping after 10 pages") end
      local p = page({ { resEvent = "r" .. n, opsTime = "2023-08-01T12:00:00.000Z" } }, n % 2 == 1 and "[1]" or "[2]")
      p.headers = {}
      return p
    end }
    local ok, err = pcall(function()
      for _ in zl:each_log{ start_time = "2023-08-01T00:00:00Z", end_time = "2023-08-02T00:00:00Z" } do end
    end)
    assert.is_false(ok)
    assert.equal("CURSOR_LOOP", err.code)
    assert.equal("http", err.kind)
    assert.equal(3, #session.requests)
  end)

  it("checks the 90-day rule once, not again on every page of a long iteration", function()
    local clock
    local zl, session
    zl, session, clock = client{ default = function()
      -- a slow consumer: two days pass per page, and the start soon lies more than 90 days back
      clock.t = clock.t + 2 * 86400
      local n = #session.requests
      return page({ { resEvent = "r" .. n, opsTime = "2023-05-15T00:00:00.000Z" } }, n < 3 and ("[" .. n .. "]") or nil)
    end }
    local got = {}
    for rec in zl:each_log{ start_time = "2023-05-13T00:00:00Z", end_time = "2023-05-20T00:00:00Z" } do
      got[#got + 1] = rec.resEvent
    end
    assert.same({ "r1", "r2", "r3" }, got)
  end)

  it("raises the error object for a refused range, before sending", function()
    local zl, session = client{}
    local ok, err = pcall(zl.each_log, zl, { start_time = "2023-04-01T00:00:00Z", end_time = "2023-05-01T00:00:00Z" })
    assert.is_false(ok)
    assert.equal("invalid", err.kind)
    assert.equal("INVALID_PARAMETER__ILLEGAL_TIME", err.code)
    assert.matches("90 days", tostring(err))
    ok, err = pcall(zl.each_log, zl, { start_time = "yesterday", end_time = "2023-08-01T00:00:00Z" })
    assert.is_false(ok)
    assert.equal("INVALID_TIME_FORMAT", err.code)
    assert.equal(0, #session.requests)
  end)

  it("raises a page that still fails after its retries", function()
    local fail = { status = 500, body = '{"requestId":"E","code":"INTERNAL","message":"x"}' }
    local zl, session = client({ default = fail }, { retry = { max_attempts = 3 } })
    local it = zl:each_log{ start_time = "2023-08-01T00:00:00Z", end_time = "2023-08-02T00:00:00Z" }
    local ok, err = pcall(it)
    assert.is_false(ok)
    assert.equal("api", err.kind)
    assert.equal(500, err.status)
    assert.equal(3, err.attempts)
    assert.is_true(err.retryable)
    assert.equal(3, #session.requests)
  end)
end)
