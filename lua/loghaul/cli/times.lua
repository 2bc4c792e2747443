--- Times and durations as the command line takes them: `now`, relative (`7d`, `12h`, `30m`,
-- `45s`, `2w`: that long before now) and ISO 8601 (`2026-05-01`, `2026-05-01T00:00:00Z`,
-- `2026-05-01T08:00:00+08:00`, fractions of a second dropped; no zone means UTC).
-- @module loghaul.cli.times
local args = require "loghaul.cli.args"
local util = require "loghaul.util"

local M = {}

local floor = math.floor
local unit = { s = 1, m = 60, h = 3600, d = 86400, w = 7 * 86400 }

--- Parses a duration: a number with an optional unit s, m, h, d or w (no unit: seconds).
-- @tparam string text
-- @treturn number|nil seconds, or nil when it is not a duration
function M.duration(text)
  local n, u = tostring(text):match("^(%d+%.?%d*)([smhdw]?)$")
  if not n then return nil end
  return tonumber(n) * unit[u ~= "" and u or "s"]
end

--- Parses an ISO 8601 date or date-time into Unix seconds.
-- @tparam string text
-- @treturn number|nil seconds, or nil when it is not one (or not a real date)
function M.iso8601(text)
  local y, mo, d, rest = tostring(text):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, se, zone = 0, 0, 0, "Z"
  if rest ~= "" then
    local hh, mm, tail = rest:match("^[T ](%d%d):(%d%d)(.*)$")
    if not hh then return nil end
    h, mi = tonumber(hh), tonumber(mm)
    local ss, tail2 = tail:match("^:(%d%d)(.*)$")
    if ss then se, tail = tonumber(ss), tail2:gsub("^[.,]%d+", "") end
    zone = tail == "" and "Z" or tail
  end
  -- the date and time checked and counted by the library's strict UTC parser
  local utc = util.parse_utc(("%s-%s-%sT%02d:%02d:%02dZ"):format(y, mo, d, h, mi, se))
  if not utc then return nil end
  local offset = 0
  if zone ~= "Z" and zone ~= "z" then
    local sign, oh, om = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then
      sign, oh = zone:match("^([+-])(%d%d)$")
      om = "00"
    end
    if not sign or tonumber(oh) > 23 or tonumber(om) > 59 then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "+" and 1 or -1)
  end
  return utc - offset
end

--- Parses a point in time: `now`, a duration before now, or ISO 8601.
-- @tparam string text
-- @tparam number now Unix seconds
-- @treturn number|nil seconds (whole), or nil when it is none of these
function M.point(text, now)
  if text == "now" then return floor(now) end
  local d = M.duration(text)
  if d then return floor(now - d) end
  return M.iso8601(text)
end

--- The UTC form the vendor APIs take: `yyyy-MM-ddTHH:mm:ssZ`.
-- @tparam number t Unix seconds
-- @treturn string
function M.format(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(t))
end

--- A flag parser for a point in time (raises a usage error naming the flag).
-- @tparam function now the clock (Unix seconds)
-- @treturn function parse(text, flag)
function M.point_flag(now)
  return function(text, flag)
    local t = M.point(text, now())
    if not t then
      args.fail("%s: %q is not a time: use now, a time before now (7d, 12h, 30m, 45s) or ISO 8601 "
        .. "(2026-05-01T00:00:00Z, 2026-05-01)", flag, text)
    end
    return t
  end
end

--- A flag parser for a duration (raises a usage error naming the flag).
-- @tparam string text
-- @tparam string flag
-- @treturn number seconds
function M.duration_flag(text, flag)
  local d = M.duration(text)
  if not d then args.fail("%s: %q is not a duration: use 5s, 30m, 12h, 7d", flag, text) end
  return d
end

--- A short human form of a duration (`1h02m`, `3m05s`, `12s`).
-- @tparam number s seconds
-- @treturn string
function M.human(s)
  s = floor(s + 0.5)
  if s >= 3600 then return ("%dh%02dm"):format(floor(s / 3600), floor(s % 3600 / 60)) end
  if s >= 60 then return ("%dm%02ds"):format(floor(s / 60), s % 60) end
  return ("%ds"):format(s)
end

return M
