-- bench/fleet client: zl:each_log{ parallel = P } over the whole range, records as raw JSON
-- texts. Usage: see zl_args.lua, then PARALLEL.
-- Prints "records=N", "digest=<sha256 of the records in the order yielded>" and
-- "wall=<seconds>" (the loop alone, monotonic clock).
local args = require "zl_args"
local loghaul = require "loghaul"
local core = require "loghaul.core"
local a = args.parse(arg)
local parallel = tonumber(arg[7])
local zl = loghaul.zenlayer{ access_key_id = a.id, access_key_password = a.password,
                             endpoint = a.base_url, ca_file = a.ca_file }
local n, parts = 0, {}
local t0 = core.monotonic()
for rec in zl:each_log{ start_time = a.start_time, end_time = a.end_time, page_size = 1000, raw = true,
                        parallel = parallel } do
  n = n + 1
  parts[n] = rec
end
local wall = core.monotonic() - t0
zl:close()
print("records=" .. n)
print("digest=" .. core.hex(core.sha256(table.concat(parts, "\n"))))
print(("wall=%.3f"):format(wall))
