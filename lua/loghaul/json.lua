--- JSON for the Lua layers: lua-cjson decodes and encodes; the core's scanner (src/json.c)
-- validates (RFC 8259, stricter than cjson alone), finds raw texts (Zenlayer's cursor must keep
-- every digit the server sent) and splits arrays into their elements' raw texts, in C.
-- @module loghaul.json
local core = require "loghaul.core"
local cjson = require("cjson.safe").new()
cjson.decode_max_depth(64)           -- the scanner's limit too
cjson.decode_invalid_numbers(false)  -- no hex, inf, nan: the scanner refuses them as well

local M = {}
local null = cjson.null
local valid, normalize = core.json_valid, core.json_normalize

--- Decodes a text `valid` already accepted (no second scan): JSON `null` becomes nil
-- (absent), whole numbers are integers in Lua 5.4 (`core.json_normalize`, in C).
-- @tparam string s
-- @return the value, or nil, message
function M.decode_checked(s)
  local v, err = cjson.decode(s)
  if v == nil then return nil, err or "invalid JSON" end
  if v == null then return nil, "JSON null" end
  return normalize(v)
end

--- Decodes JSON text; JSON `null` becomes nil (absent), whole numbers are integers in Lua 5.4.
-- The text must be exactly one RFC 8259 value: cjson alone would also take `1.`, raw control
-- bytes in strings and text after a NUL byte.
-- @tparam string s
-- @return the value, or nil, message (a malformed text's message names the byte offset)
function M.decode(s)
  if type(s) ~= "string" then return nil, "no body" end
  local ok, err = valid(s)
  if not ok then return nil, err end
  return M.decode_checked(s)
end

--- Encodes a Lua value as JSON text.
-- @param v
-- @treturn string|nil text, or nil, message
function M.encode(v)
  return cjson.encode(v)
end

--- Whether `s` is exactly one well-formed JSON value (surrounding whitespace allowed).
-- @tparam string s
-- @treturn boolean
function M.is_single_value(s)
  return valid(s) == true
end

--- Raw texts at paths of object keys (`core.json_at`): for each path a string or `false`
-- (absent), or nil, message when the text is malformed. A repeated key takes its last
-- occurrence, as lua-cjson does.
-- @function at
-- @tparam string s JSON text
-- @tparam {string,...} path e.g. `{ "response", "cursor" }`
M.at = core.json_at

--- Raw texts of the elements of the array at a path (`core.json_array`): the list and the
-- element count, `false` when absent or null, or nil, message.
-- @function array
-- @tparam string s JSON text
-- @tparam {string,...} path e.g. `{ "response", "dataSet" }`
-- @tparam[opt] table filter see `core.json_array`
M.array = core.json_array

M.null = null

return M
