--- on_progress events `{ phase =, done =, total =, percent = }`, throttled to a few a second.
-- @module loghaul.progress
local M = {}

--- Minimum seconds between two events of one reporter (the last one is always sent).
M.interval = 0.25

--- A reporter for one phase of one operation.
-- @tparam table client the client (its `on_progress` and `now`)
-- @tparam string phase "upload" | "download" | "export" | "page"
-- @treturn function|nil `report(done, total, force)`, or nil when the client has no on_progress
function M.reporter(client, phase)
  local cb = client.on_progress
  if not cb then return nil end
  local last
  return function(done, total, force)
    local t = client.now()
    if not force and last and t - last < M.interval then return end
    last = t
    local percent
    if total and total > 0 then percent = math.min(100, done * 100 / total) end
    local ok, err = pcall(cb, { phase = phase, done = done, total = total, percent = percent })
    if not ok then client:log("warn", "on_progress raised: " .. tostring(err)) end
  end
end

--- A core progress function `(dltotal, dlnow, ultotal, ulnow)` feeding a reporter.
-- @tparam table client
-- @tparam string phase "upload" or "download"
-- @tparam[opt] number offset bytes already on disk before this transfer (resume)
-- @treturn function|nil
function M.transfer(client, phase, offset)
  local report = M.reporter(client, phase)
  if not report then return nil end
  offset = offset or 0
  return function(dltotal, dlnow, ultotal, ulnow)
    if phase == "upload" then
      report(ulnow or 0, (ultotal and ultotal > 0) and ultotal or nil)
    else
      report(offset + (dlnow or 0), (dltotal and dltotal > 0) and offset + dltotal or nil)
    end
    return true
  end
end

return M
