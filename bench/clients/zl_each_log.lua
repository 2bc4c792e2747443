-- bench/cursor client: loghaul each_log over the whole range, records as Lua tables
-- (or as raw JSON texts with a trailing "raw"). Usage: see zl_args.lua, then [raw]
local args = require "zl_args"
local loghaul = require "loghaul"
local a = args.parse(arg)
local raw = arg[7] == "raw"
local zl = loghaul.zenlayer{ access_key_id = a.id, access_key_password = a.password,
                             endpoint = a.base_url, ca_file = a.ca_file }
local n = 0
for rec in zl:each_log{ start_time = a.start_time, end_time = a.end_time, page_size = 1000, raw = raw or nil } do
  if raw and type(rec) ~= "string" then args.unsupported("each_log{ raw = true } yields " .. type(rec)) end
  n = n + 1
end
zl:close()
print("records=" .. n)
