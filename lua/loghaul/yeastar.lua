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

-- an object whose collection calls fn (Lua 5.4: a table's __gc; LuaJIT/5.1: newproxy)
local function on_collect(fn)
  if newproxy then -- luacheck: ignore 113
    local u = newproxy(true) -- luacheck: ignore 113
    getmetatable(u).__gc = function() fn() end
    return u
  end
  return setmetatable({}, { __gc = function() fn() end })
end

-- Access tokens a finalizer could not revoke safely; the next close() of a client of the
-- same PBX revokes them.
local pending = {}

-- LuaJIT finalizes the C module's library handle (dlclose) in the first round of lua_close
-- and the userdata a finalizer creates in a later round: a transfer started by a finalizer
-- at exit would leave a request object whose __gc points into unloaded code. So only Lua
-- 5.4 (which unloads C libraries after every other finalizer) revokes from a finalizer.
local finalizer_io = rawget(_G, "jit") == nil

--- The finalizer of a collected client that was not closed: revokes its access token
-- (unless a token cache keeps it). What is safe in a finalizer decides how: it never raises,
-- never logs through the user's function, never yields, never waits long. It sends one
-- `del_token` (5 s limit, outcome ignored) on the client's own session only when nothing
-- else can be using it: plain Lua 5.4, no transfer of this Lua state under way (a finalizer
-- may run inside a libcurl callback). Inside nginx (where it must not block the worker or
-- yield), on LuaJIT (see above), during a transfer, or on a test double, it only queues the
-- token for the next `close()` of a client of the same PBX in this process.
-- @tparam table auth the client's token provider
function M.finalize(auth)
  pcall(function()
    local t = auth:revocable()
    if not t then return end
    auth.access = nil
    local c = auth.client
    if not finalizer_io or rawget(_G, "ngx") ~= nil or client_mod.transfers_running > 0 or not c.transfer_ctx then
      pending[#pending + 1] = { base_url = c.base_url, token = t }
      return
    end
    c.session:request{ method = "GET", headers = {}, timeout = 5,
                       url = c:url("/openapi/v1.0/del_token", { access_token = t }) }
  end)
end

-- revokes the queued tokens of this client's PBX (best effort)
local function drain_pending(self)
  local c = self.client
  for i = #pending, 1, -1 do
    local p = pending[i]
    if p.base_url == c.base_url then
      table.remove(pending, i)
      c:secret(p.token) -- redacted from this client's log lines too
      pcall(c.call, c, { operation = "del_token", method = "GET", decode = envelope.yeastar,
                         url = c:url("/openapi/v1.0/del_token", { access_token = p.token }) })
      c:forget(p.token)
    end
  end
end

local new_options = client_mod.options{ "client_id", "client_secret", "token_cache" }

--- Creates a Yeastar client.
-- @tparam table opts `base_url`, `client_id`, `client_secret`, `token_cache` (optional: a
--   file that keeps the token pair for the next run, see `loghaul.auth.cache`), and the
--   common client options
-- @treturn table the client
function M.new(opts)
  client_mod.check_new(opts, new_options, "loghaul.yeastar")
  for _, n in ipairs{ "client_id", "client_secret" } do
    if type(opts[n]) ~= "string" or opts[n] == "" then
      util.raise("loghaul.yeastar: " .. n .. (opts[n] == nil and " is missing" or " must be a non-empty string"))
    end
  end
  local c = client_mod.new(opts, { vendor = "yeastar", user_agent = "OpenAPI loghaul/" .. client_mod.version,
                                   adds = "/openapi/v1.0/..." })
  local self = setmetatable({ client = c }, Pbx)
  self.auth = token.new(c, opts.client_id, opts.client_secret, opts.token_cache)
  -- garbage collection revokes too (LuaJIT tables have no __gc: a userdata sentinel)
  local auth = self.auth
  self._sentinel = on_collect(function() M.finalize(auth) end)
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

local list_options = util.set{ "page", "page_size", "sort_by", "order_by" }

--- The order `list_system_logs` asks for when none is given: newest first ("what is new").
M.default_order_by = "desc"

--- system_log/list: one page of the PBX's system log files.
-- @tparam[opt] table params `{ page, page_size, sort_by = "file_name", order_by = "asc"|"desc" }`;
--   without them: `page` 1, the PBX's own page size, `order_by = "desc"` (newest first)
-- @treturn table|nil `{ total_number =, data = { { file_name = "20240610" }, ... } }` (the API's
--   fields), or nil, err
function Pbx:list_system_logs(params)
  util.check_self(self, Pbx, "pbx:list_system_logs{ ... }")
  params = util.options(params, list_options, "pbx:list_system_logs")
  local bad = positive_int(params.page, "page") or positive_int(params.page_size, "page_size")
  if bad then return nil, refused(bad, "system_log/list") end
  if params.order_by ~= nil and params.order_by ~= "asc" and params.order_by ~= "desc" then
    return nil, refused(errors.invalid('order_by must be "asc" or "desc"'), "system_log/list")
  end
  if params.sort_by ~= nil and type(params.sort_by) ~= "string" then
    return nil, refused(errors.invalid("sort_by must be a string"), "system_log/list")
  end
  local v, err = api_call(self, "system_log/list", util.encode_query{
    page = params.page, page_size = params.page_size, sort_by = params.sort_by,
    order_by = params.order_by or M.default_order_by })
  if not v then return nil, err end
  if v.data == nil then v.data = {} end
  return v
end

local function files_query(files)
  if type(files) ~= "table" then
    util.raise('loghaul.yeastar: files must be a list of file names, e.g. { "20240422" }, got ' .. type(files))
  end
  if #files == 0 then return nil, errors.invalid("files is empty: name at least one log file") end
  local out = {}
  for i, f in ipairs(files) do
    if type(f) ~= "string" then util.raise("loghaul.yeastar: files[" .. i .. "] must be a string") end
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
  util.check_self(self, Pbx, "pbx:system_log_download_url{ ... }")
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

local download_options = util.set{ "dest", "mode", "concurrency" } -- as main's download_each

--- Downloads system log files: asks for a URL, downloads it; an answer that is not the file
-- (a 4xx/5xx, or JSON with an errcode) means the URL or token went stale: a new token (when
-- the answer says so) and a new URL are fetched once, then it fails.
-- @tparam {string,...} files
-- @tparam[opt] table opts `{ dest = "dir/" | "file path", mode = "0644", concurrency = N }` (`dest`
--   default: the current directory; `mode` of the new file, default "0600"; with `concurrency`,
--   each day is its own request, N at once, and the result is keyed by day: see `download_each`)
-- @treturn table|nil `{ path =, bytes =, sha256 = }`, or nil, err
function Pbx:download_system_logs(files, opts)
  util.check_self(self, Pbx, "pbx:download_system_logs(files, { dest = ... })")
  opts = util.options(opts, download_options, "pbx:download_system_logs")
  if opts.concurrency ~= nil then return self:download_each(files, opts) end
  local c = self.client
  -- dest checked and created before the first request, with the OS's reason when it cannot be
  if opts.dest ~= nil and (type(opts.dest) ~= "string" or opts.dest == "") then
    util.raise("loghaul.yeastar: dest must be a non-empty string (a folder ending in / or a file path)")
  end
  local ready, derr = download.resolve(opts.dest)
  if not ready then
    derr.vendor, derr.operation = "yeastar", "download"
    return nil, derr
  end
  -- the token, without the pipeline's own renew-and-retry: a 10004 on the download cannot tell
  -- an expired token from an expired URL, so the renewal below handles both, once
  local sent -- the last request, whose token a renewal replaces
  local auth = { apply = function(_, req, cl) sent = req return self.auth:apply(req, cl) end }
  local last
  for round = 1, 2 do
    local link, err = self:system_log_download_url(files)
    if not link then return nil, err end
    local file
    file, err = download.fetch(c, {
      operation = "download", url = c.base_url .. link.download_resource_url, auth = auth,
      decode = envelope.yeastar, dest = opts.dest, mode = opts.mode, name = link.file,
      -- the same files, the same temporary name in every run (the URL changes each time)
      part_key = "yeastar " .. c.base_url .. " " .. table.concat(files, ","),
    })
    if file then return file end
    last = err
    if round == 2 or not stale(err) then break end
    c:log("info", "yeastar download answer was not the file (" .. errors.brief(err) .. "): renewing the URL once")
    if err.kind == "auth" or err.status == 401 or err.status == 403 then
      local ok, rerr = self.auth:renew(err, c, sent)
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

--- Closes the client: revokes its access token (`del_token`; the cloud edition allows only
-- 8 live ones per application) unless it lives in the `token_cache` file, for the next run,
-- then closes the connections. Idempotent. A Lua 5.4 `<close>` variable and garbage
-- collection close too (see `finalize`).
-- @treturn boolean|nil true, or nil, err when the revocation failed (the client is closed anyway)
function Pbx:close()
  local ok, err = self.auth:release()
  drain_pending(self)
  self.client:close()
  if not ok then return nil, err end
  return true
end

Pbx.__close = Pbx.close

return M
