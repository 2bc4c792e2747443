-- CloudDC fleets: which server ids exist besides the fixture server, their serial numbers,
-- and how long each one's export takes. Plain Lua (no ngx): tests/helpers/vendors.lua loads
-- this same file with dofile, so specs compute exactly the numbers the emulator uses.
local M = {}

M.MAX = 9999                              -- srv-0001 .. srv-9999

--- The number of a fleet server id ("srv-0042" -> 42), or nil for any other string.
function M.number(id)
  local n = type(id) == "string" and tonumber(id:match("^srv%-(%d%d%d%d)$"))
  if n and n >= 1 and n <= M.MAX then return n end
  return nil
end

--- The id of fleet server n (1 .. 9999): "srv-0001".
function M.id(n)
  return string.format("srv-%04d", n)
end

--- The serial number of fleet server `id` (20 characters, like the fixture's).
function M.sn(id)
  return string.format("2102313LKN10S%07d", assert(M.number(id), "not a fleet server id"))
end

--- A fraction in [0, 1) derived from the id alone: a string hash (exact in doubles on Lua 5.1
-- and 5.4 alike) stepped along the golden ratio, so neighbouring ids land far apart.
function M.fraction(id)
  local h = 5381
  for i = 1, #id do h = (h * 33 + id:byte(i)) % 4294967296 end
  local x = h * 0.6180339887498949
  return x - math.floor(x)
end

--- Seconds an export of server `id` takes under the CloudDC settings `cfg`
-- (export_seconds + export_seconds_spread * fraction(id)), or nil when exports count polls.
function M.export_seconds(id, cfg)
  local base = tonumber(cfg.export_seconds)
  if not base or cfg.export_seconds == false then return nil end
  return base + (tonumber(cfg.export_seconds_spread) or 0) * M.fraction(id)
end

return M
