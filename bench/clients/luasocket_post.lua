-- bench client: multipart upload of FILE as part "file" with LuaSocket + LuaSec, streamed by ltn12.
-- Usage: lua luasocket_post.lua URL FILE CA
local https = require "ssl.https"
local ltn12 = require "ltn12"
local url, file, ca = arg[1], arg[2], arg[3]
local boundary = "----loghaulbench" .. os.time()
local f = assert(io.open(file, "rb"))
local size = f:seek("end")
f:seek("set")
local head = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
  .. "Content-Type: application/octet-stream\r\n\r\n"):format(boundary, file:match("[^/]+$"))
local tail = ("\r\n--%s--\r\n"):format(boundary)
ltn12.BLOCKSIZE = 65536
local body = {}
local _, code = https.request{
  url = url, method = "POST", cafile = ca, verify = "peer", protocol = "any",
  options = { "all", "no_sslv2", "no_sslv3" },
  headers = { ["content-type"] = "multipart/form-data; boundary=" .. boundary,
              ["content-length"] = tostring(#head + size + #tail) },
  source = ltn12.source.cat(ltn12.source.string(head), ltn12.source.file(f), ltn12.source.string(tail)),
  sink = ltn12.sink.table(body),
}
assert(code == 200, code)
io.write(table.concat(body))
