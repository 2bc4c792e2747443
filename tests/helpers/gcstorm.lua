--- A collector that runs a whole cycle, and a finalizer, at every allocation: the way to
-- reach, deterministically, the window between two reads of one table inside a C function.
-- `gcstorm.run(f, act)` calls f() while act(k) runs from a finalizer at the k-th cycle
-- (k = 1, 2, ...); a spec sweeps the k at which act mutates the arguments.
local M = {}

local lua54 = not jit and _VERSION == "Lua 5.4"

local function pack(...) return { n = select("#", ...), ... } end

--- A fresh object whose finalizer is fn (LuaJIT and 5.1 finalize userdata only).
function M.finalizer(fn)
  if newproxy then
    local u = newproxy(true)
    getmetatable(u).__gc = fn
    return u
  end
  return setmetatable({}, { __gc = fn })
end

-- collectgarbage is a no-op inside a finalizer on 5.4, so the storm is set and reset here.
local function storm_on()
  collectgarbage()
  local prev
  if lua54 then
    -- pause 1 (0 means "unchanged"), stepsize 2^40: every step runs to the end of a cycle
    prev = collectgarbage("incremental", 1, 1000, 40)
  else
    prev = { collectgarbage("setpause", 0), collectgarbage("setstepmul", 1000000) }
  end
  collectgarbage() -- the debt now follows the new pause: the next allocation runs a cycle
  return prev
end

local function storm_off(prev)
  if lua54 then
    collectgarbage("incremental", 200, 100, 13)
    collectgarbage(prev) -- lua.c runs the generational mode
  else
    collectgarbage("setpause", prev[1])
    collectgarbage("setstepmul", prev[2])
  end
  collectgarbage()
end

--- Runs f() with a GC cycle at every allocation, act(k) called from the k-th finalizer until
-- it returns true. Returns pcall(f)'s results as a packed table.
function M.run(f, act)
  local live, k = true, 0
  local function arm()
    M.finalizer(function()
      if not live then return end
      k = k + 1
      if act(k) then live = false else arm() end
    end)
  end
  local prev = storm_on()
  arm()
  local res = pack(pcall(f))
  live = false
  storm_off(prev)
  return res
end

return M
