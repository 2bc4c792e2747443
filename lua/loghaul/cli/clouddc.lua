--- `loghaul clouddc export SERVER_ID...`: Huawei Cloud CloudDC export, poll, download.
-- @module loghaul.cli.clouddc
local args = require "loghaul.cli.args"
local times = require "loghaul.cli.times"

local M = { order = { "export" }, actions = {} }

--- Reads ids from a file (or `-`, stdin): one per line; blank lines and `#` comments skipped.
-- @tparam string path
-- @tparam string flag for messages
-- @treturn table
function M.read_ids(path, flag)
  local f, err
  if path == "-" then f = io.stdin else f, err = io.open(path, "rb") end
  if not f then args.fail("%s: cannot read %s: %s", flag, path, tostring(err)) end
  local ids = {}
  for line in f:lines() do
    line = line:gsub("#.*$", ""):match("^%s*(.-)%s*$")
    if line ~= "" then ids[#ids + 1] = line end
  end
  if f ~= io.stdin then f:close() end
  return ids
end

M.actions.export = {
  usage = "loghaul clouddc export SERVER_ID... | --servers-from FILE --dest DIR [--poll 5s] [--concurrency 16]",
  help = "For each server: ExportServerLogs, poll ShowLogsExportStatus until completed, then\n"
    .. "DownloadServerLogs into DIR (the server's {SN}-dump.tar.gz, written atomically).\n"
    .. "Prints SERVER_ID <tab> path <tab> bytes <tab> sha256 for each, or JSON Lines with --json.\n"
    .. "Auth: LOGHAUL_CLOUDDC_TOKEN, else LOGHAUL_CLOUDDC_AK/_SK, else IAM password login\n"
    .. "(LOGHAUL_IAM_*; the token is cached in ~/.cache/loghaul/ and reused by later runs).",
  settings = "LOGHAUL_CLOUDDC_URL, LOGHAUL_CLOUDDC_PROJECT_ID, and LOGHAUL_CLOUDDC_TOKEN | "
    .. "LOGHAUL_CLOUDDC_AK + _SK | LOGHAUL_IAM_URL, _USER, _PASSWORD, _DOMAIN, _PROJECT; LOGHAUL_CA_FILE",
  ids = true,
  no_ids = "give SERVER_ID(s) or --servers-from FILE",
  flags = {
    dest = { value = "DIR", help = "folder for the archives (created if missing; required)" },
    poll = { value = "DURATION", parse = times.duration_flag, help = "first wait between status polls (default 5s)" },
    timeout = { value = "DURATION", parse = times.duration_flag,
                help = "how long to wait for each export to complete (default 30m)" },
    ["servers-from"] = { value = "FILE", list = true,
                         help = "read server ids from FILE (one a line, # comments; - for stdin)" },
  },
  more_ids = function(_, a)
    local ids = {}
    for _, path in ipairs(a["servers-from"] or {}) do
      for _, id in ipairs(M.read_ids(path, "--servers-from")) do ids[#ids + 1] = id end
    end
    return ids
  end,
  prepare = function(ctx, a)
    if not a.dest then args.fail("%s: --dest DIR is required (where the archives go)", ctx.where) end
    local loghaul = require "loghaul"
    local auth
    local token, ak = ctx:setting("CLOUDDC_TOKEN"), ctx:setting("CLOUDDC_AK")
    local opts = { endpoint = ctx:need("CLOUDDC_URL"), project_id = ctx:need("CLOUDDC_PROJECT_ID") }
    if token then
      auth = { token = token }
    elseif ak then
      auth = { access_key = ak, secret_key = ctx:need("CLOUDDC_SK") }
    else
      auth = { iam_endpoint = ctx:need("IAM_URL"), user = ctx:need("IAM_USER"), password = ctx:need("IAM_PASSWORD"),
               domain = ctx:need("IAM_DOMAIN"), project = ctx:need("IAM_PROJECT") }
      -- the library keys its entries by endpoint and user: one file serves every profile
      auth.token_cache = ctx:token_cache("iam")
    end
    opts.auth = auth
    local dc = ctx:construct(loghaul.clouddc, ctx:client_options(opts), auth)
    local dest = a.dest:sub(-1) == "/" and a.dest or (a.dest .. "/")
    return function(server_id)
      return dc:export_and_download(server_id, { dest = dest, poll_interval = a.poll or 5,
                                                 timeout = a.timeout or 1800 })
    end
  end,
  line = function(id, f) return ("%s\t%s\t%d\t%s"):format(id, f.path, f.bytes, f.sha256) end,
  record = function(_, f) return { path = f.path, bytes = f.bytes, sha256 = f.sha256 } end,
}

return M
