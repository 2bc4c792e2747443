--- What runs inside an nginx worker thread (`ngx.run_worker_thread`, see `loghaul.runtime`).
-- Each thread VM keeps its own core sessions, keyed by the session options, so connections
-- (and TLS sessions) stay alive between the transfers that VM runs. Only plain data comes in
-- and goes out: the session options, the request (never a function), and
-- `{ res = result }`, `{ err = the core's error }` or `{ raised = message }` back.
-- @module loghaul.worker
local M = {}

--- Most sessions one thread VM keeps; past that the least recently used one is closed.
M.max_sessions = 8

local sessions, order = {}, {}

-- a stable text key for a table of options (strings, numbers, booleans)
local function key_of(opts)
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = ("%q=%q"):format(k, tostring(opts[k])) end
  return table.concat(parts, ",")
end

local function touch(key)
  for i = #order, 1, -1 do
    if order[i] == key then table.remove(order, i) end
  end
  order[#order + 1] = key
end

local function session_for(opts)
  local key = key_of(opts)
  local s = sessions[key]
  if not s then
    s = require("loghaul.core").session(opts)
    sessions[key] = s
    while #order >= M.max_sessions do
      local old = table.remove(order, 1)
      if sessions[old] then sessions[old]:close() end
      sessions[old] = nil
    end
  end
  touch(key)
  return s
end

--- Runs one request on this VM's session for `session_opts`.
-- @tparam table session_opts the options of `core.session`
-- @tparam table req the request for `session:request` (without `progress`)
-- @treturn table `{ res = }`, `{ err = }` or `{ raised = message }` (a programming error)
function M.transfer(session_opts, req)
  local ok, res, err = pcall(function() return session_for(session_opts):request(req) end)
  if not ok then return { raised = tostring(res) } end
  if res then return { res = res } end
  return { err = err }
end

--- `core.sha256_file(path)` in this thread.
-- @tparam string path
-- @treturn table `{ res = hex }`, `{ err = }` or `{ raised = message }`
function M.sha256_file(path)
  local ok, res, err = pcall(require("loghaul.core").sha256_file, path)
  if not ok then return { raised = tostring(res) } end
  if res then return { res = res } end
  return { err = err }
end

--- How many sessions this VM holds (for tests).
-- @treturn number
function M.count()
  return #order
end

return M
