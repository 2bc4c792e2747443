--- Command-line flags for `loghaul`: `--name value`, `--name=value`, boolean switches,
-- positional words, `--` to end the flags. A mistake raises a usage error (exit code 2)
-- whose message names the flag.
-- @module loghaul.cli.args
local M = {}

local Usage = {}
Usage.__index = Usage
Usage.__tostring = function(e) return e.message end

--- A usage error: the command line itself is wrong (exit code 2).
-- @tparam string message
-- @treturn table
function M.usage_error(message)
  return setmetatable({ usage = true, message = message }, Usage)
end

--- Raises a usage error (caught by the CLI's main, which exits 2).
-- @tparam string fmt a format string, then its arguments
function M.fail(fmt, ...)
  error(M.usage_error(fmt:format(...)), 0)
end

--- Raises an error that ends the command with its own exit code (1: an operation failed),
-- after the message (already printed by the caller, or given here).
-- @tparam number code
-- @tparam string message
function M.abort(code, message)
  error(setmetatable({ usage = true, exit = code, message = message }, Usage), 0)
end

--- Whether a value is a usage error.
-- @param v
-- @treturn boolean
function M.is_usage(v)
  return getmetatable(v) == Usage
end

-- Levenshtein distance, for "did you mean"
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function nearest(name, flags)
  local best, bd
  for known in pairs(flags) do
    local d = distance(name, known)
    if d <= 2 and (not bd or d < bd or (d == bd and known < best)) then best, bd = known, d end
  end
  return best
end

--- Parses argv against a flag table.
-- @tparam table argv the words after the command's own words
-- @tparam table flags name (without `--`) → `{ value = "METAVAR" | nil (a switch), parse =
--   function(text, flag) -> value (may call fail), list = true (repeatable), short = "q" }`
-- @tparam string where the command's name, for messages (`loghaul clouddc export`)
-- @treturn table the values by flag name (switches true), and `positional` (a list)
function M.parse(argv, flags, where)
  local out, positional = {}, {}
  local short = {}
  for name, f in pairs(flags) do
    if f.short then short[f.short] = name end
  end
  local i, n = 1, #argv
  local function set(name, f, text)
    local v = true
    if f.value then
      v = text
      if f.parse then v = f.parse(text, "--" .. name) end
    end
    if f.list then
      out[name] = out[name] or {}
      table.insert(out[name], v)
    else
      out[name] = v
    end
  end
  while i <= n do
    local w = argv[i]
    if w == "--" then
      for j = i + 1, n do positional[#positional + 1] = argv[j] end
      break
    elseif w:sub(1, 2) == "--" then
      local name, inline = w:match("^%-%-([^=]+)=(.*)$")
      name = name or w:sub(3)
      local f = flags[name]
      if not f then
        local near = nearest(name, flags)
        M.fail("unknown flag --%s for %s%s (see %s --help)", name, where,
          near and ("; did you mean --" .. near .. "?") or "", where)
      end
      if f.value then
        if inline == nil then
          i = i + 1
          inline = argv[i]
          if inline == nil then M.fail("flag --%s needs a value (%s)", name, f.value) end
        end
      elseif inline ~= nil then
        M.fail("flag --%s takes no value (got --%s=%s)", name, name, inline)
      end
      set(name, f, inline)
    elseif w:match("^%-%a$") then
      local name = short[w:sub(2)]
      if not name then M.fail("unknown flag %s for %s (see %s --help)", w, where, where) end
      local f = flags[name]
      local v
      if f.value then
        i = i + 1
        v = argv[i]
        if v == nil then M.fail("flag %s needs a value (%s)", w, f.value) end
      end
      set(name, f, v)
    else
      positional[#positional + 1] = w
    end
    i = i + 1
  end
  out.positional = positional
  return out
end

--- Merges flag tables (later ones win), for commands that share common flags.
-- @tparam table ... flag tables
-- @treturn table
function M.merge(...)
  local t = {}
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...))) do t[k] = v end
  end
  return t
end

--- A positive integer flag value.
-- @tparam string text
-- @tparam string flag its name, for the message
-- @treturn number
function M.positive_integer(text, flag)
  local n = tonumber(text)
  if not text:match("^%d+$") or not n or n < 1 then
    M.fail("%s: %q is not a positive whole number", flag, text)
  end
  return n
end

--- Renders the flags of a command for --help.
-- @tparam table flags
-- @treturn string
function M.describe(flags)
  local names = {}
  for name in pairs(flags) do names[#names + 1] = name end
  table.sort(names)
  local lines = {}
  for _, name in ipairs(names) do
    local f = flags[name]
    if f.help then
      local left = (f.short and ("-" .. f.short .. ", ") or "    ") .. "--" .. name
        .. (f.value and (" " .. f.value) or "")
      lines[#lines + 1] = ("  %-28s %s"):format(left, f.help)
    end
  end
  return table.concat(lines, "\n")
end

return M
