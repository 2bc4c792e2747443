--- JSON for the Lua layers: lua-cjson for decoding and encoding, plus a small scanner that
-- finds the raw text of one value (Zenlayer's cursor must keep every digit the server sent).
-- @module loghaul.json
local cjson = require("cjson.safe").new()
cjson.decode_max_depth(64)

local M = {}
local null = cjson.null

-- Lua 5.4 has integers, but cjson decodes every number as a float: `total_number` would
-- print as 40.0. Whole floats become integers there (exact: cjson's floats are exact up to
-- 2^53, and math.tointeger refuses anything that is not a whole number).
local tointeger = math.tointeger or function(x) return x end

-- JSON null becomes absent; whole numbers become integers where Lua has them
local function normalize(v, depth)
  if type(v) == "number" then return tointeger(v) or v end
  if type(v) ~= "table" or depth > 64 then return v end
  for k, x in pairs(v) do
    if x == null then v[k] = nil else v[k] = normalize(x, depth + 1) end
  end
  return v
end

--- Decodes JSON text; JSON `null` becomes nil (absent), whole numbers are integers in Lua 5.4.
-- @tparam string s
-- @return the value, or nil, message
function M.decode(s)
  if type(s) ~= "string" then return nil, "no body" end
  local v, err = cjson.decode(s)
  if v == nil then return nil, err or "invalid JSON" end
  if v == null then return nil, "JSON null" end
  return normalize(v, 1)
end

--- Encodes a Lua value as JSON text.
-- @param v
-- @treturn string|nil text, or nil, message
function M.encode(v)
  return cjson.encode(v)
end

local function skip_ws(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

-- index just past the string starting with the quote at i, or nil
local function skip_string(s, i)
  local j = i + 1
  while true do
    local p = s:find('["\\]', j)
    if not p then return nil end
    if s:byte(p) == 34 then return p + 1 end
    j = p + 2
  end
end

-- index just past the JSON value starting at i (no whitespace before it), or nil when malformed
local function skip_value(s, i)
  local c = s:byte(i)
  if c == nil then return nil end
  if c == 34 then return skip_string(s, i) end
  if c == 123 or c == 91 then -- { [
    local depth, j = 0, i
    while j <= #s do
      local p = s:find('["{}%[%]]', j)
      if not p then return nil end
      local b = s:byte(p)
      if b == 34 then
        j = skip_string(s, p)
        if not j then return nil end
      else
        if b == 123 or b == 91 then depth = depth + 1 else depth = depth - 1 end
        if depth == 0 then return p + 1 end
        j = p + 1
      end
    end
    return nil
  end
  local e = s:find("[,}%] \t\r\n]", i) or #s + 1
  if e == i then return nil end
  return e
end

local function key_text(raw)
  if not raw:find("\\", 1, true) then return raw end
  return cjson.decode('"' .. raw .. '"')
end

--- Raw JSON text of the value at a path of object keys, exactly as it appears in `s`.
-- Strings, escapes and nesting are honoured; a repeated key takes its last occurrence
-- (as lua-cjson does).
-- @tparam string s JSON text
-- @tparam {string,...} path e.g. `{ "response", "cursor" }`
-- @treturn string|nil the raw text, or nil when absent or malformed
function M.raw_at(s, path)
  if type(s) ~= "string" then return nil end
  local i = skip_ws(s, 1)
  for depth = 1, #path do
    if s:byte(i) ~= 123 then return nil end
    i = skip_ws(s, i + 1)
    local found
    if s:byte(i) ~= 125 then
      while true do
        if s:byte(i) ~= 34 then return nil end
        local kend = skip_string(s, i)
        if not kend then return nil end
        local key = key_text(s:sub(i + 1, kend - 2))
        i = skip_ws(s, kend)
        if s:byte(i) ~= 58 then return nil end
        i = skip_ws(s, i + 1)
        local vend = skip_value(s, i)
        if not vend then return nil end
        if key == path[depth] then found = i end
        i = skip_ws(s, vend)
        local b = s:byte(i)
        if b == 125 then break end
        if b ~= 44 then return nil end
        i = skip_ws(s, i + 1)
      end
    end
    if not found then return nil end
    i = found
  end
  local vend = skip_value(s, i)
  if not vend then return nil end
  return s:sub(i, vend - 1)
end

--- Whether `s` is exactly one well-formed JSON value (surrounding whitespace allowed).
-- @tparam string s
-- @treturn boolean
function M.is_single_value(s)
  if type(s) ~= "string" then return false end
  local i = skip_ws(s, 1)
  local e = skip_value(s, i)
  if not e or skip_ws(s, e) ~= #s + 1 then return false end
  return cjson.decode(s) ~= nil
end

M.null = null

return M
