-- loghaul.runtime outside nginx, and its nginx paths against a stand-in `ngx` whose
-- run_worker_thread runs loghaul.worker in-process (the real thing: openresty_spec.lua).
local runtime = require "loghaul.runtime"
local core = require "loghaul.core"
local emu = require "helpers.emulator"

describe("loghaul.runtime", function()
  local saved_ngx = rawget(_G, "ngx")
  after_each(function() rawset(_G, "ngx", saved_ngx) end)

  it("outside nginx: Unix seconds with sub-second steps, core.sleep", function()
    local t = runtime.now()
    assert.is_true(math.abs(t - os.time()) <= 1.01)
    local m = core.monotonic()
    runtime.sleep(0.05)
    local t2 = runtime.now()
    assert.is_true(core.monotonic() - m >= 0.05)
    assert.is_true(t2 - t >= 0.049 and t2 - t < 1)
    assert.is_nil(runtime.worker_thread_usable())
    assert.is_nil(runtime.ngx_sleep_usable())
  end)

  local function fake_ngx(phase, with_threads)
    local calls = { sleeps = {}, threads = {} }
    local n = { get_phase = function() return phase end, now = function() return 1700000000.5 end,
                WARN = 5, log = function(...) calls.log = { ... } end,
                sleep = function(s) calls.sleeps[#calls.sleeps + 1] = s end }
    if with_threads then
      n.run_worker_thread = function(pool, mod, fn, ...)
        calls.threads[#calls.threads + 1] = { pool = pool, mod = mod, fn = fn, args = { ... } }
        if pool ~= "loghaul" and pool ~= "other" then return false, "thread pool " .. pool .. " not found" end
        for _, a in ipairs{ ... } do
          if type(a) == "table" then
            for _, v in pairs(a) do assert(type(v) ~= "function" and type(v) ~= "userdata", "only plain data") end
          end
        end
        return true, require(mod)[fn](...)
      end
    end
    rawset(_G, "ngx", n)
    return calls
  end

  it("in a yieldable phase: ngx.sleep and ngx.now; in the thread's 'init' phase: neither", function()
    local calls = fake_ngx("content", true)
    runtime.sleep(0.25)
    assert.same({ 0.25 }, calls.sleeps)
    assert.equal(1700000000.5, runtime.now())
    fake_ngx("init", false) -- what a worker thread's VM shows
    assert.is_nil(runtime.worker_thread_usable())
    assert.is_nil(runtime.ngx_sleep_usable())
    fake_ngx("log", true)   -- a phase that cannot yield
    assert.is_nil(runtime.worker_thread_usable())
  end)

  describe("transfer", function()
    local e
    setup(function() e = emu.start() end)

    it("runs in the pool with plain data, emits progress start and end, keeps the thread's session", function()
      local calls = fake_ngx("timer", true)
      local opts = { ca_file = e.ca_file, timeout = 30 }
      local session = core.session(opts)
      local events = {}
      local req = { url = e.base_url .. "/files/small.bin",
                    progress = function(dltotal, dlnow) events[#events + 1] = { dltotal, dlnow } return true end }
      local res = assert(runtime.transfer(session, req, { session_opts = opts }))
      assert.equal(200, res.status)
      assert.equal(1024, #res.body)
      assert.same({ { 0, 0 }, { 1024, 1024 } }, events)
      assert.equal("loghaul", calls.threads[1].pool)
      assert.is_nil(calls.threads[1].args[2].progress)
      local res2 = assert(runtime.transfer(session, { url = e.base_url .. "/echo" }, { session_opts = opts }))
      assert.is_true(res2.reused)
      -- an error comes back as the core's error table
      local _, err = runtime.transfer(session, { url = "https://127.0.0.1:1/" }, { session_opts = opts })
      assert.equal("network", err.kind)
      assert.equal("CURLE_COULDNT_CONNECT", err.code)
      -- a programming error raises as outside nginx
      assert.has_error(function() runtime.transfer(session, { method = "GET" }, { session_opts = opts }) end)
      session:close()
    end)

    it("names a missing pool; thread_pool = false or an injected session stays in place", function()
      local calls = fake_ngx("content", true)
      local fake = { request = function() return { status = 204 } end }
      local tctx = { session_opts = {}, thread_pool = "nope" }
      assert.has_error(function() runtime.transfer(fake, { url = "x" }, tctx) end,
        'loghaul: nginx thread pool "nope" not found: add `thread_pool nope threads=8;` to the main section of '
        .. "nginx.conf, or name another pool with the client option thread_pool")
      assert.equal(204, runtime.transfer(fake, { url = "x" }, { session_opts = {}, thread_pool = false }).status)
      assert.equal(204, runtime.transfer(fake, { url = "x" }, nil).status)
      assert.equal(1, #calls.threads)
    end)

    it("warns once when a phase cannot yield and the transfer blocks", function()
      local calls = fake_ngx("init_worker", true)
      local fake = { request = function() return { status = 204 } end }
      assert.equal(204, runtime.transfer(fake, { url = "x" }, { session_opts = {} }).status)
      assert.matches("blocks this worker", table.concat(calls.log or {}, "", 2))
    end)
  end)
end)
