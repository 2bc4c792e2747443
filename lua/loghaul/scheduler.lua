--- The scheduler behind `loghaul.run_all`: many chains at once on one thread.
--
-- Each task is ordinary sequential Lua run as a coroutine. When it sends a request
-- (`runtime.transfer`) or waits (`runtime.sleep`: a poll interval, a retry backoff, a rate
-- limit), it yields here; the transfer goes to `core.multi` (libcurl's multi interface, one
-- connection cache for every task) and the wait becomes a timer. The loop then blocks in
-- `multi:wait` (curl_multi_poll) until a transfer ends or the earliest timer is due, and
-- resumes whoever can go on. No threads, no busy waiting. Code outside a task is untouched:
-- `runtime` only yields when the running coroutine is a task of a scheduler.
-- @module loghaul.scheduler
local M = {}

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack -- luacheck: ignore 143

-- task coroutine -> its scheduler (weak: a finished task's coroutine may go)
local owner = setmetatable({}, { __mode = "k" })

local RAISE = {} -- resume marker: re-raise the value inside the task

local Sched = {}
Sched.__index = Sched

--- A new scheduler.
-- @tparam[opt] table core the core module (default `loghaul.core`)
-- @treturn table
function M.new(core)
  core = core or require "loghaul.core"
  return setmetatable({
    core = core, multi = core.multi(), waiting = {}, timers = {}, ready = {}, parked = {}, live = 0,
  }, Sched)
end

--- The scheduler whose task is running now, or nil (outside any task, or inside a coroutine
-- of the user's own that a task started: that one cannot be suspended by us).
-- @treturn table|nil
function M.current()
  local co = coroutine.running()
  return co and owner[co] or nil
end

-- the monotonic clock of the core
function Sched:now()
  return self.core.monotonic()
end

--- Starts a task: `fn(...)` as a coroutine; `done(ok, ...)` gets its end (ok false: it raised,
-- with the error value).
-- @tparam function fn
-- @tparam function done
function Sched:spawn(fn, done, ...)
  local args = pack(...)
  local co = coroutine.create(function() return fn(unpack(args, 1, args.n)) end)
  owner[co] = self
  self.live = self.live + 1
  self.ready[#self.ready + 1] = { co = co, done = done, args = { n = 0 } }
end

-- Runs a task until it yields or ends, and files what it yielded.
function Sched:step(t, args)
  local r = pack(coroutine.resume(t.co, unpack(args, 1, args.n)))
  if coroutine.status(t.co) == "dead" then
    owner[t.co] = nil
    self.live = self.live - 1
    t.done(unpack(r, 1, r.n))
    return
  end
  local what = r[2]
  if what == "transfer" then
    local ok, id, err = pcall(self.multi.add, self.multi, r[3], r[4])
    if not ok then -- a programming error in the request: raised inside the task, as outside
      self.ready[#self.ready + 1] = { co = t.co, done = t.done, args = pack(RAISE, id) }
    elseif id == nil then
      self.ready[#self.ready + 1] = { co = t.co, done = t.done, args = pack(nil, err) }
    else
      self.waiting[id] = t
    end
  elseif what == "park" then -- until someone calls wake(co): a consumer that took its output
    self.parked[t.co] = t
  elseif what == "sleep" then
    local at = self:now() + (tonumber(r[3]) or 0)
    local timers, i = self.timers, #self.timers + 1
    while i > 1 and timers[i - 1].at > at do i = i - 1 end -- sorted by time; few timers
    table.insert(timers, i, { at = at, co = t.co, done = t.done })
  else -- a bare coroutine.yield() in a task: it just lets the others run
    self.ready[#self.ready + 1] = { co = t.co, done = t.done, args = { n = 0 } }
  end
end

--- Wakes a parked task (one that yielded "park", e.g. a producer whose buffer was full).
-- @tparam thread co
function Sched:wake(co)
  local t = self.parked[co]
  if t then
    self.parked[co] = nil
    self.ready[#self.ready + 1] = { co = t.co, done = t.done, args = { n = 0 } }
  end
end

--- Runs until every task has ended, or until `stop()` is true. `between()`, when given, is
-- called after each step, so a caller can spawn more (a concurrency limit).
-- @tparam[opt] function between
-- @tparam[opt] function stop
function Sched:run(between, stop)
  while true do
    while #self.ready > 0 do
      local t = table.remove(self.ready, 1)
      self:step(t, t.args)
      if between then between() end
    end
    if self.live == 0 or (stop and stop()) then return end
    if next(self.waiting) == nil and not self.timers[1] then
      error("loghaul.scheduler: every task is parked: nothing can wake them", 0)
    end
    local timeout = 3600
    if self.timers[1] then timeout = math.max(0, self.timers[1].at - self:now()) end
    local done = self.multi:wait(timeout)
    for _, d in ipairs(done) do
      local t = self.waiting[d.id]
      self.waiting[d.id] = nil
      if d.res then
        self.ready[#self.ready + 1] = { co = t.co, done = t.done, args = pack(d.res) }
      else
        self.ready[#self.ready + 1] = { co = t.co, done = t.done, args = pack(nil, d.err) }
      end
    end
    local now = self:now()
    while self.timers[1] and self.timers[1].at <= now do
      local t = table.remove(self.timers, 1)
      self.ready[#self.ready + 1] = { co = t.co, done = t.done, args = { n = 0 } }
    end
    if stop and #self.ready == 0 and stop() then return end
  end
end

--- Stops what is still in flight and frees the multi handle.
function Sched:close()
  self.multi:close()
end

--- From inside a task: sends a request on the scheduler and suspends until it ends.
-- @tparam userdata session a `core.session` (its options apply; the multi's connections are used)
-- @tparam table req as `session:request` takes it
-- @return the result, or nil, err
function M.transfer(session, req)
  local r = pack(coroutine.yield("transfer", session, req))
  if r[1] == RAISE then error(r[2], 0) end
  return unpack(r, 1, r.n)
end

--- From inside a task: suspends it until `Sched:wake` is called for it.
function M.park()
  coroutine.yield("park")
end

--- From inside a task: suspends it for `seconds` (a timer of the scheduler, not a sleep).
-- @tparam number seconds
function M.sleep(seconds)
  coroutine.yield("sleep", seconds)
end

return M
