-- bench client: download URL to OUT with loghaul.core. Usage: lua loghaul_get.lua URL OUT CA
local core = require "loghaul.core"
local url, out, ca = arg[1], arg[2], arg[3]
local s = core.session{ ca_file = ca }
local res, err = s:request{ url = url, output = out }
assert(res and res.status == 200, err and err.message or (res and res.status))
s:close()
