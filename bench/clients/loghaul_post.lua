-- bench client: multipart upload of FILE as part "file" with loghaul.core. Usage: lua loghaul_post.lua URL FILE CA
local core = require "loghaul.core"
local url, file, ca = arg[1], arg[2], arg[3]
local s = core.session{ ca_file = ca }
local res, err = s:request{ url = url, form = { { name = "file", path = file } } }
assert(res and res.status == 200, err and err.message or (res and res.status))
io.write(res.body)
s:close()
