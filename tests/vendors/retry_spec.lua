local retry = require "loghaul.retry"
local errors = require "loghaul.errors"

local function failing(times, fields)
  local n = 0
  return function()
    n = n + 1
    if n <= times then
      local e = errors.new{ kind = "http", status = 503, retryable = true }
      for k, v in pairs(fields or {}) do e[k] = v end
      return nil, e
    end
    return "ok"
  end, function() return n end
end

describe("loghaul.retry", function()
  local policy = retry.policy{ max_attempts = 5, base_delay = 0.5, max_delay = 20 }

  it("backs off with full jitter under a doubling cap", function()
    assert.equal(0.5, retry.backoff(policy, 1, function() return 1 end))
    assert.equal(4, retry.backoff(policy, 4, function() return 1 end))
    assert.equal(20, retry.backoff(policy, 10, function() return 1 end))
    assert.equal(0, retry.backoff(policy, 3, function() return 0 end))
  end)

  it("honours Retry-After but clamps it", function()
    assert.equal(7, retry.delay(policy, 1, 7, function() return 0 end))
    assert.equal(60, retry.delay(policy, 1, 3600, function() return 0 end))
    assert.equal(10, retry.parse_retry_after("10"))
    assert.equal(30, retry.parse_retry_after("Tue, 14 Nov 2023 22:14:50 GMT", 1700000060))
  end)

  it("retries up to max_attempts and reports why it stopped", function()
    local sleeps = {}
    local attempt, count = failing(10)
    local v, err = retry.run({ policy = policy, now = function() return 0 end,
      sleep = function(s) sleeps[#sleeps + 1] = s end, random = function() return 1 end }, attempt)
    assert.is_nil(v)
    assert.equal(5, count())
    assert.same({ 0.5, 1, 2, 4 }, sleeps)
    assert.equal("max_attempts reached", err.gave_up)
    assert.is_true(err.retryable)
  end)

  it("retries a create only when the request never reached the server", function()
    local attempt, count = failing(1, { reached = true })
    local _, err = retry.run({ policy = policy, create = true, sleep = function() end }, attempt)
    assert.equal(1, count())
    assert.matches("may have reached", err.gave_up)
    local attempt2, count2 = failing(2, { reached = false })
    assert.equal("ok", retry.run({ policy = policy, create = true, sleep = function() end }, attempt2))
    assert.equal(3, count2())
  end)

  it("never sleeps past the operation's deadline", function()
    local t = 0
    local attempt, count = failing(10, { retry_after = 30 })
    local _, err = retry.run({ policy = policy, now = function() return t end, deadline_at = 45,
      sleep = function(s) t = t + s end, random = function() return 0 end }, attempt)
    assert.equal(2, count())
    assert.equal("operation deadline reached", err.gave_up)
  end)

  it("has a budget (gRPC retry throttling): a whole operation on a fresh client, not a storm", function()
    local b = retry.budget(policy)
    assert.same({ 10, 10, 5, 0.1 }, { b.max_tokens, b.tokens, b.threshold, b.refill })
    local now, sleep = function() return 0 end, function() end
    local function run(times, fields)
      local attempt, count = failing(times, fields)
      local v, err = retry.run({ policy = policy, budget = b, now = now, sleep = sleep }, attempt)
      return v, err, count()
    end
    -- the first operation gets all its attempts (10 tokens, 4 failures cost 4, 6 > 5 left)
    local v, _, n = run(4)
    assert.equal("ok", v)
    assert.equal(5, n)
    -- 6.1 left: one more retry passes (5.1 > 5), the next failure leaves 4.1 and stops
    local _, err, n2 = run(10)
    assert.equal("client retry budget exhausted", err.gave_up)
    assert.equal(2, n2)
    -- a storm: every later failing call sends one request only
    for _ = 1, 5 do
      local _, e, k = run(10)
      assert.equal(1, k)
      assert.equal("client retry budget exhausted", e.gave_up)
    end
    assert.equal(0, b.tokens)
    -- successes refill it (a tenth of a token each), time alone does not
    for _ = 1, 50 do assert.equal("ok", (run(0))) end
    assert.is_false(b:allows())
    for _ = 1, 51 do assert.equal("ok", (run(0))) end
    assert.is_true(b:allows())
    for _ = 1, 100 do run(0) end
    assert.equal(10, b.tokens)
    local v3, _, n3 = run(4)
    assert.equal("ok", v3)
    assert.equal(5, n3)
  end)

  it("charges the budget nothing for an attempt that made progress", function()
    local b = retry.budget(policy)
    local sleep = function() end
    for _ = 1, 12 do -- 12 downloads cut 3 times each, every cut after some new bytes
      local attempt, count = failing(3, { progress = true })
      assert.equal("ok", retry.run({ policy = policy, budget = b, sleep = sleep }, attempt))
      assert.equal(4, count())
    end
    assert.equal(10, b.tokens)
  end)

  it("scales the budget so that max_attempts always fits on a fresh client", function()
    for _, max in ipairs{ 1, 2, 5, 12, 40 } do
      local p = retry.policy{ max_attempts = max }
      local attempt, count = failing(1000)
      local _, err = retry.run({ policy = p, budget = retry.budget(p), sleep = function() end }, attempt)
      assert.equal(max, count())
      assert.equal("max_attempts reached", err.gave_up)
    end
  end)

  it("does not retry what is not retryable", function()
    local n = 0
    local _, err = retry.run({ policy = policy, sleep = function() error("slept") end }, function()
      n = n + 1
      return nil, errors.new{ kind = "api", status = 400 }
    end)
    assert.equal(1, n)
    assert.equal("api", err.kind)
  end)
end)
