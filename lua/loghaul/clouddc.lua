--- Huawei Cloud CloudDC: export server logs, poll the export, download the `.tar.gz`.
-- Auth: `{ token = T }`, IAM password credentials, or AK/SK (`SDK-HMAC-SHA256`).
-- @module loghaul.clouddc
local client_mod = require "loghaul.client"
local download = require "loghaul.download"
local envelope = require "loghaul.envelope"
local errors = require "loghaul.errors"
local iam = require "loghaul.auth.iam"
local progress = require "loghaul.progress"
local util = require "loghaul.util"

local M = {}

local Dc = {}
Dc.__index = Dc

local function token_auth(client, token)
  client:secret(token)
  return { apply = function(_, req) req.headers["X-Auth-Token"] = token return true end }
end

local function aksk_auth(client, ak, sk)
  client:secret(sk)
  return { apply = function(_, req, cl)
    local u = util.parse_url(req.url)
    local headers = { host = util.host_header(req.url) }
    local ctype = req.headers["Content-Type"]
    if ctype then headers["content-type"] = ctype end
    local r = cl.core.sign_sdk_hmac_sha256{
      access_key = ak, secret_key = sk, date = os.date("!%Y%m%dT%H%M%SZ", math.floor(cl.now())),
      method = req.method, path = u.path:match("^[^?#]*"), headers = headers, body = req.body or "",
    }
    for k, v in pairs(r.headers) do req.headers[k] = v end
    return true
  end }
end

