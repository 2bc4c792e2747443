-- A cron-like run in a child process, for the token specs (tests/vendors/tokens_spec.lua):
--   lua token_child.lua yeastar|clouddc BASE_URL CA_FILE CACHE|- [close|noclose]
-- One client, one API call, close() (unless "noclose"); prints "ok" or the error, exits 0/1.
local loghaul = require "loghaul"
local fixtures = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../emulator/lua/emu/fixtures.lua")

local vendor, base, ca, cache, mode = arg[1], arg[2], arg[3], arg[4], arg[5]
cache = cache ~= "-" and cache or nil
local opts = { base_url = base, ca_file = ca, log = false, retry = { base_delay = 0.01, max_delay = 0.05 } }
local client, ok, err
if vendor == "yeastar" then
  opts.client_id, opts.client_secret, opts.token_cache = fixtures.yeastar.client_id,
    fixtures.yeastar.client_secret, cache
  client = loghaul.yeastar(opts)
  ok, err = client:list_system_logs{ page_size = 1 }
else
  opts.project_id = fixtures.clouddc.project_id
  opts.auth = { iam_endpoint = base, user = fixtures.iam.user, password = fixtures.iam.password,
                domain = fixtures.iam.domain, project = fixtures.iam.project, token_cache = cache }
  client = loghaul.clouddc(opts)
  ok, err = client:show_logs_export_status(fixtures.clouddc.server_id, "no-such-export")
  if not ok and err.kind ~= "auth" then ok = true end -- any answer past IAM is fine here
end
if mode ~= "noclose" then client:close() end
if not ok then
  io.stdout:write(tostring(err), "\n")
  os.exit(1)
end
io.stdout:write("ok\n")
