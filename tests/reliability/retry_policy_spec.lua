-- The retry policy (lua/loghaul/retry.lua) through the client pipeline, with an injected
-- clock, sleep and random source: no real waiting, every decision visible.
local retry = require "loghaul.retry"
local errors = require "loghaul.errors"
local client_mod = require "loghaul.client"
local fake = require "vendors.fake"

local function sum(t)
  local s = 0
  for _, v in ipairs(t) do s = s + v end
  return s
end

-- a client on a fake session; `script` answers its requests
local function new_client(script, extra)
  local c = fake.clock(1000)
  local opts = { endpoint = "https://api.example.com", _session = fake.session(script), now = c.now,
                 _sleep = c.sleep, _random = function() return 1 end, log = false }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return client_mod.new(opts, { vendor = "test" }), c
end

local function json_decode(res)
  if res.status >= 200 and res.status < 300 then return { ok = true } end
  return nil, require("loghaul.envelope").http_error(res, { kind = "http", message = "HTTP " .. res.status })
end

local function op(extra)
  local o = { operation = "Op", method = "GET", url = "https://api.example.com/x", decode = json_decode }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local TIMEOUT = { err = { kind = "timeout", code = "CURLE_OPERATION_TIMEDOUT", message = "Operation timed out" } }
local REFUSED = { err = { kind = "network", code = "CURLE_COULDNT_CONNECT", message = "Connection refused" } }
local RESET = { err = { kind = "network", code = "CURLE_RECV_ERROR", message = "Connection reset by peer" } }