local new_options = client_mod.options{ "project_id", "auth", "token_cache" }
-- the three forms of `auth` (IAM's are read by loghaul.auth.iam)
local token_options_list = { "token" }
local aksk_options_list = { "access_key", "secret_key" }
local iam_options_list = { "iam_endpoint", "user", "password", "domain", "project", "project_id", "token_cache" }
local token_options, aksk_options = util.set(token_options_list), util.set(aksk_options_list)
local iam_options = util.set(iam_options_list)

--- Creates a CloudDC client.
-- @tparam table opts `endpoint`, `project_id`, `auth` (one of `{ token }`,
--   `{ iam_endpoint, user, password, domain, project }`, `{ access_key, secret_key }`),
--   and the common client options
-- @treturn table the client
function M.new(opts)
  client_mod.check_new(opts, new_options, "loghaul.clouddc")
  if not util.is_path_id(opts.project_id) then
    util.raise("loghaul.clouddc: project_id " .. (opts.project_id == nil and "is missing"
      or "must be a non-empty id string"))
  end
  local a = opts.auth
  if type(a) ~= "table" then
    util.raise("loghaul.clouddc: auth " .. (a == nil and "is missing" or "must be a table")
      .. ": { token = T }, { iam_endpoint =, user =, password =, domain =, project = }"
      .. " or { access_key =, secret_key = }")
  end
  -- a name no form takes first (the suggestion comes from all three), then a mix of forms
  util.check_options(a, util.set(token_options_list, aksk_options_list, iam_options_list), "loghaul.clouddc auth")
  if a.token ~= nil then
    util.check_options(a, token_options, "loghaul.clouddc auth (token)")
  elseif a.access_key ~= nil or a.secret_key ~= nil then
    util.check_options(a, aksk_options, "loghaul.clouddc auth (AK/SK)")
  else
    util.check_options(a, iam_options, "loghaul.clouddc auth (IAM password)")
    for _, n in ipairs{ "iam_endpoint", "user", "password", "domain" } do
      if a[n] == nil then util.raise("loghaul.clouddc: auth." .. n .. " is missing (IAM password credentials)") end
    end
    if a.project == nil and a.project_id == nil then
      util.raise("loghaul.clouddc: auth.project (or auth.project_id) is missing (IAM password credentials)")
    end
  end
  local c = client_mod.new(opts, { vendor = "clouddc", adds = "/v1/{project_id}/..." })
  local self = setmetatable({ client = c, project_id = opts.project_id }, Dc)
  if a.token ~= nil then
    if type(a.token) ~= "string" or a.token == "" then util.raise("loghaul.clouddc: auth.token must be a string") end
    self.auth = token_auth(c, a.token)
  elseif a.access_key ~= nil or a.secret_key ~= nil then
    if type(a.access_key) ~= "string" or type(a.secret_key) ~= "string" then
      util.raise("loghaul.clouddc: auth.access_key and auth.secret_key must be strings")
    end
    self.auth = aksk_auth(c, a.access_key, a.secret_key)
  else
    -- token_cache: in `auth` or beside it (DESIGN.md names it a client option)
    if opts.token_cache ~= nil and a.token_cache == nil then
      local copy = {}
      for k, v in pairs(a) do copy[k] = v end
      copy.token_cache = opts.token_cache
      a = copy
    end
    self.auth = iam.new(c, a)
    return self
  end
  if opts.token_cache ~= nil or a.token_cache ~= nil then
    error("loghaul.clouddc: token_cache needs IAM password auth (a token or AK/SK has nothing to cache)", 2)
  end
  return self
end

local function check_ids(operation, ...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) ~= "string" then
      util.raise(("loghaul.clouddc: %s: ids must be strings, got %s"):format(operation, type(v)))
    end
    if not util.is_path_id(v) then
      local e = errors.invalid("id " .. string.format("%q", v) .. " has characters an id cannot have")
      e.vendor, e.operation = "clouddc", operation
      return e
    end
  end
end

local function exports_url(self, server_id, tail)
  return self.client.base_url .. "/v1/" .. self.project_id .. "/physicalservers/" .. server_id
    .. "/logs/exports" .. (tail or "")
end

--- Normalises `percentage` ("30%" or 30) to a number.
-- @param p
-- @treturn number|nil
function M.percentage(p)
  if type(p) == "number" then return p end
  if type(p) == "string" then return tonumber(p:match("^%s*([%d%.]+)%s*%%?%s*$")) end
  return nil
end

local function task_decoder(operation)
  return function(res, op, secrets)
    local v, err = envelope.huawei(res, op, secrets)
    if not v then return nil, err end
    if v.export_id == nil then
      return nil, envelope.http_error(res, { kind = "http", code = "INVALID_RESPONSE", retryable = true,
        message = operation .. " answer without export_id" }, secrets)
    end
    v.export_id = util.code(v.export_id)
    v.percentage = M.percentage(v.percentage)
    if v.status ~= nil then v.status = util.code(v.status) end
    return v
  end
end

--- ExportServerLogs: creates an export task. Retried only when the request provably
-- never reached the server (so a retry never starts a second export).
-- @tparam string server_id
-- @treturn table|nil `{ export_id =, status =, percentage = (number), created_at = }`, or nil, err
function Dc:export_server_logs(server_id)
  util.check_self(self, Dc, "dc:export_server_logs(server_id)")
  local bad = check_ids("ExportServerLogs", server_id)
  if bad then return nil, bad end
  return self.client:call{
    operation = "ExportServerLogs", method = "POST", url = exports_url(self, server_id),
    headers = { ["Content-Type"] = "application/json" }, body = "{}", auth = self.auth, create = true,
    decode = task_decoder("ExportServerLogs"),
  }
end

--- ShowLogsExportStatus: the state of an export task.
-- @tparam string server_id
-- @tparam string export_id
-- @treturn table|nil the same fields as `export_server_logs`, or nil, err
function Dc:show_logs_export_status(server_id, export_id)
  util.check_self(self, Dc, "dc:show_logs_export_status(server_id, export_id)")
  local bad = check_ids("ShowLogsExportStatus", server_id, export_id)
  if bad then return nil, bad end
  return self.client:call{
    operation = "ShowLogsExportStatus", method = "GET", url = exports_url(self, server_id, "/" .. export_id),
    auth = self.auth, decode = task_decoder("ShowLogsExportStatus"),
  }
end

local download_options = util.set{ "dest", "mode" } -- mode: main's file mode option

-- `dest` checked and created before the first request: a destination that cannot be created
-- fails at once with the OS's reason, not after an export that ran for minutes
local function dest_ready(dest, operation)
  if dest ~= nil and (type(dest) ~= "string" or dest == "") then
    util.raise("loghaul.clouddc: dest must be a non-empty string (a folder ending in / or a file path)")
  end
  local ok, err = download.resolve(dest)
  if not ok then err.vendor, err.operation = "clouddc", operation end
  return ok, err
end

--- DownloadServerLogs: downloads the export's archive (name from Content-Disposition).
-- @tparam string server_id
-- @tparam string export_id
-- @tparam[opt] table opts `{ dest = "dir/" | "file path", mode = "0644" }` (`dest` default: the current
--   directory; `mode` of the new file, default "0600")
-- @treturn table|nil `{ path =, bytes =, sha256 = }`, or nil, err
function Dc:download_server_logs(server_id, export_id, opts)
  util.check_self(self, Dc, "dc:download_server_logs(server_id, export_id, { dest = ... })")
  opts = util.options(opts, download_options, "dc:download_server_logs")
  local bad = check_ids("DownloadServerLogs", server_id, export_id)
  if bad then return nil, bad end
  local ready, derr = dest_ready(opts.dest, "DownloadServerLogs")
  if not ready then return nil, derr end
  return download.fetch(self.client, {
    operation = "DownloadServerLogs", url = exports_url(self, server_id, "/" .. export_id .. "/content"),
    auth = self.auth, decode = envelope.huawei, dest = opts.dest, mode = opts.mode,
    default_name = server_id .. "-" .. export_id .. "-dump.tar.gz",
    -- every export of one server downloads to the same temporary name: a killed run's .part
    -- is removed by the next one
    part_key = "clouddc " .. self.client.base_url .. " " .. self.project_id .. " " .. server_id,
  })
end

--- Statuses of an export that is still going.
M.running = { processing = true, running = true }

--- The shortest wait between status polls (seconds): a smaller `poll_interval` is raised
-- to it, so `poll_interval = 0` never busy-polls the API.
M.min_poll_interval = 1

--- The first wait after creating an export (seconds), when `poll_interval` is longer: the
-- waits grow ×1.5 from it to `poll_interval`, so an export done in a second is not waited
-- for during a whole `poll_interval` (with the default 5 s: 1, 1.5, 2.25, 3.4, 5, 7.5, ...).
M.first_poll_interval = 1

local export_and_download_options = util.set{ "dest", "mode", "poll_interval", "max_poll_interval", "timeout" }

--- Creates an export, polls it (the first wait 1 s, growing ×1.5 to `poll_interval`, then on
-- up to `max_poll_interval`) until `completed`, then downloads it. An unknown status is a
-- failure. `dest` is checked (and created) before the export starts.
-- @tparam string server_id
-- @tparam[opt] table opts `{ dest, mode, poll_interval = 5, max_poll_interval = 60, timeout = 1800 }`
--   (`timeout`: seconds to wait for the export to complete; `poll_interval` below 1 s is
--   raised to 1 s, `M.min_poll_interval`)
-- @treturn table|nil `{ path =, bytes =, sha256 = }`, or nil, err
function Dc:export_and_download(server_id, opts)
  util.check_self(self, Dc, "dc:export_and_download(server_id, { dest = ... })")
  opts = util.options(opts, export_and_download_options, "dc:export_and_download")
  local c = self.client
  local interval = opts.poll_interval or 5
  local timeout = opts.timeout or 1800
  local numbers = { poll_interval = interval, timeout = timeout, max_poll_interval = opts.max_poll_interval or 0 }
  for name, v in pairs(numbers) do
    if type(v) ~= "number" or v < 0 or v ~= v then
      util.raise(("loghaul.clouddc: export_and_download: %s must be a non-negative number, got %s"):format(
        name, tostring(v)))
    end
  end
  interval = math.max(interval, M.min_poll_interval)
  local max_interval = math.max(opts.max_poll_interval or 60, interval)
  local ready, derr = dest_ready(opts.dest, "DownloadServerLogs")
  if not ready then return nil, derr end
  local deadline = c.now() + timeout
  local task, err = self:export_server_logs(server_id)
  if not task then return nil, err end
  local report = progress.reporter(c, "export")
  -- a short first wait (most exports finish in seconds) growing ×1.5 up to poll_interval,
  -- then on ×1.5 up to max_poll_interval
  local st, wait = task, math.min(M.first_poll_interval, interval)
  while true do
    local status = (st.status or ""):lower()
    if report then report(st.percentage or 0, 100, status == "completed") end
    if status == "completed" then break end
    if not M.running[status] then
      return nil, errors.new{ kind = "api", code = "EXPORT_FAILED", vendor = "clouddc",
        operation = "ShowLogsExportStatus",
        message = ("export %s of server %s ended with status %q"):format(task.export_id, server_id, st.status or "") }
    end
    if c.now() + wait > deadline then
      return nil, errors.new{ kind = "timeout", code = "EXPORT_TIMEOUT", vendor = "clouddc",
        operation = "ShowLogsExportStatus", retryable = true,
        message = ("export %s not completed within %gs (last status %q, %s%%)"):format(
          task.export_id, timeout, st.status or "", tostring(st.percentage or "?")) }
    end
    c.sleep(wait)
    wait = math.min(wait * 1.5, wait < interval and interval or max_interval)
    st, err = self:show_logs_export_status(server_id, task.export_id)
    if not st then return nil, err end
  end
  return self:download_server_logs(server_id, task.export_id, { dest = opts.dest, mode = opts.mode })
end

local many_options = { dest = true, mode = true, poll_interval = true, max_poll_interval = true, timeout = true,
                       concurrency = true, on_result = true, on_progress = true }

--- `export_and_download` for many servers at once, on the scheduler of `loghaul.run_all`:
-- the exports run side by side (each polled on its own timer), downloads share connections.
-- One server's failure never stops the others.
-- @tparam {string,...} server_ids distinct ids
-- @tparam[opt] table opts `{ dest, mode, poll_interval, max_poll_interval, timeout }` as for
--   `export_and_download`, plus `concurrency` (default 16), `on_result = function(server_id, file,
--   err)` (as each server ends) and `on_progress` (the run's stream, see `loghaul.run_all`)
-- @treturn table keyed by server id: `{ file = { path =, bytes =, sha256 = } }` or `{ err = error object }`
function Dc:export_and_download_many(server_ids, opts)
  if type(server_ids) ~= "table" then error("loghaul.clouddc: server_ids must be a list of ids", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("loghaul.clouddc: opts must be a table", 2) end
  opts = opts or {}
  for k in pairs(opts) do
    if not many_options[k] then error("loghaul.clouddc: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local seen, tasks = {}, {}
  for i, id in ipairs(server_ids) do
    if type(id) ~= "string" then error("loghaul.clouddc: server_ids[" .. i .. "] must be a string", 2) end
    -- two downloads of one server into one dest would share a .part name
    if seen[id] then error("loghaul.clouddc: server id " .. string.format("%q", id) .. " is listed twice", 2) end
    seen[id] = true
    tasks[i] = function()
      return self:export_and_download(id, { dest = opts.dest, mode = opts.mode, poll_interval = opts.poll_interval,
        max_poll_interval = opts.max_poll_interval, timeout = opts.timeout })
    end
  end
  local on_result = opts.on_result
  local results = require("loghaul.run_all").run_all(tasks, {
    concurrency = opts.concurrency, on_progress = opts.on_progress,
    on_result = on_result and function(i, ok, v)
      if ok then on_result(server_ids[i], v, nil) else on_result(server_ids[i], nil, v) end
    end,
  })
  local by_id = {}
  for i, r in ipairs(results) do
    by_id[server_ids[i]] = r.ok and { file = r.value } or { err = r.err }
  end
  return by_id
end

--- Closes the client's connections.
function Dc:close() self.client:close() end

return M
