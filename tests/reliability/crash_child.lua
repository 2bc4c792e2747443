-- One run of a chain in a child process, for tests/reliability/crash_spec.lua, which kills it
-- with SIGKILL at random moments and runs it again:
--   lua crash_child.lua cms|clouddc|yeastar BASE_URL CA_FILE WORKDIR [slow]
-- cms uploads WORKDIR/OELOG_1_10.0.0.1_20250101000000.zip; clouddc exports and downloads
-- into WORKDIR/dl/; yeastar downloads one day's system log into WORKDIR/dl/ (token cache in
-- WORKDIR/state/). "slow" sleeps 2 ms per progress call, so that kills land mid-transfer.
-- Prints "ok <path or status>" and exits 0, or prints the error and exits 1.
local loghaul = require "loghaul"
local core = require "loghaul.core"
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local F = dofile(here .. "/../emulator/lua/emu/fixtures.lua")

local chain, base, ca, work, slow = arg[1], arg[2], arg[3], arg[4], arg[5] == "slow"
local opts = { base_url = base, ca_file = ca, log = false, retry = { base_delay = 0.01, max_delay = 0.05 } }
if slow then opts.on_progress = function() core.sleep(0.002) end end

local res, err
if chain == "cms" then
  opts.access_key, opts.secret_key = F.cms.access_key, F.cms.secret_key
  res, err = loghaul.cms(opts):upload_client_log(work .. "/OELOG_1_10.0.0.1_20250101000000.zip")
  res = res and res.status
elseif chain == "clouddc" then
  opts.project_id = F.clouddc.project_id
  opts.auth = { access_key = F.clouddc.access_key, secret_key = F.clouddc.secret_key }
  local clouddc = require "loghaul.clouddc"
  clouddc.min_poll_interval = 0
  res, err = loghaul.clouddc(opts):export_and_download(F.clouddc.server_id, { dest = work .. "/dl/",
                                                                              poll_interval = 0 })
  res = res and res.path
else
  opts.client_id, opts.client_secret = F.yeastar.client_id, F.yeastar.client_secret
  opts.token_cache = work .. "/state/tokens.json"
  local pbx = loghaul.yeastar(opts)
  res, err = pbx:download_system_logs({ os.date("!%Y%m%d") }, { dest = work .. "/dl/" })
  res = res and res.path
  pbx:close()
end
if not res then
  io.stdout:write(tostring(err), "\n")
  os.exit(1)
end
io.stdout:write("ok ", res, "\n")
