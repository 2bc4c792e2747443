--- `loghaul.run_all`: many chains at once, each written as ordinary sequential Lua.
--
-- Outside nginx the tasks run as coroutines on a scheduler over libcurl's multi interface
-- (`loghaul.scheduler`): one thread, every transfer in flight at once up to `concurrency`
-- tasks, connections shared between tasks to the same host. Inside nginx they run on light
-- threads (`ngx.thread.spawn`), each transfer on the worker-thread pool as usual.
-- @module loghaul.run_all
local runtime = require "loghaul.runtime"
local scheduler = require "loghaul.scheduler"

local M = {}

--- Default number of tasks in flight at once.
M.default_concurrency = 16

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack -- luacheck: ignore 143

local allowed = { concurrency = true, on_result = true, on_progress = true }

local function check(tasks, opts)
  if type(tasks) ~= "table" then error("loghaul.run_all: tasks must be a list of functions", 3) end
  for i = 1, #tasks do
    if type(tasks[i]) ~= "function" then
      error(("loghaul.run_all: tasks[%d] must be a function, got %s"):format(i, type(tasks[i])), 3)
    end
  end
  if opts ~= nil and type(opts) ~= "table" then error("loghaul.run_all: opts must be a table", 3) end
  opts = opts or {}
  for k in pairs(opts) do
    if not allowed[k] then error(("loghaul.run_all: unknown option '%s'"):format(tostring(k)), 3) end
  end
  local c = opts.concurrency or M.default_concurrency
  if type(c) ~= "number" or c < 1 or c ~= math.floor(c) or c == math.huge then
    error("loghaul.run_all: concurrency must be a whole number >= 1", 3)
  end
  for _, k in ipairs{ "on_result", "on_progress" } do
    if opts[k] ~= nil and type(opts[k]) ~= "function" then
      error("loghaul.run_all: " .. k .. " must be a function", 3)
    end
  end
  return opts, c
end

-- The record of one task's end. A task that returns `nil, err` (the library's way to fail)
-- failed; one that raised failed with what it raised.
local function outcome(ok, r)
  if not ok then return { ok = false, err = r[1] } end
  if r[1] == nil and r[2] ~= nil then return { ok = false, err = r[2] } end
  return { ok = true, value = r[1] }
end

-- What every mode shares: results in task order, on_result and one progress stream. A
-- callback that raises stops the run; its error is raised again once the run has stopped.
local function recorder(n, opts)
  local rec = { results = {}, done = 0, failed = 0, bytes = 0 }
  function rec.finish(i, ok, r)
    local o = outcome(ok, r)
    rec.results[i] = o
    rec.done = rec.done + 1
    if not o.ok then rec.failed = rec.failed + 1 end
    if o.ok and type(o.value) == "table" and type(o.value.bytes) == "number" then
      rec.bytes = rec.bytes + o.value.bytes -- a downloaded file's size
    end
    local cb_ok, cb_err = true, nil
    if opts.on_result then
      if o.ok then
        cb_ok, cb_err = pcall(opts.on_result, i, true, o.value)
      else
        cb_ok, cb_err = pcall(opts.on_result, i, false, o.err)
      end
    end
    if cb_ok and opts.on_progress then
      cb_ok, cb_err = pcall(opts.on_progress, { phase = "tasks", done = rec.done, total = n, failed = rec.failed,
        bytes = rec.bytes, percent = n > 0 and math.floor(rec.done * 100 / n) or 100 })
    end
    if not cb_ok and rec.raised == nil then rec.raised = { cb_err } end
  end
  return rec
end

-- A transfer aborted because a Lua callback raised (Ctrl-C's "interrupted!" inside a
-- progress function, say) must stop the whole run, not count as one task's failure.
local function callback_raised(o)
  local e = not o.ok and o.err
  return type(e) == "table" and e.kind == "aborted" and e.cause ~= nil and e.cause or nil
end

local function run_scheduled(tasks, concurrency, rec)
  local n = #tasks
  local s = scheduler.new()
  local next_i, running = 1, 0
  local function fill()
    while running < concurrency and next_i <= n and not rec.raised do
      local i = next_i
      next_i, running = next_i + 1, running + 1
      s:spawn(tasks[i], function(ok, ...)
        running = running - 1
        rec.finish(i, ok, pack(...))
        local cause = callback_raised(rec.results[i])
        if cause ~= nil and rec.raised == nil then rec.raised = { cause } end
      end)
    end
  end
  fill()
  local ok, err = pcall(s.run, s, function()
    if rec.raised then error(rec.raised, 0) end
    fill()
  end)
  s:close()
  if not ok and err ~= rec.raised then error(err, 0) end
end

-- nginx: light threads pulling tasks from one queue; transfers go to the thread pool.
local function run_light_threads(ngx, tasks, concurrency, rec)
  local n, next_i = #tasks, 1
  local function worker()
    while next_i <= n and not rec.raised do
      local i = next_i
      next_i = next_i + 1
      ngx.sleep(0) -- a task that never yields (no transfer) must not hold the event loop
      local r = pack(pcall(tasks[i]))
      rec.finish(i, r[1], pack(unpack(r, 2, r.n)))
    end
  end
  local threads = {}
  for k = 1, math.min(concurrency, n) do
    threads[k] = ngx.thread.spawn(worker)
    ngx.sleep(0) -- let the event loop serve between two starts
  end
  for k = 1, #threads do ngx.thread.wait(threads[k]) end
end

--- Runs tasks at once and collects what each gave.
-- @tparam {function,...} tasks each may call any client's methods; it runs as ordinary
--   sequential Lua (a coroutine suspended while its transfers are in flight or while it waits)
-- @tparam[opt] table opts `concurrency` (tasks in flight at once, default 16), `on_result =
--   function(i, ok, value_or_err)` (as each task ends), `on_progress = function(ev)` (one stream
--   for the run: `{ phase = "tasks", done =, total =, failed =, bytes =, percent = }`)
-- @treturn table in task order, `{ ok = true, value = v }` or `{ ok = false, err = e }`: a task
--   that raised, or returned `nil, err`, failed. One failing task never stops the others; an
--   error raised by a callback (`on_result`, `on_progress`, a progress function: Ctrl-C's
--   "interrupted!") stops the run and is raised again once it has stopped.
function M.run_all(tasks, opts)
  local concurrency
  opts, concurrency = check(tasks, opts)
  local rec = recorder(#tasks, opts)
  local ngx = runtime.worker_thread_usable()
  if ngx and type(ngx.thread) == "table" then
    run_light_threads(ngx, tasks, concurrency, rec)
  else
    run_scheduled(tasks, concurrency, rec)
  end
  if rec.raised then error(rec.raised[1], 0) end
  return rec.results
end

return M
