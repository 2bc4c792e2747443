--- Yeastar P-Series: list the PBX's daily system logs, get a download URL, download them.
-- The access token is fetched, cached and refreshed by `loghaul.auth.yeastar`.
-- @module loghaul.yeastar
local client_mod = require "loghaul.client"
local download = require "loghaul.download"
local envelope = require "loghaul.envelope"
local errors = require "loghaul.errors"
local token = require "loghaul.auth.yeastar"
local util = require "loghaul.util"

local M = {}

local Pbx = {}
Pbx.__index = Pbx

--- Creates a Yeastar client.
-- @tparam table opts `base_url`, `client_id`, `client_secret`, and the common client options
-- @treturn table the client
function M.new(opts)
  if type(opts) ~= "table" then error("loghaul.yeastar: options table expected", 2) end
  for _, n in ipairs{ "client_id", "client_secret" } do
    if type(opts[n]) ~= "string" or opts[n] == "" then
      error("loghaul.yeastar: " .. n .. " must be a non-empty string", 2)
    end
  end
  local c = client_mod.new(opts, { vendor = "yeastar", user_agent = "OpenAPI loghaul/" .. client_mod.version })
  local self = setmetatable({ client = c }, Pbx)
  self.auth = token.new(c, opts.client_id, opts.client_secret)
  return self
end

local function api_call(self, operation, query)
  local c = self.client
  return c:call{
    operation = operation, method = "GET",
    url = util.add_query(c.base_url .. "/openapi/v1.0/" .. operation, query),
    auth = self.auth, decode = envelope.yeastar,
  }
end

-- a refusal before sending carries the vendor and operation like any other error
local function refused(err, operation)
  err.vendor, err.operation = "yeastar", operation
  return err
end

local function positive_int(v, name)
  if v == nil then return end
  if type(v) ~= "number" or v < 1 or v ~= math.floor(v) then
    return errors.invalid(name .. " must be a positive integer")
  end
end

--- system_log/list: one page of the PBX's system log files.
-- @tparam[opt] table params `{ page, page_size, sort_by = "file_name", order_by = "asc"|"desc" }`
-- @treturn table|nil `{ total_number =, data = { { file_name = "20240610" }, ... } }` (the API's
--   fields), or nil, err
function Pbx:list_system_logs(params)
  if params ~= nil and type(params) ~= "table" then error("loghaul.yeastar: params must be a table", 2) end
  params = params or {}
  local bad = positive_int(params.page, "page") or positive_int(params.page_size, "page_size")
  if bad then return nil, refused(bad, "system_log/list") end
  if params.order_by ~= nil and params.order_by ~= "asc" and params.order_by ~= "desc" then
    return nil, refused(errors.invalid('order_by must be "asc" or "desc"'), "system_log/list")
  end
  if params.sort_by ~= nil and type(params.sort_by) ~= "string" then
    return nil, refused(errors.invalid("sort_by must be a string"), "system_log/list")
  end
  local v, err = api_call(self, "system_log/list", util.encode_query{
    page = params.page, page_size = params.page_size, sort_by = params.sort_by, order_by = params.order_by })
  if not v then return nil, err end
  if v.data == nil then v.data = {} end
  return v
end

