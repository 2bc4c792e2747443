--- Runs one operation over many ids (servers, days, files) and turns the outcome into what
-- the command prints and its exit code.
--
-- THE ONE PLACE where the command line runs many ids: today one after another. When the
-- scheduler lands (`loghaul.run_all`, `dc:export_and_download_many`, issue 10), `M.run` is the
-- only function to change: give it the tasks with `concurrency` and keep `on_result`.
-- @module loghaul.cli.many
local M = {}

--- Runs `op(id)` for every id, one after another.
-- @tparam table ids
-- @tparam function op `op(id) -> value | nil, err`
-- @tparam table o `{ ui = progress renderer, concurrency = N (accepted; sequential until the
--   scheduler lands), on_result = function(id, ok, value_or_err) }`
-- @treturn table results in id order: `{ id =, ok =, value = | err = }`
function M.run(ids, op, o)
  local results, done, failed = {}, 0, 0
  for i, id in ipairs(ids) do
    if o.ui then o.ui:task(id, done, failed, #ids) end
    local ok, value, err = pcall(op, id)
    if not ok then
      -- an error object raised (each_log style) is this id's failure; anything else (Ctrl-C's
      -- "interrupted!", a bug) stops the whole run
      if type(value) ~= "table" then error(value, 0) end
      value, err = nil, value
    end
    local r = { id = id, ok = value ~= nil, value = value, err = value == nil and err or nil }
    if r.ok then done = done + 1 else failed = failed + 1 end
    results[i] = r
    if o.ui then o.ui:clear() end
    if o.on_result then o.on_result(id, r.ok, r.ok and r.value or r.err) end
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
