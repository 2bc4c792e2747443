--- Runs one operation over many ids (servers, days, files) and turns the outcome into what
-- the command prints and its exit code. The ids run at once on the scheduler of
-- `loghaul.run_all` (`concurrency` of them in flight).
-- @module loghaul.cli.many
local loghaul = require "loghaul"

local M = {}

--- Runs `op(id)` for every id, `concurrency` at once (`loghaul.run_all`).
-- @tparam table ids
-- @tparam function op `op(id) -> value | nil, err`
-- @tparam table o `{ ui = progress renderer, concurrency = N (default 16), on_result =
--   function(id, ok, value_or_err) }`
-- @treturn table results in id order: `{ id =, ok =, value = | err = }`
function M.run(ids, op, o)
  local done, failed, tasks = 0, 0, {}
  -- the progress line names the id its events belong to when one id is in flight; with
  -- several at once their events share the line, which then counts them instead
  local running, nrunning = {}, 0
  local function show()
    if not o.ui then return end
    local label = nrunning .. " running"
    if nrunning == 1 then label = ids[next(running)] end
    o.ui:task(label, done, failed, #ids)
  end
  for i, id in ipairs(ids) do
    tasks[i] = function()
      running[i], nrunning = true, nrunning + 1
      show()
      local ok, value, err = pcall(op, id)
      if not ok then
        -- an error object raised (each_log style) is this id's failure; anything else (Ctrl-C's
        -- "interrupted!", a bug) stops the whole run
        if type(value) ~= "table" then error({ stop = value }, 0) end
        return nil, value
      end
      if value == nil then return nil, err end
      return value
    end
  end
  local ok, out = pcall(loghaul.run_all, tasks, {
    concurrency = o.concurrency or 16,
    on_result = function(i, task_ok, v)
      if type(v) == "table" and v.stop ~= nil then error(v.stop, 0) end
      if task_ok then done = done + 1 else failed = failed + 1 end
      running[i], nrunning = nil, nrunning - 1
      if o.ui then
        o.ui:clear()
        if nrunning > 0 then show() end
      end
      if o.on_result then o.on_result(ids[i], task_ok, v) end
    end,
  })
  if o.ui then o.ui:clear() end
  if not ok then error(type(out) == "table" and out.stop ~= nil and out.stop or out, 0) end
  local results = {}
  for i, r in ipairs(out) do
    results[i] = { id = ids[i], ok = r.ok, value = r.value, err = (not r.ok) and r.err or nil }
  end
  return results
end

--- The exit code of a run: 0 all done, 1 every id failed (or the only one), 3 some failed.
-- @tparam table results
-- @treturn number
-- @treturn table the failed results
function M.exit_code(results)
  local failed = {}
  for _, r in ipairs(results) do
    if not r.ok then failed[#failed + 1] = r end
  end
  if #failed == 0 then return 0, failed end
  if #failed == #results then return 1, failed end
  return 3, failed
end

--- An error as one line: the vendor's code and message (error objects have a __tostring).
-- @param err
-- @treturn string
function M.describe(err)
  if err == nil then return "failed (no reason given)" end
  return (tostring(err):gsub("\n", " "))
end

--- The machine-readable form of an error (for --json).
-- @param err
-- @treturn table
function M.error_table(err)
  if type(err) ~= "table" then return { message = tostring(err) } end
  return { kind = err.kind, code = err.code and tostring(err.code) or nil, status = err.status,
           message = M.describe(err), request_id = err.request_id, retryable = err.retryable,
           attempts = err.attempts }
end

return M