local function files_query(files)
  if type(files) ~= "table" then error("loghaul.yeastar: files must be a list of file names", 3) end
  if #files == 0 then return nil, errors.invalid("files is empty: name at least one log file") end
  local out = {}
  for i, f in ipairs(files) do
    if type(f) ~= "string" then error("loghaul.yeastar: files[" .. i .. "] must be a string", 3) end
    if not f:find("^[%w%-_.]+$") then
      return nil, errors.invalid(("file name %q is not a system log name"):format(f))
    end
    out[#out + 1] = f
  end
  return "files=" .. table.concat(out, ",")
end

--- system_log/download: a download URL for one or more daily log files (valid 30 minutes).
-- @tparam {string,...} files e.g. `{ "20240422", "20240423" }`
-- @treturn table|nil `{ file =, download_resource_url = }`, or nil, err
function Pbx:system_log_download_url(files)
  local q, bad = files_query(files)
  if not q then return nil, refused(bad, "system_log/download") end
  local v, err = api_call(self, "system_log/download", q)
  if not v then return nil, err end
  local u = v.download_resource_url
  -- the URL is joined to base_url: it must be a path on the PBX itself, never another host
  if type(u) ~= "string" or u:sub(1, 1) ~= "/" or u:sub(1, 2) == "//" or u:find("[%c%s\\]") then
    return nil, errors.new{ kind = "http", code = "INVALID_RESPONSE", status = 200, vendor = "yeastar",
      operation = "system_log/download", message = "download_resource_url is not a path on the PBX" }
  end
  return v
end

local function stale(err)
  return (err.kind == "http" or err.kind == "api" or err.kind == "auth") and err.code ~= "UNSAFE_FILE_NAME"
    and err.code ~= "INVALID_RESPONSE"
end

--- Downloads system log files: asks for a URL, downloads it; an answer that is not the file
-- (a 4xx/5xx, or JSON with an errcode) means the URL or token went stale: a new token (when
-- the answer says so) and a new URL are fetched once, then it fails.
-- @tparam {string,...} files
-- @tparam[opt] table opts `{ dest = "dir/" | "file path", mode = "0644", concurrency = N }` (`dest`
--   default: the current directory; `mode` of the new file, default "0600"; with `concurrency`,
--   each day is its own request, N at once, and the result is keyed by day: see `download_each`)
-- @treturn table|nil `{ path =, bytes =, sha256 = }`, or nil, err
function Pbx:download_system_logs(files, opts)
  if opts ~= nil and type(opts) ~= "table" then error("loghaul.yeastar: opts must be a table", 2) end
  if opts and opts.concurrency ~= nil then return self:download_each(files, opts) end
  local c = self.client
  -- the token, without the pipeline's own renew-and-retry: a 10004 on the download cannot tell
  -- an expired token from an expired URL, so the renewal below handles both, once
  local auth = { apply = function(_, req, cl) return self.auth:apply(req, cl) end }
  local last
  for round = 1, 2 do
    local link, err = self:system_log_download_url(files)
    if not link then return nil, err end
    local file
    file, err = download.fetch(c, {
      operation = "download", url = c.base_url .. link.download_resource_url, auth = auth,
      decode = envelope.yeastar, dest = opts and opts.dest, mode = opts and opts.mode, name = link.file,
    })
    if file then return file end
    last = err
    if round == 2 or not stale(err) then break end
    c:log("info", "yeastar download answer was not the file (" .. errors.brief(err) .. "): renewing the URL once")
    if err.kind == "auth" or err.status == 401 or err.status == 403 then
      local ok, rerr = self.auth:renew()
      if not ok then return nil, rerr end
    end
  end
  return nil, last
end

--- Downloads each day's file with its own request, several at once (`download_system_logs`
-- with `concurrency = N`), on the scheduler of `loghaul.run_all`: for a PBX that answers one
-- file per request. One day's failure never stops the others.
-- @tparam {string,...} files distinct day names
-- @tparam table opts `{ dest, mode, concurrency = N }`
-- @treturn table keyed by day: `{ file = { path =, bytes =, sha256 = } }` or `{ err = error object }`
function Pbx:download_each(files, opts)
  if type(files) ~= "table" then error("loghaul.yeastar: files must be a list of file names", 2) end
  local tasks, seen = {}, {}
  for i, day in ipairs(files) do
    if type(day) ~= "string" then error("loghaul.yeastar: files[" .. i .. "] must be a string", 3) end
    if seen[day] then error("loghaul.yeastar: file " .. string.format("%q", day) .. " is listed twice", 3) end
    seen[day] = true
    tasks[i] = function() return self:download_system_logs({ day }, { dest = opts.dest, mode = opts.mode }) end
  end
  local results = require("loghaul.run_all").run_all(tasks, { concurrency = opts.concurrency })
  local by_day = {}
  for i, r in ipairs(results) do by_day[files[i]] = r.ok and { file = r.value } or { err = r.err } end
  return by_day
end

--- Closes the client's connections.
function Pbx:close() self.client:close() end

return M
