-- /cut/<name>?after=N: serve files/<name> (honouring a single Range), announcing the full
-- Content-Length of this answer, but close the TCP connection after N body bytes
-- (default: half the answer), so a client sees a broken transfer and can resume.
local config = require "emu.config"
local json = require "emu.json"

local PIECE = 64 * 1024

-- "bytes=a-b", "bytes=a-", "bytes=-n" -> first, last (0-based, inclusive); false if unsatisfiable.
local function range(h, size)
  if not h then return nil end
  local a, b = h:match("^%s*bytes%s*=%s*(%d*)%s*%-%s*(%d*)%s*$")
  if not a or (a == "" and b == "") then return nil end
  local first, last
  if a == "" then
    first, last = math.max(size - tonumber(b), 0), size - 1
  else
    first = tonumber(a)
    last = b ~= "" and math.min(tonumber(b), size - 1) or size - 1
  end
  if first >= size or first > last then return false end
  return first, last
end

return function()
  ngx.req.discard_body()
  local name = ngx.var.uri:match("^/cut/([^/]+)$")
  if not name or name:match("^%.%.?$") then return json.reply({ error = "use /cut/<name>" }, 400) end
  local f = io.open(config.files_dir .. "/" .. name, "rb")
  if not f then return json.reply({ error = "no such file", name = name }, 404) end
  local size = f:seek("end")
  local first, last = range(ngx.var.http_range, size)
  if first == false then
    f:close()
    return json.reply({ error = "range not satisfiable" }, 416, { ["Content-Range"] = "bytes */" .. size })
  end
  ngx.header["Content-Type"] = "application/octet-stream"
  ngx.header["Accept-Ranges"] = "bytes"
  if first then
    ngx.status = 206
    ngx.header["Content-Range"] = string.format("bytes %d-%d/%d", first, last, size)
  else
    first, last = 0, size - 1
  end
  local len = last - first + 1
  ngx.header["Content-Length"] = len
  local after = math.floor(tonumber(ngx.req.get_uri_args().after) or len / 2)
  local send = math.min(after, len)
  ngx.send_headers()
  f:seek("set", first)
  while send > 0 do
    local s = f:read(math.min(PIECE, send))
    if not s then break end
    ngx.print(s)
    send = send - #s
  end
  f:close()
  ngx.flush(true)
  if after < len then return ngx.exit(444) end   -- 444: nginx closes the connection, no more bytes
  return ngx.exit(ngx.HTTP_OK)
end
