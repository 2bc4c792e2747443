-- loghaul.run_all: tasks as coroutines on the curl multi scheduler. What a user sees: results in
-- task order, failures that stay with their task, waits that are timers, shared connections.
local loghaul = require "loghaul"
local core = require "loghaul.core"
local emu = require "helpers.emulator"
local vendors = require "helpers.vendors"
local runtime = require "loghaul.runtime"

describe("loghaul.run_all", function()
  local e, s
  setup(function() e = emu.start() end)
  before_each(function()
    emu.reset()
    s = core.session{ ca_file = e.ca_file }
  end)
  after_each(function() s:close() end)

  it("returns results in task order; a failing or raising task never stops the others", function()
    local seen = {}
    local tasks = {
      function() return runtime.transfer(s, { url = e.base_url .. "/slow?delay=0.3" }).status end,
      function() error("boom") end,
      function() return nil, "refused" end,
      function() return runtime.transfer(s, { url = e.base_url .. "/echo" }).status end,
    }
    local res = loghaul.run_all(tasks, { on_result = function(i, ok, v) seen[#seen + 1] = { i, ok, v } end })
    assert.are.same({ ok = true, value = 200 }, res[1])
    assert.is_false(res[2].ok)
    assert.matches("boom", res[2].err)
    assert.are.same({ ok = false, err = "refused" }, res[3])
    assert.are.same({ ok = true, value = 200 }, res[4])
    assert.are.equal(4, #seen)
  end)

  it("keeps at most `concurrency` tasks in flight and reuses their connections", function()
    local running, most = 0, 0
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = function()
        running = running + 1
        most = math.max(most, running)
        local r = runtime.transfer(s, { url = e.base_url .. "/slow?delay=0.1&i=" .. i })
        running = running - 1
        return r.status
      end
    end
    local res = loghaul.run_all(tasks, { concurrency = 4 })
    for i = 1, 20 do assert.are.same({ ok = true, value = 200 }, res[i]) end
    assert.are.equal(4, most)
    local st = emu.stats()
    assert.are.equal(20, st.requests)
    assert.is_true(st.connections <= 4, st.connections .. " connections for 4 tasks at a time")
  end)

  it("turns waits into timers: ten tasks sleeping 1 s take about 1 s together", function()
    local tasks = {}
    for i = 1, 10 do tasks[i] = function() runtime.sleep(1) return i end end
    local t0, c0 = core.monotonic(), os.clock()
    local res = loghaul.run_all(tasks, { concurrency = 10 })
    local wall = core.monotonic() - t0
    assert.are.same({ ok = true, value = 7 }, res[7])
    assert.is_true(wall >= 0.99 and wall < 3, ("took %.2f s"):format(wall))
    assert.is_true(os.clock() - c0 < 0.5, "waiting used CPU")
  end)

  it("reports one progress stream for the run, ending with every task", function()
    local last
    loghaul.run_all({ function() return 1 end, function() return nil, "x" end, function() return 3 end },
      { on_progress = function(ev) last = ev end })
    assert.are.same({ phase = "tasks", done = 3, total = 3, failed = 1, bytes = 0, percent = 100 }, last)
  end)

  it("stops and raises again when a callback raises (Ctrl-C inside a progress function)", function()
    local started = 0
    local tasks = {}
    for i = 1, 6 do
      tasks[i] = function()
        started = started + 1
        return runtime.transfer(s, { url = e.base_url .. "/trickle?bytes=10&interval=0.05&i=" .. i,
          progress = function() if i == 1 then error("interrupted!") end end })
      end
    end
    assert.has_error(function() loghaul.run_all(tasks, { concurrency = 2 }) end, "interrupted!")
    assert.is_true(started < 6, "the run went on after the interrupt")
    assert.has_error(function()
      loghaul.run_all({ function() return 1 end }, { on_result = function() error("callback failed") end })
    end, "callback failed")
  end)

  it("runs any client's methods: four Zenlayer pages at once", function()
    local zl = loghaul.zenlayer{ endpoint = e.base_url, ca_file = e.ca_file, log = false,
      access_key_id = vendors.fixtures.zenlayer.access_key_id,
      access_key_password = vendors.fixtures.zenlayer.access_key_password }
    local now = os.time()
    local tasks = {}
    for i = 1, 4 do
      tasks[i] = function()
        local page, err = zl:describe_logs{ startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", now - i * 7 * 86400),
          endTime = os.date("!%Y-%m-%dT%H:%M:%SZ", now - (i - 1) * 7 * 86400), size = 50 }
        if not page then return nil, err end
        return #page.dataSet
      end
    end
    local res = loghaul.run_all(tasks, { concurrency = 4 })
    for i = 1, 4 do
      assert.is_true(res[i].ok, tostring(res[i].err))
      assert.is_true(res[i].value > 0)
    end
    assert.is_true(emu.stats().connections <= 4)
    zl:close()
  end)

  it("refuses bad arguments with messages that name them", function()
    assert.has_error(function() loghaul.run_all("x") end, "loghaul.run_all: tasks must be a list of functions")
    assert.has_error(function() loghaul.run_all({ 1 }) end, "loghaul.run_all: tasks[1] must be a function, got number")
    assert.has_error(function() loghaul.run_all({}, { concurency = 2 }) end, "loghaul.run_all: unknown option 'concurency'")
    assert.has_error(function() loghaul.run_all({}, { concurrency = 0 }) end,
      "loghaul.run_all: concurrency must be a whole number >= 1")
    assert.are.same({}, loghaul.run_all({}))
  end)
end)
