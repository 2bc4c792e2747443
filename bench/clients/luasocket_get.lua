-- bench client: download URL to OUT with LuaSocket + LuaSec. Usage: lua luasocket_get.lua URL OUT CA
local https = require "ssl.https"
local ltn12 = require "ltn12"
local url, out, ca = arg[1], arg[2], arg[3]
local f = assert(io.open(out, "wb"))
local _, code = https.request{ url = url, sink = ltn12.sink.file(f), cafile = ca, verify = "peer",
  protocol = "any", options = { "all", "no_sslv2", "no_sslv3" } }
assert(code == 200, code)
