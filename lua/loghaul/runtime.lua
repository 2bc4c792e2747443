--- The one place that knows whether loghaul runs inside nginx (OpenResty, lua-nginx-module).
--
-- Outside nginx: transfers run on the client's reused core session, `sleep` blocks with
-- `core.sleep`, and the clock is `core.time` (the wall clock, sub-second).
--
-- Inside an nginx worker, in a phase where `ngx.run_worker_thread` can yield (rewrite,
-- access, content, `ngx.timer.*`, ssl_certificate, ssl_client_hello): every transfer runs
-- in a thread of an nginx `thread_pool` (default `loghaul`) through `loghaul.worker`, so the
-- worker's event loop keeps serving; sleeps are `ngx.sleep` in the worker's own VM; the
-- clock is `ngx.now`. The mode is decided per call by what the current phase allows, not
-- by `ngx` existing: inside a worker thread `ngx` is a table too (its `get_phase` answers
-- "init"), but `run_worker_thread` and `ngx.sleep` are missing there. In a phase that
-- cannot yield (init_worker, log, header/body filters, set) a transfer blocks the worker,
-- as it would with any blocking library; loghaul warns about it once per worker.
--
-- Only plain data crosses into the thread: the request without its `progress` function
-- (a Lua function cannot move between VMs), the session options, and the result or error
-- tables back. The progress function is called twice from the worker's VM instead: once
-- with zeros before the transfer and once with the final counts after it, so `on_progress`
-- sees a start and an end event but nothing in between, and its return value cannot abort
-- a transfer that is already running in the thread.
-- @module loghaul.runtime

-- luacheck: globals ngx
local M = {}

--- The thread pool used when a client names none (`thread_pool` client option).
M.default_pool = "loghaul"

--- The module and function the worker thread runs (see `loghaul.worker`).
M.worker_module, M.worker_function = "loghaul.worker", "transfer"

-- lua-nginx-module 0.10.23: where ngx.sleep and ngx.run_worker_thread may be called
local sleep_phases = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
                       ssl_session_fetch = true, ssl_client_hello = true }
local thread_phases = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
                        ssl_client_hello = true }

local scheduler = require "loghaul.scheduler"

local core_mod
local function core()
  if not core_mod then core_mod = require "loghaul.core" end
  return core_mod
end

-- the current nginx phase and the ngx table, or nil outside nginx
local function phase()
  local n = rawget(_G, "ngx")
  if type(n) ~= "table" or type(n.get_phase) ~= "function" then return nil end
  local ok, p = pcall(n.get_phase)
  if not ok then return nil end
  return p, n
end

--- The ngx table when `ngx.sleep` may yield in the current phase, else nil.
-- @treturn table|nil
function M.ngx_sleep_usable()
  local p, n = phase()
  if p and sleep_phases[p] and type(n.sleep) == "function" then return n end
  return nil
end

--- The ngx table when `ngx.run_worker_thread` may be called in the current phase, else nil.
-- @treturn table|nil
function M.worker_thread_usable()
  local p, n = phase()
  if p and thread_phases[p] and type(n.run_worker_thread) == "function" then return n end
  return nil
end

--- Sleeps `seconds`: inside a task of `loghaul.run_all`, a timer of its scheduler (the task is
-- suspended, the others go on); else `ngx.sleep` (yields; the worker keeps serving) where the
-- phase allows it, else `core.sleep` (blocks the calling thread).
-- @tparam number seconds
function M.sleep(seconds)
  if not seconds or seconds <= 0 then return end
  if scheduler.current() then return scheduler.sleep(seconds) end -- a timer of run_all's loop
  local n = M.ngx_sleep_usable()
  if n then
    n.sleep(seconds)
    return
  end
  core().sleep(seconds)
end

