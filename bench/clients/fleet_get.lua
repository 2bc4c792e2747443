-- bench/fleet client: N downloads at once with loghaul.run_all, each task one
-- runtime.transfer on the scheduler's multi handle (one session, shared connections).
-- Usage: lua fleet_get.lua CA_FILE CONCURRENCY OUT_DIR URL...
-- Prints "<sha256> <file>" per download (the core hashes what it writes) and exits 0, or 1.
-- FLEET_NO_HASH=1: no hashing (the transfers alone, as curl does them); prints "- <file>".
local loghaul = require "loghaul"
local core = require "loghaul.core"
local runtime = require "loghaul.runtime"
local ca, concurrency, out_dir = arg[1], tonumber(arg[2]), arg[3]
local unpack = table.unpack or unpack -- luacheck: ignore 143
local urls = { unpack(arg, 4) }
local session = core.session{ ca_file = ca }
local hash = os.getenv("FLEET_NO_HASH") ~= "1"
local tasks = {}
for i, url in ipairs(urls) do
  local out = ("%s/%d.bin"):format(out_dir, i)
  tasks[i] = function()
    local res, err = runtime.transfer(session, { url = url, output = out, sha256 = hash })
    if not res then return nil, err end
    if res.status ~= 200 then return nil, "HTTP " .. tostring(res.status) .. " for " .. url end
    return { sha256 = res.sha256, path = out }
  end
end
local results = loghaul.run_all(tasks, { concurrency = concurrency })
session:close()
local failed = 0
for i, r in ipairs(results) do
  if r.ok then
    print((r.value.sha256 or "-") .. " " .. r.value.path)
  else
    failed = failed + 1
    io.stderr:write(("task %d: %s\n"):format(i, type(r.err) == "table" and tostring(r.err.message) or tostring(r.err)))
  end
end
os.exit(failed == 0 and 0 or 1)
