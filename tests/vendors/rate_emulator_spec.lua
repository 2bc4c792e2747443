-- The client-side rate limiter (lua/loghaul/rate.lua) against the emulator's per-vendor rate
-- limit (tests/emulator/VENDORS.md: `rate = { per_second =, burst = }`, the vendor's own
-- throttling answer over it, counted as `throttled`, accepted requests stamped in
-- `accepted_times`): a paced client is never refused, and without `rate` the adaptive
-- limiter stops the refusals after the first ones. Only the emulator's counters judge.
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F
local LIMIT = { per_second = 10, burst = 10 }
-- for the adaptive runs: low enough that even a client slowed by a loaded machine meets it
local LOW = { per_second = 5, burst = 5 }
local CALLS = 24

describe("rate limiting against the emulator's limit", function()
  setup(function() T.start() end)
  before_each(function() T.reset() end)
  teardown(function() T.reset() end) -- no rate limit left on for the next spec file

  -- the emulator's client options with `extra` (rate, ...) and the vendor's own fields
  local function opts(extra, fields)
    local o = T.opts(extra)
    for k, v in pairs(fields) do o[k] = v end
    return o
  end

  -- per vendor: a client, and one call of a burst (after `prepare`, run before the limit is on)
  local vendors = {
    clouddc = {
      client = function(extra)
        return loghaul.clouddc(opts(extra, { project_id = F.clouddc.project_id,
          auth = { access_key = F.clouddc.access_key, secret_key = F.clouddc.secret_key } }))
      end,
      prepare = function(dc) return assert(dc:export_server_logs(F.clouddc.server_id)).export_id end,
      call = function(dc, id) return dc:show_logs_export_status(F.clouddc.server_id, id) end,
    },
    zenlayer = {
      client = function(extra)
        return loghaul.zenlayer(opts(extra, { access_key_id = F.zenlayer.access_key_id,
          access_key_password = F.zenlayer.access_key_password }))
      end,
      call = function(zl)
        local now = os.time()
        return zl:describe_logs{ startTime = T.utc(now - 3600), endTime = T.utc(now), size = 5 }
      end,
    },
    yeastar = {
      client = function(extra)
        return loghaul.yeastar(opts(extra, { client_id = F.yeastar.client_id,
          client_secret = F.yeastar.client_secret }))
      end,
      prepare = function(pbx) assert(pbx:list_system_logs()) end, -- logs in
      call = function(pbx) return pbx:list_system_logs() end,
    },
  }

  -- `CALLS` calls of `vendor` one after another as fast as the client sends them, with the
  -- emulator's limit switched on after the client's setup; returns successes and seconds
  local function burst(vendor, extra, limit)
    local v = vendors[vendor]
    local client = v.client(extra)
    local arg = v.prepare and v.prepare(client)
    T.vendors.configure{ [vendor] = { rate = limit or LIMIT } }
    local ok, t0 = 0, T.clock()
    for _ = 1, CALLS do
      if v.call(client, arg) then ok = ok + 1 end
    end
    return ok, T.clock() - t0, client
  end

  it("with rate = { per_second = 8 } a burst of calls is never throttled, and is paced", function()
    local ok, took = burst("clouddc", { rate = { per_second = 8 } })
    local c = T.counters("clouddc")
    print(("\n  clouddc, rate 8/s: %d of %d calls in %.2f s, %d throttled"):format(ok, CALLS, took, c.throttled))
    assert.equal(CALLS, ok)
    assert.equal(0, c.throttled)
    -- 8 at once (the burst), then one every 1/8 s
    assert.is_true(took >= (CALLS - 8) / 8 - 0.05, "took " .. took)
    local at = c.accepted_times
    assert.equal(CALLS, #at)
    for n = 9, #at do
      -- the server saw no more than the bucket allows (jitter on arrival: 0.2 s)
      assert.is_true(at[n] - at[1] >= (n - 8) / 8 - 0.2, ("request %d at +%.3f s"):format(n, at[n] - at[1]))
    end
  end)

  it("without rate, the adaptive limiter cuts the throttled answers after the first ones", function()
    -- Zenlayer's 429 comes without Retry-After: with no limiter, the retries hammer
    local plain_ok, plain_took = burst("zenlayer", { rate = false }, LOW)
    local hammered = T.counters("zenlayer").throttled
    T.reset()
    local ok, took, zl = burst("zenlayer", nil, LOW)
    local throttled = T.counters("zenlayer").throttled
    print(("\n  zenlayer, no limiter: %d of %d calls in %.2f s, %d throttled; "
      .. "adaptive: %d of %d in %.2f s, %d throttled"):format(plain_ok, CALLS, plain_took, hammered,
      ok, CALLS, took, throttled))
    assert.equal(CALLS, ok)
    assert.is_true(throttled >= 1, "the emulator's limit was met")
    -- each refusal lowers the rate by 0.7 (from what was measured, or from the floor when it
    -- came before any measure): a few of them, then the calls keep under the limit
    assert.is_true(throttled <= 6, throttled .. " throttled")
    -- without a limiter the count depends on how fast this machine sends: printed, not asserted
    local lim = select(2, next(zl.client.limiters))
    assert.is_true(lim:state().engaged)
    assert.equal(throttled, lim:state().throttles)
  end)

  it("knows Yeastar's overload answer (HTTP 200, errcode 70082) for a throttle", function()
    local ok, took, pbx = burst("yeastar", nil, LOW)
    local throttled = T.counters("yeastar").throttled
    print(("\n  yeastar, adaptive: %d of %d calls in %.2f s, %d throttled"):format(ok, CALLS, took, throttled))
    assert.equal(CALLS, ok)
    assert.is_true(throttled >= 1 and throttled <= 6, throttled .. " throttled")
    local lim = select(2, next(pbx.client.limiters))
    assert.is_true(lim:state().engaged)
    assert.equal(throttled, lim:state().throttles)
  end)
end)
