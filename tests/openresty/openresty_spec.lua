-- loghaul inside a real nginx (Debian's lua-nginx-module, LuaJIT 2.1), one worker, running
-- examples/openresty/nginx.conf against the emulator: the examples work, transfers never
-- stall the worker's event loop, errors are the same objects as outside nginx, and the error
-- log stays clean. Sizes shrink with LOGHAUL_TEST_SMALL=1.
local emu = require "helpers.emulator"
local vendors = require "helpers.vendors"
local openresty = require "helpers.openresty"

local small = os.getenv("LOGHAUL_TEST_SMALL") == "1"
local BIG = (small and 64 or 400) * 1024 * 1024
-- A free event loop: 90 % of the probes answered within LIMIT and none waited OUTLIER, both
-- on top of what the same probes wait with nothing running, measured just before (`idle`). A
-- loaded 2-core machine holds back the probes' own process for a few hundred ms now and then,
-- working or not; a blocked worker holds back every probe for its whole transfer.
local LIMIT = 0.25     -- seconds
local OUTLIER = 1.0
local function free(s, idle)
  return s.p90 < LIMIT + 2 * idle.p90 and s.max < OUTLIER + idle.max
end
local function assert_free(s, idle)
  assert.is_true(free(s, idle), ("probes waited %.0f ms (90th percentile), %.0f ms at most; %.0f and %.0f ms idle")
    :format(s.p90 * 1e3, s.max * 1e3, idle.p90 * 1e3, idle.max * 1e3))
end

describe("OpenResty (nginx + lua-nginx-module, one worker, thread_pool loghaul)", function()
  local e, ngx_, F

  setup(function()
    e = emu.start()
    emu.reset()
    vendors.reset()
    F = vendors.fixtures
    ngx_ = openresty.start{ emu = e }
  end)

  teardown(function()
    if ngx_ then ngx_.stop() end
  end)

  -- the probes' latencies for one second with nothing running
  local function idle()
    local s = openresty.summary(openresty.probe(ngx_.port, "/probe", 0.05, function() return false end, 1))
    print(("\n  idle probes: n=%d p90=%.1fms max=%.1fms"):format(s.n, s.p90 * 1e3, s.max * 1e3))
    return s
  end

  local function utc(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

  local function lines(body)
    local n, bad = 0, 0
    for line in body:gmatch("([^\n]*)\n") do
      n = n + 1
      if not line:match("^{.*}$") or line:find('"error"', 1, true) then bad = bad + 1 end
    end
    return n, bad
  end

  it("decides per phase: thread pool and ngx.sleep in content, neither inside the worker thread", function()
    local body = openresty.get(ngx_.url .. "/runtime")
    local v = require("cjson").decode(body)
    assert.same({ "content", true, true }, { v.here.phase, v.here.sleep, v.here.thread })
    assert.same({ "init", false, false }, { v.thread.phase, v.thread.sleep, v.thread.thread })
  end)

  it("the timer job exports and downloads CloudDC logs with the emulator's sha256", function()
    local cjson = require "cjson"
    local v
    for _ = 1, 100 do
      local body, status = openresty.get(ngx_.url .. "/jobs/clouddc")
      if status == 200 then
        v = cjson.decode(body)
        if v.state == "done" then break end
      end
      openresty.run("sleep 0.1")
    end
    assert.is_table(v)
    assert.is_true(v.ok, v.error and v.error.message)
    assert.equal(ngx_.dir .. "/downloads/" .. F.clouddc.sn .. "-dump.tar.gz", v.path)
    local served = openresty.run("ls " .. openresty.q(e.dir .. "/www/_vfiles") .. "/clouddc-*.tar.gz")
      :gsub("%s+$", "")
    local want = openresty.run("sha256sum " .. openresty.q(served)):match("^(%x+)")
    local got = openresty.run("sha256sum " .. openresty.q(v.path)):match("^(%x+)")
    assert.equal(want, v.sha256)
    assert.equal(want, got)
    assert.is_true(vendors.state().clouddc.polls >= 1)
  end)

  it("/logs streams every Zenlayer audit record as JSON Lines", function()
    local body, status = openresty.get(ngx_.url .. "/logs?since=" .. utc(os.time() - 85 * 86400) .. "&size=1000")
    assert.equal(200, status)
    local n, bad = lines(body)
    assert.equal(5000, n)  -- the emulator's 5000 records of the last 80 days
    assert.equal(0, bad)
    -- a part of the range: the same count as each_log outside nginx
    local s, t = utc(os.time() - 10 * 86400), utc(os.time() - 3 * 86400)
    body = openresty.get(ngx_.url .. "/logs?since=" .. s .. "&until=" .. t .. "&size=100")
    local zl = require("loghaul").zenlayer{ endpoint = e.base_url, ca_file = e.ca_file, log = false,
      access_key_id = F.zenlayer.access_key_id, access_key_password = F.zenlayer.access_key_password }
    local want = 0
    for _ in zl:each_log{ start_time = s, end_time = t, page_size = 1000 } do want = want + 1 end
    assert.is_true(want > 0)
    assert.equal(want, (lines(body)))
  end)

  it("sessions in the worker threads keep their connections alive between transfers", function()
    local since = utc(os.time() - 85 * 86400)
    openresty.get(ngx_.url .. "/logs?size=1000&since=" .. since)
    emu.reset()
    local body = openresty.get(ngx_.url .. "/logs?size=100&since=" .. since)
    assert.equal(5000, (lines(body)))
    local st = emu.stats()
    assert.is_true(st.requests >= 50)
    assert.is_true(st.connections <= 2, ("%d connections for %d requests"):format(st.connections, st.requests))
  end)

  it("/logs answers a refused range with the error object", function()
    local body, status = openresty.get(ngx_.url .. "/logs?since=" .. utc(os.time() - 100 * 86400))
    assert.equal(400, status)
    local v = require("cjson").decode(body).error
    assert.same({ "invalid", "INVALID_PARAMETER__ILLEGAL_TIME" }, { v.kind, v.code })
  end)

  it("errors arrive as the same error objects as outside nginx", function()
    local cjson = require "cjson"
    local cases = dofile(openresty.root .. "/tests/openresty/lua/loghaul_test.lua")
    local cfg = { base_url = e.base_url, ca_file = e.ca_file, zl_id = F.zenlayer.access_key_id,
                  zl_pw = F.zenlayer.access_key_password, tmp = openresty.run("mktemp -d"):gsub("%s+$", "") }
    local throttle = { path = "/api/v2/zls", status = 429, count = 3,
                       body = '{"requestId":"r1","code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}' }
    for _, name in ipairs{ "zl_range", "zl_badkey", "refused", "tls", "notfound", "throttled" } do
      if name == "throttled" then emu.fault(throttle) end
      local inside = cjson.decode((openresty.get(ngx_.url .. "/error?case=" .. name)))
      if name == "throttled" then emu.reset() emu.fault(throttle) end
      local outside = cases.run_case(name, cfg)
      if name == "throttled" then emu.reset() end
      assert.is_true(inside.is_error, name)
      assert.is_true(outside.is_error, name)
      for _, k in ipairs{ "kind", "code", "status", "retryable", "attempts", "vendor", "operation" } do
        assert.equal(outside[k], inside[k], name .. "." .. k)
      end
    end
    openresty.run("rm -rf " .. openresty.q(cfg.tmp))
  end)

  it("small requests answer within 250 ms of idle latency during a big download and a cursor loop", function()
    local f = emu.make_file("big.bin", BIG)
    local calm = idle()
    local work = ngx_.dir .. "/tmp"
    -- the download is cut every BIG/4 bytes, so it also resumes (waits between attempts: ngx.sleep)
    local dl = openresty.background(ngx_.url .. "/download?name=big.bin&cut=" .. math.floor(BIG / 4), work, "dl")
    local logs = openresty.background(ngx_.url .. "/logs?size=10&since=" .. utc(os.time() - 85 * 86400), work, "logs")
    local lat = openresty.probe(ngx_.port, "/probe", 0.05, function() return dl.done() and logs.done() end, 50)
    local s = openresty.summary(lat)
    local body, status, secs = dl.result()
    assert.equal(200, status)
    local v = require("cjson").decode(body)
    assert.is_true(v.ok, v.error and v.error.text)
    assert.equal(f.sha256, v.sha256)
    assert.equal(BIG, v.bytes)
    local lbody, lstatus, lsecs = logs.result()
    assert.equal(200, lstatus)
    assert.equal(5000, (lines(lbody)))
    print(("\n  probes during the transfers: n=%d p50=%.1fms p99=%.1fms max=%.1fms "
      .. "(download %d MiB in %.2fs, 500-page cursor loop in %.2fs)"):format(
      s.n, s.p50 * 1e3, s.p99 * 1e3, s.max * 1e3, BIG / 2^20, secs, lsecs))
    assert.is_true(s.n >= 10, "too few probes ran during the transfers")
    assert_free(s, calm)
    os.remove(f.path)
  end)

  it("run_all spreads 32 tasks over light threads and the thread pool while the event loop keeps serving", function()
    local calm = idle()
    local job = openresty.background(ngx_.url .. "/run_all?n=32", ngx_.dir .. "/tmp", "runall")
    local lat = openresty.probe(ngx_.port, "/probe", 0.05, job.done, 50)
    local s = openresty.summary(lat)
    local body, status, secs = job.result()
    assert.equal(200, status)
    local v = require("cjson").decode(body)
    assert.same({ 32, 32 }, { v.ok, v.n })
    -- 32 half-second answers, 8 threads in the pool: about 2 s, not 16 s one after another
    assert.is_true(v.seconds < 8, ("run_all took %.1f s"):format(v.seconds))
    print(("\n  probes during run_all (32 tasks, %.2fs): n=%d max=%.1fms"):format(secs, s.n, s.max * 1e3))
    assert_free(s, calm)
  end)

  it("control: the same download forced onto the blocking path (thread_pool = false) stalls the probes", function()
    local size = BIG
    local f = emu.make_file("big2.bin", size)
    local calm = idle()
    local dl = openresty.background(ngx_.url .. "/download?blocking=1&name=big2.bin", ngx_.dir .. "/tmp", "dlb")
    local lat = openresty.probe(ngx_.port, "/probe", 0.05, dl.done, 50)
    local s = openresty.summary(lat)
    local body, status = dl.result()
    assert.equal(200, status)
    assert.equal(f.sha256, require("cjson").decode(body).sha256)
    print(("\n  blocking control: n=%d p50=%.1fms p99=%.1fms max=%.1fms"):format(s.n, s.p50 * 1e3, s.p99 * 1e3,
      s.max * 1e3))
    if not small then -- 64 MiB may pass in under 250 ms even when blocking
      -- the criterion of the specs above fails here: it does tell a blocked worker
      assert.is_false(free(s, calm),
                      "the probes did not notice a blocked worker: the specs above would prove nothing")
    end
    os.remove(f.path)
  end)

  it("nginx's error log shows no yield across C calls and no disabled API", function()
    local log = ngx_.error_log()
    for _, bad in ipairs{ "attempt to yield across", "API disabled in the context", "lua entry thread aborted",
                          "runtime error", "no request found", "[alert]", "[crit]", "[emerg]" } do
      assert.is_nil(log:find(bad, 1, true), bad .. " in error.log:\n" .. log)
    end
  end)
end)
