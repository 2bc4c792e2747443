-- A deliberately broken HTTP/1.1 server for the hostile-server specs (plain TCP, LuaSocket).
-- nginx cannot play these parts: it percent-encodes control bytes in header values, caps
-- nothing we want to flood and always answers well-formed. Started by helpers in
-- hostile_spec.lua:  lua5.4 hostile_server.lua DIR
-- It listens on 127.0.0.1 and 127.0.0.2 (same port), writes the port to DIR/port, and
-- logs every request head to DIR/requests.log. What it answers is read from DIR/mode
-- before each request (one line: a mode name and an argument), so any vendor path works.
-- It exits after 120 s without a connection, or when DIR/stop exists.
local socket = require "socket"

-- helpers.shell is found from this file's own path, so no LUA_PATH is needed
package.path = ((arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/../?.lua;" .. package.path
local shell = require "helpers.shell"

local dir = assert(arg[1], "usage: hostile_server.lua DIR")

local read_file = shell.read_file

local function append(p, s) shell.write_file(p, s, true) end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local a = assert(socket.bind("127.0.0.1", 0))
local port = select(2, a:getsockname())
local b = assert(socket.bind("127.0.0.2", port))
a:settimeout(0)
b:settimeout(0)
shell.write_file(dir .. "/port.tmp", tostring(port))
os.rename(dir .. "/port.tmp", dir .. "/port")

local function send_all(c, s)
  local i = 1
  while i <= #s do
    local last, err, partial = c:send(s, i)
    if not last then
      if err ~= "timeout" then return nil end
      last = partial
    end
    i = last + 1
  end
  return true
end

local function answer(c, status, headers, body)
  local h = { "HTTP/1.1 " .. status .. "\r\n" }
  for _, kv in ipairs(headers) do h[#h + 1] = kv .. "\r\n" end
  h[#h + 1] = "Connection: close\r\n"
  if body then h[#h + 1] = "Content-Length: " .. #body .. "\r\n" end
  h[#h + 1] = "\r\n"
  send_all(c, table.concat(h) .. (body or ""))
end

local handlers = {}

function handlers.ok(c, _, arg)
  answer(c, "200 OK", { "Content-Type: application/json" }, arg ~= "" and arg or '{"ok":true}')
end

-- raw body given in hex, with a status and content type: "status ctype hexbody"
function handlers.raw(c, _, arg)
  local status, ctype, hex = arg:match("^(%d+) (%S+) ?(%x*)$")
  answer(c, status .. " X", { "Content-Type: " .. ctype }, unhex(hex))
end

function handlers.flood(c, _, arg)
  local n = tonumber(arg) or 20000
  local line = "X-Flood-%d: " .. string.rep("f", 100) .. "\r\n"
  local parts = { "HTTP/1.1 200 OK\r\n" }
  for i = 1, n do parts[#parts + 1] = line:format(i) end
  parts[#parts + 1] = "Content-Length: 2\r\n\r\n{}"
  send_all(c, table.concat(parts))
end

function handlers.silent(c)
  c:settimeout(30)
  c:receive(1) -- until the client gives up and closes (or 30 s)
end

-- a "JSON" answer that never ends: Content-Length 2 GiB (or chunked), then array items
function handlers.endless(c, _, arg)
  local chunked = arg == "chunked"
  local head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" ..
    (chunked and "Transfer-Encoding: chunked\r\n" or "Content-Length: 2147483648\r\n") .. "\r\n"
  if not send_all(c, head) then return end
  local item = string.rep('{"k":"vvvvvvvvvvvvvvvvvvvvvvvv"},', 2048)
  local piece = chunked and (("%x\r\n"):format(#item) .. item .. "\r\n") or item
  c:settimeout(10)
  send_all(c, chunked and ("1\r\n[\r\n") or "[")
  local sent = 0
  while sent < 2 ^ 31 do
    if not send_all(c, piece) then return end
    sent = sent + #item
  end
end

-- Content-Length promises 2 GiB, a few bytes come, then the connection closes
function handlers.lie(c)
  send_all(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2147483648\r\n\r\n{\"a\":")
end

-- the whole answer, status line and headers included, given in hex (chunked bodies, trailers)
function handlers.wire(c, _, arg)
  send_all(c, unhex(arg))
end

function handlers.redirect(c, _, arg)
  answer(c, "302 Found", { "Location: " .. arg, "Content-Type: text/plain" }, "moved")
end

-- a file whose Content-Disposition name is given in hex (raw bytes, control characters and all)
function handlers.name(c, _, arg)
  answer(c, "200 OK", { "Content-Type: application/octet-stream",
                        "Content-Disposition: attachment; filename=\"" .. unhex(arg) .. "\"" }, "PAYLOAD")
end

function handlers.html(c, _, arg)
  answer(c, (arg ~= "" and arg or "502") .. " Bad Gateway", { "Content-Type: text/html" },
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>" ..
    "<hr><center>nginx</center></body></html>")
end

local mode_text, served

local function serve(c)
  c:settimeout(5)
  local lines = {}
  while true do
    local l = c:receive("*l")
    if not l or l == "" then break end
    lines[#lines + 1] = l
  end
  local head = table.concat(lines, "\n")
  local clen = tonumber(head:lower():match("\ncontent%-length:%s*(%d+)"))
  if clen and clen > 0 then c:receive(math.min(clen, 2 ^ 24)) end
  local host = head:match("\n[Hh]ost:%s*([^\n]*)") or ""
  append(dir .. "/requests.log", "\1REQ " .. host .. "\n" .. head .. "\n")
  -- DIR/mode holds one answer per line, played in order (the last one repeats) from the
  -- moment the file changes
  local text = read_file(dir .. "/mode") or "ok"
  if text ~= mode_text then mode_text, served = text, 0 end
  served = served + 1
  local list = {}
  for l in text:gmatch("[^\n]+") do list[#list + 1] = l end
  local mode = (list[math.min(served, #list)] or "ok"):gsub("%s+$", "")
  -- a redirect's second hop (another host) always lands on a plain answer
  local name, marg = mode:match("^(%S+)%s*(.*)$")
  if host:find("^127%.0%.0%.2") or host:find("^localhost") then name, marg = "ok", '{"landed":true}' end
  local h = handlers[name] or handlers.ok
  h(c, head, marg or "")
  c:close()
end

local last = socket.gettime()
while true do
  local ready = socket.select({ a, b }, nil, 1)
  for _, s in ipairs(ready or {}) do
    local c = s:accept()
    if c then
      last = socket.gettime()
      local ok, err = pcall(serve, c)
      if not ok then append(dir .. "/errors.log", tostring(err) .. "\n") pcall(c.close, c) end
    end
  end
  if socket.gettime() - last > 120 or read_file(dir .. "/stop") then break end
end
