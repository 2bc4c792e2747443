-- bench/cursor client: loghaul write_logs, the whole range to a JSON Lines file from C.
-- Usage: see zl_args.lua (OUTPUT is the .jsonl path)
local args = require "zl_args"
local loghaul = require "loghaul"
local a = args.parse(arg)
local zl = loghaul.zenlayer{ access_key_id = a.id, access_key_password = a.password,
                             endpoint = a.base_url, ca_file = a.ca_file }
if type(zl.write_logs) ~= "function" then args.unsupported("this loghaul has no write_logs") end
local res, err = zl:write_logs{ start_time = a.start_time, end_time = a.end_time, page_size = 1000,
                                output = assert(a.output, "OUTPUT path needed") }
if not res then error(tostring(err)) end
zl:close()
print("records=" .. res.records)
