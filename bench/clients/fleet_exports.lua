-- bench/fleet client: export_and_download_many over N emulated CloudDC servers.
-- Usage: lua fleet_exports.lua BASE_URL HTTP_URL CA_FILE N CONCURRENCY POLL_INTERVAL MAX_POLL MIN_POLL DEST
-- MIN_POLL lowers loghaul.clouddc.min_poll_interval (the library's 1 s floor) for this run.
-- Prints "wall=<seconds>" (the call alone, monotonic clock), "ok=<n>" and exits 0 when every
-- server's file has the sha256 the emulator reports for its archive, else 1.
local loghaul = require "loghaul"
local core = require "loghaul.core"
local cjson = require "cjson"
local clouddc = require "loghaul.clouddc"
local base_url, http_url, ca, n = arg[1], arg[2], arg[3], tonumber(arg[4])
local concurrency, poll, max_poll, min_poll = tonumber(arg[5]), tonumber(arg[6]), tonumber(arg[7]), tonumber(arg[8])
local dest = arg[9]
local F = dofile("tests/emulator/lua/emu/fixtures.lua").clouddc
clouddc.min_poll_interval = min_poll

local dc = loghaul.clouddc{ base_url = base_url, ca_file = ca, log = false, project_id = F.project_id,
  auth = { access_key = F.access_key, secret_key = F.secret_key } }
local ids = {}
for i = 1, n do ids[i] = ("srv-%04d"):format(i) end
local t0 = core.monotonic()
local by_id = dc:export_and_download_many(ids, { dest = dest .. "/", concurrency = concurrency,
  poll_interval = poll, max_poll_interval = max_poll })
local wall = core.monotonic() - t0
dc:close()

-- the truth: the emulator's sha256 of every archive it served
local s = core.session{}
local res = assert(s:request{ url = http_url .. "/_emu/vendors" })
s:close()
local archives = cjson.decode(res.body).clouddc.archives
local ok = 0
for _, id in ipairs(ids) do
  local r = by_id[id]
  if r.file and archives[id] and r.file.sha256 == archives[id].sha256 then
    ok = ok + 1
  else
    io.stderr:write(id, ": ", r.err and tostring(r.err.message or r.err) or "sha256 differs from the emulator's", "\n")
  end
end
print(("wall=%.3f"):format(wall))
print("ok=" .. ok)
os.exit(ok == n and 0 or 1)
