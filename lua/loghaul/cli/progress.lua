--- The progress line of the command line, on stderr: bytes, rate and ETA for transfers, the
-- percentage of a CloudDC export while it is polled, pages and records while paging, and
-- tasks done/failed when many ids run. One line redrawn with `\r`, only when enabled
-- (stderr is a terminal, or `--progress`); messages clear it before they print.
-- @module loghaul.cli.progress
local times = require "loghaul.cli.times"

local M = {}

local R = {}
R.__index = R

--- Whether stderr is a terminal (`test -t 2` in a child shell, which inherits our stderr).
-- @treturn boolean
function M.stderr_is_tty()
  local r = os.execute("test -t 2")
  return r == true or r == 0
end

--- A renderer.
-- @tparam table o `{ enabled = bool, out = file (stderr), clock = function → seconds }`
-- @treturn table
function M.new(o)
  local clock = o.clock or function()   -- the core's monotonic clock, loaded at the first transfer
    local ok, core = pcall(require, "loghaul.core")
    return (ok and core.monotonic or os.time)()
  end
  return setmetatable({ enabled = o.enabled, out = o.out or io.stderr, clock = clock,
                        shown = false, prefix = "" }, R)
end

--- Bytes as text: `512 B`, `12.3 KiB`, `4.0 MiB`, `1.20 GiB`.
-- @tparam number n
-- @treturn string
function M.bytes(n)
  if n < 1024 then return ("%d B"):format(n) end
  if n < 1024 ^ 2 then return ("%.1f KiB"):format(n / 1024) end
  if n < 1024 ^ 3 then return ("%.1f MiB"):format(n / 1024 ^ 2) end
  return ("%.2f GiB"):format(n / 1024 ^ 3)
end

function R:draw(text)
  if not self.enabled then return end
  self.out:write("\r", self.prefix, text, "\027[K")
  self.out:flush()
  self.shown = true
end

--- Removes the progress line (before a message, and at the end).
function R:clear()
  if self.shown then
    self.out:write("\r\027[K")
    self.out:flush()
    self.shown = false
  end
end

--- Prints a message line on stderr (the progress line is cleared first, then redrawn later).
-- @tparam string text
function R:message(text)
  self:clear()
  self.out:write(text, "\n")
  self.out:flush()
end

--- Starts the next task of a run over many ids: the prefix shows the counts and the id.
-- @tparam string id
-- @tparam number done tasks finished so far (ok)
-- @tparam number failed tasks failed so far
-- @tparam number total
function R:task(id, done, failed, total)
  self.transfer = nil
  if total > 1 then
    self.prefix = ("[%d/%d done, %d failed] %s: "):format(done, total, failed, id)
  else
    self.prefix = id .. ": "
  end
  self:draw("starting")
end

--- The `on_progress` function to give a client: renders each event.
-- @treturn function
function R:callback()
  return function(ev) self:event(ev) end
end

--- Renders one `on_progress` event `{ phase =, done =, total =, percent = }` (plus `records`
-- when the operation reports them).
-- @tparam table ev
function R:event(ev)
  if not self.enabled then return end
  local phase, done, total = ev.phase, ev.done or 0, ev.total
  if phase == "download" or phase == "upload" then
    local now = self.clock()
    local t = self.transfer
    if not t or t.phase ~= phase or done < t.last then
      t = { phase = phase, t0 = now, d0 = done, last = done }
      self.transfer = t
    end
    t.last = done
    local parts = { phase, M.bytes(done) }
    if total and total > 0 then
      parts[#parts + 1] = ("of %s %3.0f%%"):format(M.bytes(total), math.min(100, done * 100 / total))
    end
    local dt = now - t.t0
    if dt > 0.2 and done > t.d0 then
      local rate = (done - t.d0) / dt
      parts[#parts + 1] = M.bytes(rate) .. "/s"
      if total and total > done then parts[#parts + 1] = "ETA " .. times.human((total - done) / rate) end
    end
    self:draw(table.concat(parts, " "))
  elseif phase == "export" then
    self:draw(("export %3.0f%%"):format(ev.percent or done or 0))
  elseif phase == "page" then
    local text = ("pages %d"):format(done)
    if ev.records then text = text .. (", records %d"):format(ev.records) end
    self:draw(text)
  else
    self:draw(tostring(phase))
  end
end

return M
