-- The client-side rate limiter (lua/loghaul/rate.lua) on a fake clock, and its hook in the
-- request pipeline (lua/loghaul/client.lua) on a fake session: every wait is visible.
local rate = require "loghaul.rate"
local loghaul = require "loghaul"
local fake = require "vendors.fake"

local function clock(t0)
  local c = { t = t0 or 1000 }
  c.now = function() return c.t end
  c.sleep = function(s) c.t = c.t + s end
  return c
end

local function limiter(opt, c)
  return rate.new(rate.config(opt), c.now)
end

local function near(expected, got, eps)
  assert.is_true(math.abs(expected - got) < (eps or 1e-9),
    ("expected %.6f, got %.6f"):format(expected, got))
end

-- `n` answers at `per_second`, each taking a token first (waits included); returns the clock
local function send(lim, c, n, per_second, throttled)
  for _ = 1, n do
    lim:take(c.sleep)
    c.sleep(1 / per_second)
    lim:feedback(throttled or false)
  end
end

describe("rate limiter", function()
  describe("option", function()
    it("takes per_second, burst and adaptive, burst defaulting to per_second", function()
      assert.same({ per_second = 8, burst = 8, adaptive = true }, rate.config{ per_second = 8 })
      assert.same({ per_second = 0.2, burst = 1, adaptive = true }, rate.config{ per_second = 0.2 })
      assert.same({ per_second = 5, burst = 20, adaptive = false },
        rate.config{ per_second = 5, burst = 20, adaptive = false })
      assert.same({ adaptive = true }, rate.config(nil))
      assert.same({ adaptive = true }, rate.config{})
      assert.is_false(rate.config(false))
      assert.is_false(rate.config{ adaptive = false })
      assert.same({ "per_second", "burst", "adaptive" }, rate.FIELDS)
    end)

    it("refuses bad values with a message that names the field", function()
      for _, case in ipairs{
        { 5, "option rate must be a table" },
        { { per_second = 0 }, "rate.per_second must be a positive number" },
        { { per_second = -1 }, "rate.per_second must be a positive number" },
        { { per_second = 1 / 0 }, "rate.per_second must be a positive number" },
        { { per_second = 0 / 0 }, "rate.per_second must be a positive number" },
        { { per_second = "5" }, "rate.per_second must be a positive number" },
        { { per_second = 5, burst = 0.5 }, "rate.burst must be a number >= 1" },
        { { burst = 5 }, "rate.burst needs rate.per_second" },
        { { per_second = 5, adaptive = "yes" }, "rate.adaptive must be true or false" },
        { { per_sec = 5 }, "rate.per_sec is not an option %(rate takes per_second, burst, adaptive%)" },
      } do
        local ok, err = pcall(rate.config, case[1])
        assert.is_false(ok)
        assert.matches("loghaul: " .. case[2], err)
      end
    end)

    it("is checked by every client constructor", function()
      local creds = {
        cms = { access_key = "AK", secret_key = "SK" },
        clouddc = { project_id = "p1", auth = { token = "T" } },
        yeastar = { client_id = "ID", client_secret = "SECRET" },
        zenlayer = { access_key_id = "A", access_key_password = "PPPP" },
      }
      for ctor, extra in pairs(creds) do
        local opts = fake.opts(extra)
        opts.endpoint, opts.rate = "https://h.test", { per_second = -3 }
        local ok, err = pcall(loghaul[ctor], opts)
        assert.is_false(ok, ctor)
        assert.matches("rate.per_second must be a positive number", tostring(err), 1, false, ctor)
      end
    end)
  end)

  describe("bucket", function()
    it("lets a burst through at once, then one request per 1/per_second", function()
      local c = clock()
      local lim = limiter({ per_second = 2, burst = 4 }, c)
      for _ = 1, 4 do assert.equal(0, (lim:acquire())) end
      local w, ticket = lim:acquire()
      near(0.5, w)
      c.sleep(w)
      assert.equal(0, (lim:acquire(ticket)))
      near(0.5, (lim:acquire()))
    end)

    it("never stores more than burst tokens, however long it idles", function()
      local c = clock()
      local lim = limiter({ per_second = 10, burst = 3 }, c)
      c.sleep(3600)
      for _ = 1, 3 do assert.equal(0, (lim:acquire())) end
      near(0.1, (lim:acquire()))
    end)

    it("keeps a long run at per_second: 100 requests take 99/per_second after a burst of 1", function()
      local c = clock()
      local lim = limiter({ per_second = 4, burst = 1, adaptive = false }, c)
      local t0 = c.t
      for _ = 1, 100 do lim:take(c.sleep) end
      near(99 / 4, c.t - t0, 1e-6)
    end)

    it("serves concurrent callers in arrival order, each told when its token will be there", function()
      local c = clock()
      local lim = limiter({ per_second = 10, burst = 1 }, c)
      assert.equal(0, (lim:acquire()))
      local w1, t1 = lim:acquire()
      local w2, t2 = lim:acquire()
      local w3, t3 = lim:acquire()
      near(0.1, w1); near(0.2, w2); near(0.3, w3)
      -- a newcomer queues behind them, even when a token has come in the meantime
      c.sleep(0.1)
      local w4, t4 = lim:acquire()
      near(0.3, w4)
      -- each comes back at its time and goes
      assert.equal(0, (lim:acquire(t1)))
      c.sleep(0.1)
      assert.equal(0, (lim:acquire(t2)))
      c.sleep(0.1)
      assert.equal(0, (lim:acquire(t3)))
      assert.equal(1, lim:state().queued)
      c.sleep(0.1)
      assert.equal(0, (lim:acquire(t4)))
      assert.equal(0, lim:state().queued)
    end)

    it("a caller that never comes back gives up its place", function()
      local c = clock()
      local lim = limiter({ per_second = 1, burst = 1 }, c)
      assert.equal(0, (lim:acquire()))
      local _, abandoned = lim:acquire()
      assert.is_table(abandoned)
      c.sleep(10)
      assert.equal(0, (lim:acquire()))
      assert.equal(0, lim:state().queued)
    end)

    it("never returns a zero wait without handing out a token (no spinning)", function()
      local c = clock()
      local lim = limiter({ per_second = 3, burst = 1 }, c)
      local handed, waits = 0, 0
      for _ = 1, 50 do
        local w, ticket = lim:acquire()
        while w > 0 do
          waits = waits + 1
          c.sleep(w)
          w, ticket = lim:acquire(ticket)
        end
        handed = handed + 1
      end
      assert.equal(50, handed)
      assert.is_true(waits <= 49 + 5, "waits " .. waits)
    end)
  end)

  describe("adaptive", function()
    it("without per_second limits nothing until the server throttles", function()
      local c = clock()
      local lim = limiter(nil, c)
      for _ = 1, 1000 do
        assert.equal(0, (lim:acquire()))
        lim:feedback(false)
      end
      assert.is_nil(lim:state().rate)
      assert.is_false(lim:state().engaged)
    end)

    it("on a throttle drops to 0.7 times the measured rate and empties the bucket", function()
      local c = clock(1000)
      local lim = limiter(nil, c)
      send(lim, c, 40, 20) -- 2 s at 20 requests/s
      local measured = lim:state().measured
      near(20, measured, 0.5)
      local r = lim:feedback(true)
      near(0.7 * measured, r)
      local s = lim:state()
      assert.is_true(s.engaged)
      assert.equal(1, s.throttles)
      assert.equal(0, s.tokens)
      near(1 / r, (lim:acquire()))
    end)

    it("lowers the rate once for requests refused together (sent before the decrease)", function()
      local c = clock(1000)
      local lim = limiter(nil, c)
      send(lim, c, 40, 20)
      -- 16 requests in flight, all sent now, all refused
      local sent_at = c.t
      c.sleep(0.05)
      local r = lim:feedback(true, sent_at)
      assert.is_number(r)
      for _ = 2, 16 do
        c.sleep(0.001)
        assert.is_nil(lim:feedback(true, sent_at))
      end
      assert.equal(r, lim:state().rate)
      assert.equal(16, lim:state().throttles)
      -- a request sent after the decrease and still refused lowers it again
      c.sleep(1 / r)
      local sent2 = c.t
      c.sleep(0.05)
      local r2 = lim:feedback(true, sent2)
      assert.is_true(r2 < r)
    end)

    it("with per_second, a throttle lowers the rate below it (the lower of measured and per_second)", function()
      local c = clock(1000)
      local lim = limiter({ per_second = 10 }, c)
      send(lim, c, 30, 10)
      near(7, lim:feedback(true), 0.3)
      assert.is_true(lim:state().rate < 10)
    end)

    it("a throttle before any rate was measured drops to the floor, 0.5 requests/s", function()
      local c = clock(1000)
      local lim = limiter(nil, c)
      assert.equal(0.5, lim:feedback(true))
      -- the next token is 2 s away; the caller is told to ask again within 0.5 s (the rate
      -- may grow meanwhile), and goes after 2 s
      assert.equal(2, lim:take(c.sleep))
    end)

    it("gives up rather than wait past a limit, and gives its place to those behind it", function()
      local c = clock(1000)
      local lim = limiter({ per_second = 0.1, burst = 1 }, c)
      assert.equal(0, lim:take(c.sleep, 3))
      assert.is_nil(lim:take(c.sleep, 3)) -- the next token is 10 s away: no use waiting 3 s for it
      assert.equal(1000, c.t)
      assert.equal(0, #lim.queue)
      near(10, lim:take(c.sleep, 11), 1e-6)
      near(1010, c.t, 1e-6)
    end)

    it("tells a waiting caller to ask again within 0.5 s, and a grown rate lets it go sooner", function()
      local c = clock(1000)
      local lim = limiter({ per_second = 0.1, burst = 1 }, c)
      assert.equal(0, (lim:acquire()))
      local w, ticket = lim:acquire()
      assert.equal(0.5, w) -- 10 s away at 0.1/s
      lim.user_rate = 10 -- as if the rate had grown meanwhile
      lim:set_rate(10, c.t)
      c.sleep(w)
      assert.equal(0, (lim:acquire(ticket)))
    end)

    it("never goes below the floor, however many throttles", function()
      local c = clock(1000)
      local lim = limiter(nil, c)
      send(lim, c, 20, 10)
      for _ = 1, 50 do
        lim:take(c.sleep)
        lim:feedback(true)
        assert.is_true(lim:state().rate >= 0.5)
      end
      assert.equal(0.5, lim:state().rate)
      -- a per_second below the floor is its own floor
      local slow = limiter({ per_second = 0.2 }, c)
      for _ = 1, 5 do slow:feedback(true) end
      assert.equal(0.2, slow:state().rate)
    end)

    it("recovers slowly along the cubic curve, back to the throttled rate after K seconds", function()
      local c = clock(1000)
      local lim = limiter(nil, c)
      send(lim, c, 60, 20)
      local w_max = lim:state().measured
      local low = lim:feedback(true)
      near(0.7 * w_max, low)
      local K = (w_max * 0.3 / 0.4) ^ (1 / 3)
      -- keep sending as fast as the limiter lets us, watching the rate climb
      local t_fail, last, back_at = c.t, low, nil
      while c.t - t_fail < K + 1 do
        lim:take(c.sleep)
        c.sleep(0.01)
        lim:feedback(false)
        local r = lim:state().rate
        assert.is_true(r >= last - 1e-9, "the rate never drops without a throttle")
        local dt = c.t - t_fail
        -- never above the cubic curve
        assert.is_true(r <= 0.4 * (dt - K) ^ 3 + w_max + 1e-9)
        if not back_at and r >= w_max - 1e-6 then back_at = dt end
        last = r
      end
      assert.is_truthy(back_at, "back to the throttled rate")
      assert.is_true(back_at >= K - 0.05 and back_at <= K + 0.5, "back after " .. tostring(back_at) .. " s, K = " .. K)
      -- half-way it is still well below the rate that was throttled
      local half = 0.4 * (K / 2 - K) ^ 3 + w_max
      assert.is_true(half < w_max - 0.5 and half > low)
    end)

    it("never recovers above per_second", function()
      local c = clock(1000)
      local lim = limiter({ per_second = 5, burst = 5 }, c)
      send(lim, c, 20, 5)
      lim:feedback(true)
      send(lim, c, 200, 50)
      assert.equal(5, lim:state().rate)
    end)

    it("adaptive = false keeps the plain bucket", function()
      local c = clock(1000)
      local lim = limiter({ per_second = 5, adaptive = false }, c)
      send(lim, c, 20, 5)
      assert.is_nil(lim:feedback(true))
      assert.equal(5, lim:state().rate)
      assert.is_false(lim:state().engaged)
    end)

    it("knows the vendors' throttling answers", function()
      assert.is_true(rate.is_throttle{ status = 429 })
      assert.is_true(rate.is_throttle{ status = 429, code = "APIG.0308" })
      assert.is_true(rate.is_throttle{ status = 400, code = "APIG.0308" })
      assert.is_true(rate.is_throttle{ status = 403, code = "REQUEST_LIMIT_EXCEEDED" })
      assert.is_true(rate.is_throttle{ status = 200, code = "70082" })
      assert.is_false(rate.is_throttle{ status = 503, code = "SERVICE_TEMPORARY_UNAVAILABLE" })
      assert.is_false(rate.is_throttle{ status = 500 })
      assert.is_false(rate.is_throttle{ kind = "network", code = "CURLE_RECV_ERROR" })
      assert.is_false(rate.is_throttle(nil))
    end)
  end)

  describe("in the client", function()
    local PAGE = { status = 200, body = '{"requestId":"r","response":{"dataSet":[]}}' }
    local LIMIT = { status = 429, body = '{"requestId":"r","code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}' }

    local function zl_client(extra, script)
      local opts, session, clk = fake.opts(extra, script)
      opts.access_key_id, opts.access_key_password = "A", "PPPP"
      return loghaul.zenlayer(opts), session, clk
    end

    local function describe_logs(zl, clk)
      return zl:describe_logs{ startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(clk.t) - 60),
                               endTime = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(clk.t)) }
    end

    it("paces every call of a client through one bucket per origin", function()
      local zl, session, clk = zl_client({ rate = { per_second = 4, burst = 2 } }, { default = PAGE })
      for _ = 1, 6 do assert(describe_logs(zl, clk)) end
      assert.equal(6, #session.requests)
      -- two at once (the burst), then one every 0.25 s
      assert.same({ 0.25, 0.25, 0.25, 0.25 }, clk.sleeps)
      local n = 0
      for origin, lim in pairs(zl.client.limiters) do
        n = n + 1
        assert.equal("https://console.zenlayer.com:443", origin)
        assert.equal(4, lim:state().rate)
      end
      assert.equal(1, n)
    end)

    it("an operation whose deadline would pass in the rate limit's queue fails then, unsent", function()
      local zl, session, clk = zl_client({ rate = { per_second = 0.1, burst = 1 }, retry = { deadline = 3 } },
                                         { default = PAGE })
      assert(describe_logs(zl, clk))
      local t0 = clk.t
      local v, err = describe_logs(zl, clk)
      assert.is_nil(v)
      assert.equal("DEADLINE", err.code)
      assert.equal("timeout", err.kind)
      assert.matches("waiting for the rate limit", err.message, 1, true)
      assert.equal(t0, clk.t) -- 10 s to the next token: failed at once, not after 3 s
      assert.equal(1, #session.requests)
    end)

    it("waits before signing: the signature's timestamp is the time the request leaves", function()
      local zl, session, clk = zl_client({ rate = { per_second = 0.5, burst = 1 } }, { default = PAGE })
      local t0 = clk.t
      assert(describe_logs(zl, clk))
      assert(describe_logs(zl, clk))
      assert.equal(t0 + 2, clk.t)
      assert.equal(tostring(t0), session.requests[1].headers["X-ZC-Timestamp"])
      assert.equal(tostring(t0 + 2), session.requests[2].headers["X-ZC-Timestamp"])
    end)

    it("without rate, a throttled answer slows the following requests down", function()
      local zl, session, clk = zl_client({ retry = { max_attempts = 3 } }, { PAGE, LIMIT, PAGE, PAGE })
      assert(describe_logs(zl, clk))
      assert.same({}, clk.sleeps)
      assert(describe_logs(zl, clk)) -- throttled once, then retried
      assert.equal(3, #session.requests)
      -- the retry's backoff (0.25 s), then what the limiter adds: the throttle came before any
      -- rate was measured, so the retry goes at the floor rate, 2 s after the throttle
      near(0.25, clk.sleeps[1])
      local total = 0
      for _, w in ipairs(clk.sleeps) do
        assert.is_true(w <= 0.5)
        total = total + w
      end
      near(2, total)
      local lim = select(2, next(zl.client.limiters))
      assert.is_true(lim:state().engaged)
      assert(describe_logs(zl, clk))
      assert.equal(4, #session.requests)
    end)

    -- tasks as coroutines on the fake clock, as loghaul.run_all will run them: a sleep
    -- yields the seconds to wait; the earliest wake-up runs next
    local function run_tasks(clk, tasks)
      local co, wake = {}, {}
      for i, f in ipairs(tasks) do co[i], wake[i] = coroutine.create(f), clk.t end
      while true do
        local best
        for i = 1, #tasks do
          if co[i] and (not best or wake[i] < wake[best]) then best = i end
        end
        if not best then return end
        if wake[best] > clk.t then clk.t = wake[best] end
        local ok, s = coroutine.resume(co[best])
        assert(ok, s)
        if coroutine.status(co[best]) == "dead" then co[best] = nil else wake[best] = clk.t + s end
      end
    end
    local function yield_sleep(s) coroutine.yield(s) end

    -- a server that allows `per_second` requests a second after a burst, answering in `rtt`
    -- seconds; records when each request arrived and how many it refused
    local function limited_server(clk, per_second, burst, rtt)
      local srv = { tokens = burst, last = clk.t, at = {}, refused = 0 }
      srv.answer = function()
        coroutine.yield(rtt)
        srv.tokens = math.min(burst, srv.tokens + (clk.t - srv.last) * per_second)
        srv.last = clk.t
        srv.at[#srv.at + 1] = clk.t
        if srv.tokens >= 1 then
          srv.tokens = srv.tokens - 1
          return { status = 200, headers = {}, body = PAGE.body }
        end
        srv.refused = srv.refused + 1
        return { status = 429, headers = {}, body = LIMIT.body }
      end
      return srv
    end

    it("paces concurrent tasks together: 16 tasks x 4 calls stay within burst + per_second * t", function()
      local zl, _, clk = zl_client({ rate = { per_second = 10, burst = 5 }, _sleep = yield_sleep }, {})
      local srv = limited_server(clk, 1e9, 1e9, 0.02)
      zl.client.session = require("vendors.fake").session{ default = srv.answer }
      local t0, done = clk.t, 0
      local tasks = {}
      for i = 1, 16 do
        tasks[i] = function()
          for _ = 1, 4 do assert(describe_logs(zl, clk)) end
          done = done + 1
        end
      end
      run_tasks(clk, tasks)
      assert.equal(16, done)
      assert.equal(64, #srv.at)
      for n, at in ipairs(srv.at) do
        -- the n-th request leaves no earlier than the bucket allows (it arrives rtt later)
        assert.is_true(at - 0.02 - t0 >= (n - 5) / 10 - 1e-9, ("request %d at %.3f"):format(n, at - t0))
      end
      near((64 - 5) / 10 + 0.02, srv.at[64] - t0, 1e-6)
    end)

    it("concurrent tasks against a limited server: the adaptive limiter cuts the refusals", function()
      local function run(rate_opt)
        local zl, _, clk = zl_client({ rate = rate_opt, _sleep = yield_sleep,
          retry = { max_attempts = 20, base_delay = 0.05, max_delay = 0.5 } }, {})
        local srv = limited_server(clk, 10, 10, 0.05)
        zl.client.session = require("vendors.fake").session{ default = srv.answer }
        local ok, tasks = 0, {}
        for i = 1, 16 do
          tasks[i] = function()
            for _ = 1, 10 do
              if describe_logs(zl, clk) then ok = ok + 1 end
            end
          end
        end
        local t0 = clk.t
        run_tasks(clk, tasks)
        return ok, srv.refused, clk.t - t0
      end
      local ok_a, refused_a, took_a = run(nil)
      local ok_p, refused_p = run(false)
      local ok_r, refused_r = run{ per_second = 8 }
      -- 160 calls: the adaptive limiter meets the limit a few times, finishes every call
      -- near the server's rate; without it the retries hammer the server and run out
      assert.equal(160, ok_a)
      -- the first wave (16 tasks at once, and the calls sent before the first refusal came
      -- back) is refused; after that, CUBIC's probing meets the limit about every 2 s
      assert.is_true(refused_a <= 30, "refused " .. refused_a)
      assert.is_true(refused_p >= 5 * refused_a, ("refused %d without a limiter, %d with"):format(refused_p, refused_a))
      assert.is_true(ok_p < 160)
      assert.is_true(took_a < 160 / 10 * 1.25, "took " .. took_a)
      assert.equal(160, ok_r)
      assert.equal(0, refused_r)
    end)

    it("paces on the monotonic clock, not on the user's `now` (which may be frozen)", function()
      local frozen = 1700000000
      local zl = loghaul.zenlayer{ access_key_id = "A", access_key_password = "PPPP", log = false,
        now = function() return frozen end, _session = fake.session{ default = PAGE },
        rate = { per_second = 20, burst = 1 } }
      local runtime = require "loghaul.runtime"
      local t0 = runtime.monotonic()
      for _ = 1, 4 do
        assert(zl:describe_logs{ startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", frozen - 60),
                                 endTime = os.date("!%Y-%m-%dT%H:%M:%SZ", frozen) })
      end
      local took = runtime.monotonic() - t0
      assert.is_true(took >= 3 / 20 - 0.01 and took < 2, "took " .. took)
    end)

    it("rate = false never waits and keeps no limiter", function()
      local zl, session, clk = zl_client({ rate = false, retry = { max_attempts = 3, base_delay = 0.1 } },
        { LIMIT, PAGE, PAGE })
      assert(describe_logs(zl, clk))
      assert(describe_logs(zl, clk))
      assert.equal(3, #session.requests)
      assert.same({ 0.05 }, clk.sleeps) -- the retry's backoff only (random = 0.5)
      assert.is_nil(next(zl.client.limiters))
    end)

    it("logs the new rate when throttled, naming the origin", function()
      local lines = {}
      local zl, _, clk = zl_client({ log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end },
        { LIMIT, PAGE })
      assert(describe_logs(zl, clk))
      local all = table.concat(lines, "\n")
      assert.matches("info throttled by https://console.zenlayer.com:443 %(HTTP 429 REQUEST_LIMIT_EXCEEDED%): "
        .. "sending at most 0.50 requests/s", all)
    end)
  end)
end)