--- Seconds since the Unix epoch with sub-second resolution, for signers (timestamps) and
-- deadlines: `ngx.now()` in nginx (the event loop's cached time), else `core.time()`
-- (CLOCK_REALTIME: os.time() counts whole seconds, and a clock up to a second behind makes
-- a token with a short lifetime look fresh after the server expired it).
-- @treturn number
function M.now()
  local n = rawget(_G, "ngx")
  if type(n) == "table" and type(n.now) == "function" then
    local ok, t = pcall(n.now)
    if ok and type(t) == "number" then return t end
  end
  return core().time()
end

--- The core's monotonic clock (seconds from an arbitrary point).
-- @treturn number
function M.monotonic()
  return core().monotonic()
end

local warned_blocking = false

local function thread_failure(pool, msg)
  msg = tostring(msg)
  if msg:find("not found", 1, true) then
    error(("loghaul: nginx thread pool %q not found: add `thread_pool %s threads=8;` to the main "
      .. "section of nginx.conf, or name another pool with the client option thread_pool"):format(pool, pool), 0)
  end
  -- the task never ran (queue overflow, out of memory): nothing was sent
  return nil, { kind = "network", code = "THREAD_POOL", message = "ngx.run_worker_thread failed: " .. msg,
                thread_pool = pool }
end

-- An error raised by a Lua callback of a transfer (the progress function, hence the user's
-- on_progress, or the interpreter's `interrupted!` on Ctrl-C, which fires in the first Lua code
-- that runs) is raised again here, after libcurl has returned: it is never turned into a value
-- that a loop would take for a failed download and go on. Callers that own files (download's
-- `.part`) clean up under pcall and raise it on.
local function raise_callback_error(err)
  if type(err) == "table" and err.kind == "aborted" and err.cause ~= nil then error(err.cause, 0) end
  return err
end

--- Runs one transfer: on the scheduler when called from a task of `loghaul.run_all`, on a
-- worker thread in nginx, else in place on the client's session.
-- `tctx` describes how to redo the session in a worker thread:
-- `{ session_opts = <the table given to core.session>, thread_pool = "name" | false }`;
-- nil (an injected session, e.g. a test double) or `thread_pool = false` always use `session`.
-- @tparam table session the client's core session (used outside the thread pool)
-- @tparam table req the request for `session:request`
-- @tparam[opt] table tctx
-- @return the core's result, or nil, err (the core's error table)
function M.transfer(session, req, tctx)
  -- inside a task of run_all: on the scheduler's multi handle, the task suspended meanwhile
  -- (a test double standing in for the session is not a core session: it runs in place)
  if type(session) == "userdata" and scheduler.current() then
    local res, err = scheduler.transfer(session, req)
    if res then return res end
    return nil, raise_callback_error(err)
  end
  local n = tctx and tctx.thread_pool ~= false and M.worker_thread_usable()
  if not n then
    if tctx and tctx.thread_pool ~= false and not warned_blocking then
      local p, ngx_t = phase()
      if p and type(ngx_t.log) == "function" then
        warned_blocking = true
        pcall(ngx_t.log, ngx_t.WARN, "loghaul: a transfer in nginx phase ", p,
          " cannot use ngx.run_worker_thread and blocks this worker until it ends")
      end
    end
    local res, err = session:request(req)
    if res then return res end
    return nil, raise_callback_error(err)
  end
  local pool = tctx.thread_pool or M.default_pool
  local progress = req.progress
  local plain = {}
  for k, v in pairs(req) do
    if k ~= "progress" then plain[k] = v end
  end
  if progress then
    progress(0, 0, 0, 0) -- an error here is raised before anything is sent
  end
  local ok, out = n.run_worker_thread(pool, M.worker_module, M.worker_function, tctx.session_opts or {}, plain)
  if not ok then return thread_failure(pool, out) end
  if type(out) ~= "table" then return thread_failure(pool, "no answer from the worker thread") end
  if out.raised ~= nil then error(out.raised, 0) end -- a programming error, raised as outside nginx
  local res, err = out.res, out.err
  if progress then
    -- the end event, with what curl's last progress call would have said
    local r = res or err or {}
    local h = r.headers or {}
    local dltotal = tonumber(h["content-length"]) or r.bytes or 0
    local up = r.uploaded or 0
    -- outside nginx an error in the progress function aborts the transfer; here the transfer
    -- has ended already, and the error is raised as it would be outside nginx
    progress(dltotal, r.bytes or 0, up, up)
  end
  if res then return res end
  return nil, err
end

--- SHA-256 of a file (lower-case hex, or nil, err), as `core.sha256_file`: in the thread pool
-- when a transfer would go there (hashing a GiB takes seconds, the event loop must not wait),
-- else with `core` in place.
-- @tparam table core the client's core module
-- @tparam string path
-- @tparam[opt] table tctx as for `transfer`
-- @return hex, or nil, err
function M.sha256_file(core_, path, tctx)
  local n = tctx and tctx.thread_pool ~= false and M.worker_thread_usable()
  if not n then return core_.sha256_file(path) end
  local pool = tctx.thread_pool or M.default_pool
  local ok, out = n.run_worker_thread(pool, M.worker_module, "sha256_file", path)
  if not ok then return thread_failure(pool, out) end
  if type(out) ~= "table" then return thread_failure(pool, "no answer from the worker thread") end
  if out.raised ~= nil then error(out.raised, 0) end
  if out.res then return out.res end
  return nil, out.err
end

return M