describe("retry policy", function()
  it("backs off with full jitter, doubling up to the cap", function()
    local p = retry.policy{ base_delay = 1, max_delay = 8 }
    for n = 1, 10 do
      local hi = retry.backoff(p, n, function() return 0.999999 end)
      assert.is_true(hi <= math.min(8, 2 ^ (n - 1)))
      assert.is_true(hi >= 0.99 * math.min(8, 2 ^ (n - 1)))
      assert.equal(0, retry.backoff(p, n, function() return 0 end))
    end
    -- the default random source spreads the waits (a fleet does not retry in step)
    local seen = {}
    for _ = 1, 50 do seen[("%.3f"):format(retry.backoff(p, 4))] = true end
    local distinct = 0
    for _ in pairs(seen) do distinct = distinct + 1 end
    assert.is_true(distinct > 10)
  end)

  it("honours Retry-After (seconds or a date) and clamps it to max_retry_after", function()
    local p = retry.policy{ max_retry_after = 30 }
    assert.equal(12, retry.delay(p, 1, 12, function() return 0 end))
    assert.equal(30, retry.delay(p, 1, 86400, function() return 0 end))
    assert.equal(30, retry.delay(p, 1, retry.parse_retry_after("99999999999999999999"), function() return 0 end))
    assert.is_nil(retry.parse_retry_after("-5"))
    assert.is_nil(retry.parse_retry_after("soon"))
    assert.is_nil(retry.parse_retry_after("1e999"))
    assert.equal(0, retry.parse_retry_after("Tue, 14 Nov 2023 22:14:50 GMT", 1800000000))
  end)

  it("validates its options", function()
    assert.has_error(function() retry.policy{ max_attempts = -1 } end)
    assert.has_error(function() retry.policy{ base_delay = "1" } end)
    assert.has_error(function() retry.policy{ max_delay = 0 / 0 } end)
    assert.has_error(function() retry.policy{ max_attempts = math.huge } end)
    assert.has_error(function() retry.policy(5) end)
    assert.is_nil(retry.policy{ deadline = false }.deadline)
    assert.equal(1, retry.policy{ max_attempts = 0 }.max_attempts)
  end)

  it("stops at max_attempts with an error that counts and explains every attempt", function()
    local c, clk = new_client{ { status = 503 }, { status = 502 }, TIMEOUT, RESET, { status = 500 } }
    local v, err = c:call(op())
    assert.is_nil(v)
    assert.equal(5, err.attempts)
    assert.is_true(err.retryable)
    assert.equal("max_attempts reached", err.gave_up)
    assert.same({ "HTTP 503", "HTTP 502", "timeout CURLE_OPERATION_TIMEDOUT", "network CURLE_RECV_ERROR",
                  "HTTP 500" }, err.history)
    local s = tostring(err)
    assert.matches("after 5 attempts", s, 1, true)
    assert.matches("HTTP 503; HTTP 502; timeout CURLE_OPERATION_TIMEDOUT", s, 1, true)
    assert.matches("gave up: max_attempts reached", s, 1, true)
    assert.same({ 0.5, 1, 2, 4 }, clk.sleeps)
  end)

  it("retries timeouts of reads, never of writes", function()
    local c = new_client{ TIMEOUT, { status = 200 } }
    assert.same({ ok = true }, c:call(op()))
    local w = new_client{ TIMEOUT, { status = 200 } }
    local v, err = w:call(op{ method = "POST", write = true })
    assert.is_nil(v)
    assert.equal("timeout", err.kind)
    assert.equal(1, err.attempts)
    assert.matches("timed%-out write", err.gave_up)
    -- a write still retries what provably never reached the server, and throttling
    local w2 = new_client{ REFUSED, { status = 429, headers = { ["Retry-After"] = "2" } }, { status = 200 } }
    assert.same({ ok = true }, w2:call(op{ method = "POST", write = true }))
  end)

  it("retries a create only when the request provably never reached the server", function()
    for _, case in ipairs{
      { REFUSED, true }, { { status = 429 }, true }, { { status = 503 }, true },
      { TIMEOUT, false }, { RESET, false }, { { status = 500 }, false }, { { status = 502 }, false },
    } do
      local c, clk = new_client{ case[1], { status = 200 } }
      local v, err = c:call(op{ method = "POST", create = true })
      if case[2] then
        assert.same({ ok = true }, v)
        assert.equal(1, #clk.sleeps)
      else
        assert.is_nil(v)
        assert.equal(1, err.attempts)
        assert.matches("may have reached", err.gave_up)
        assert.equal(0, #clk.sleeps)
      end
    end
  end)

  it("waits what Retry-After asks, clamped", function()
    local c, clk = new_client({ { status = 429, headers = { ["Retry-After"] = "7" } },
                                { status = 429, headers = { ["Retry-After"] = "3600" } }, { status = 200 } },
                              { retry = { max_retry_after = 10 } })
    assert.same({ ok = true }, c:call(op()))
    assert.same({ 7, 10 }, clk.sleeps)
  end)

  it("gives up at the operation's deadline, waits included", function()
    local script = { default = { status = 429, headers = { ["Retry-After"] = "20" } } }
    local c, clk = new_client(script, { retry = { max_attempts = 100, deadline = 50, max_retry_after = 60 } })
    local t0 = clk.t
    local v, err = c:call(op())
    assert.is_nil(v)
    assert.equal("operation deadline reached", err.gave_up)
    assert.is_true(clk.t - t0 <= 50)
    assert.equal(3, err.attempts)
  end)

  it("a 429 storm ends within the policy's bound", function()
    local p = { max_attempts = 6, base_delay = 0.5, max_delay = 4, max_retry_after = 5 }
    local c, clk = new_client({ default = { status = 429, headers = { ["Retry-After"] = "30" } } }, { retry = p })
    local _, err = c:call(op())
    assert.equal(6, err.attempts)
    assert.is_true(sum(clk.sleeps) <= (p.max_attempts - 1) * p.max_retry_after)
  end)

  it("the budget never cuts one operation short on an idle client, but stops a storm", function()
    for _, max in ipairs{ 1, 2, 5, 12, 40 } do
      local c = new_client({ default = { status = 503 } }, { retry = { max_attempts = max } })
      local _, err = c:call(op())
      assert.equal(max, err.attempts)
      assert.equal("max_attempts reached", err.gave_up)
    end
    -- a dead endpoint: many operations in a row quickly drain the bucket
    local c, clk = new_client({ default = { status = 503 } }, { retry = { max_attempts = 5 } })
    local total = 0
    for _ = 1, 20 do
      local _, err = c:call(op())
      total = total + err.attempts
    end
    assert.is_true(total < 20 * 5 * 0.6, "retries were not bounded: " .. total)
    -- time alone does not refill it (gRPC retry throttling): an hour later one request only
    clk.t = clk.t + 3600
    local _, err = c:call(op())
    assert.equal(1, err.attempts)
  end)

  it("successes refill the budget: after a recovery an operation gets all its retries again", function()
    local script = { default = { status = 503 } }
    local c = new_client(script, { retry = { max_attempts = 5 } })
    for _ = 1, 10 do c:call(op()) end
    assert.equal(1, select(2, c:call(op())).attempts)
    script.default = { status = 200 }
    for _ = 1, 100 do assert(c:call(op())) end
    script.default = { status = 503 }
    local _, err = c:call(op())
    assert.equal(5, err.attempts)
  end)

  it("the deadline shortens the timeout of the last attempt instead of letting it run past", function()
    -- each attempt "times out" after its whole limit, on the injected clock
    local c, clk
    local session = { requests = {} }
    function session.request(_, req)
      -- nil: the session's own limit (the client's timeout, 30 s here)
      session.requests[#session.requests + 1] = req.timeout or "session"
      clk.t = clk.t + (req.timeout or 30)
      return nil, { kind = "network", code = "CURLE_RECV_ERROR", message = "reset" }
    end
    c, clk = new_client({}, { _session = session, timeout = 30, retry = { max_attempts = 10, base_delay = 1,
                                                                             max_delay = 1 } })
    local t0 = clk.t
    local _, err = c:call(op{ deadline = 70 })
    assert.is_nil(_)
    -- 30 s, 1 s wait, 30 s, 1 s wait, then what is left: 8 s
    assert.same({ "session", "session", 8 }, session.requests)
    assert.equal(70, clk.t - t0)
    assert.equal(3, err.attempts)
    -- a download (no limit per attempt) is cut only by a deadline the caller chose
    session.requests = {}
    local c2
    c2, clk = new_client({}, { _session = session, retry = { max_attempts = 1, deadline = 40 } })
    c2:call(op{ prepare = function(req) req.timeout = 0 return true end })
    assert.same({ 40 }, session.requests)
  end)

  it("does not retry what is not transient, nor an io or invalid error", function()
    for _, e in ipairs{ { status = 400 }, { status = 404 },
                        { err = { kind = "io", code = "CURLE_WRITE_ERROR", message = "disk full", path = "/x" } },
                        { err = { kind = "invalid", code = "BAD_HEADER", message = "bad" } } } do
      local c, clk = new_client{ e, { status = 200 } }
      local v, err = c:call(op())
      assert.is_nil(v)
      assert.equal(1, err.attempts)
      assert.equal(0, #clk.sleeps)
    end
  end)

  it("keeps the path of an io error and the partial answer of a cut one", function()
    local e = errors.from_core{ kind = "io", code = "CURLE_WRITE_ERROR", message = "cannot write: No space left",
                                path = "/mnt/x.part" }
    assert.equal("io", e.kind)
    assert.equal("/mnt/x.part", e.path)
    assert.matches("/mnt/x.part", tostring(e), 1, true)
    local cut = errors.from_core{ kind = "network", code = "CURLE_PARTIAL_FILE", message = "closed",
                                  status = 206, headers = { etag = '"a"' }, bytes = 10 }
    assert.is_true(cut.retryable)
    assert.equal('"a"', cut.partial.headers.etag)
    assert.equal(10, cut.partial.bytes)
    assert.is_nil(cut.status)
  end)
end)
