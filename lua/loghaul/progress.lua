--- on_progress events `{ phase =, done =, total =, percent = }`, throttled to a few a second.
-- The final event of a phase is always delivered (`force`), and `done`/`total` are integers
-- (Lua 5.4 shows `113508352`, not `113508352.0`). An error raised by `on_progress` is not
-- caught here: it stops the operation and reaches the caller (inside a transfer, after
-- libcurl has returned and the `.part` is gone), like Ctrl-C's `interrupted!`.
-- @module loghaul.progress
local M = {}

--- Minimum seconds between two events of one reporter (a forced one is always sent).
M.interval = 0.25

local floor, tointeger = math.floor, math.tointeger

-- a byte or page count as an integer (the core's counts arrive as floats)
local function count(x)
  if type(x) ~= "number" then return nil end
  x = floor(x)
  return tointeger and tointeger(x) or x
end

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
    done, total = count(done) or 0, count(total)
    local percent
    if total and total > 0 then percent = math.min(100, done * 100 / total) end
    cb({ phase = phase, done = done, total = total, percent = percent })
  end
end

--- A core progress function `(dltotal, dlnow, ultotal, ulnow)` feeding a reporter, and the
-- function that sends the phase's final event once the transfer succeeded.
-- @tparam table client
-- @tparam string phase "upload" or "download"
-- @tparam[opt] number offset bytes already on disk before this transfer (resume)
-- @treturn function|nil the progress function (nil when the client has no on_progress)
-- @treturn function|nil `finish([total])`: the 100 % event (`total`: used when libcurl never
--   told the size)
function M.transfer(client, phase, offset)
  local report = M.reporter(client, phase)
  if not report then return nil, nil end
  offset = offset or 0
  local known
  local function on_transfer(dltotal, dlnow, ultotal, ulnow)
    if phase == "upload" then
      if ultotal and ultotal > 0 then known = ultotal end
      report(ulnow or 0, known)
    else
      if dltotal and dltotal > 0 then known = offset + dltotal end
      report(offset + (dlnow or 0), known)
    end
    return true
  end
  local function finish(total)
    total = known or total
    report(total or 0, total, true)
  end
  return on_transfer, finish
end

return M
