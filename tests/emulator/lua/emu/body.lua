-- The request body as a stream of chunks, never all in memory.
-- Fast path: the downstream cosocket (ngx.req.socket) with Content-Length.
-- It cannot serve chunked bodies or subrequests (a fault replays the request as a
-- subrequest), so those are read by nginx into client_body_temp_path and read back here.
local M = {}

M.CHUNK = 256 * 1024

local function from_buffered(size)
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then
    local pos = 1
    return function()
      if pos > #data then return nil end
      local piece = data:sub(pos, pos + size - 1)
      pos = pos + size
      return piece
    end
  end
  local path = ngx.req.get_body_file()
  if not path then return function() return nil end end
  local f = assert(io.open(path, "rb"))
  return function()
    if not f then return nil end
    local piece = f:read(size)
    if not piece then f:close(); f = nil end
    return piece
  end
end

--- The whole (small) request body as a string ("" when none), from memory or the temp file.
function M.read_all()
  ngx.req.read_body()
  local s = ngx.req.get_body_data()
  if s then return s end
  local path = ngx.req.get_body_file()
  local f = path and io.open(path, "rb")
  if not f then return "" end
  s = f:read("*a")
  f:close()
  return s or ""
end

--- Iterator over body chunks of at most `size` bytes. Raises on a broken client.
function M.chunks(size)
  size = size or M.CHUNK
  local len = tonumber(ngx.var.http_content_length)
  -- HTTP/2 (the H2 port) has no raw request socket in this Lua module: nginx buffers
  if ngx.is_subrequest or not len or ngx.var.http_transfer_encoding or ngx.req.http_version() == 2 then
    return from_buffered(size)
  end
  local sock, err = ngx.req.socket()
  if not sock then
    if err == "no body" then return function() return nil end end
    error("ngx.req.socket: " .. tostring(err))
  end
  sock:settimeout(60000)
  local left = len
  return function()
    if left <= 0 then return nil end
    local piece, rerr, partial = sock:receive(left < size and left or size)
    if not piece then
      error("reading request body: " .. tostring(rerr) .. " after "
            .. (len - left + #(partial or "")) .. " of " .. len .. " bytes")
    end
    left = left - #piece
    return piece
  end
end

return M
