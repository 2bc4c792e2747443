-- JSON in and out of handlers, with the emulator's own cjson (never loghaul's code).
local cjson = require "cjson.safe"

cjson.encode_sparse_array(true)

local M = {}

M.decode = cjson.decode
M.encode = cjson.encode
M.null = cjson.null

-- Debian's lua-cjson has no empty-array marker: an empty Lua table encodes as {}.
-- Handlers that must send [] put M.empty_array in the table.
M.empty_array = "\0emu-empty-array\0"

function M.encode_with_arrays(v)
  local s = assert(cjson.encode(v))
  return (s:gsub('"\\u0000emu%-empty%-array\\u0000"', "[]"))
end

--- Send `v` as the JSON answer with `status` (default 200) and finish the request.
function M.reply(v, status, headers)
  ngx.status = status or 200
  ngx.header["Content-Type"] = "application/json"
  for k, val in pairs(headers or {}) do ngx.header[k] = val end
  local body = type(v) == "string" and v or M.encode_with_arrays(v)
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.HTTP_OK)  -- ends the request from any phase; the status is already set
end

return M
