--- Huawei CC-CMS: upload a client log archive (`uploadClientLog`, multipart, `auth-v2`).
-- @module loghaul.cms
local client_mod = require "loghaul.client"
local envelope = require "loghaul.envelope"
local errors = require "loghaul.errors"
local fs = require "loghaul.fs"
local progress = require "loghaul.progress"
local util = require "loghaul.util"

local M = {}

local Cms = {}
Cms.__index = Cms

M.path = "/rest/cmsapp/v1/ClientLog/uploadClientLog"

local function need(opts, name)
  if type(opts[name]) ~= "string" or opts[name] == "" then
    util.raise("loghaul.cms: " .. name .. (opts[name] == nil and " is missing" or " must be a non-empty string"))
  end
  return opts[name]
end

local new_options = client_mod.options{ "access_key", "secret_key" }

--- Creates a CC-CMS client.
-- @tparam table opts `base_url` (the CC-CMS or NSLB address), `access_key`, `secret_key`, and
--   the common client options
-- @treturn table the client
function M.new(opts)
  client_mod.check_new(opts, new_options, "loghaul.cms")
  local ak, sk = need(opts, "access_key"), need(opts, "secret_key")
  local c = client_mod.new(opts, { vendor = "cms", adds = "/rest/cmsapp/..." })
  c:secret(sk)
  local self = setmetatable({ client = c }, Cms)
  -- auth-v2, signed per attempt (its timestamp is part of the signature)
  self.auth = { apply = function(_, req, cl)
    local u = util.parse_url(req.url)
    local r = cl.core.sign_auth_v2{
      access_key = ak, secret_key = sk, timestamp = util.format_utc(cl.now()), method = req.method,
      path = u.path:match("^[^?#]*"), headers = { host = util.host_header(req.url) }, body = "",
    }
    req.headers.Authorization = r.headers.Authorization
    return true
  end }
  return self
end

local upload_options = util.set{ "file_type", "filename" }

--- Uploads a client log archive as the multipart part `file` (streamed from disk).
-- @tparam string path the archive, e.g. `OELOG_99991093_10.1.2.3_20250226162127.zip`
-- @tparam[opt] table opts `{ file_type = 0, filename = "name.zip" }`
-- @treturn table|nil `{ status = "200", ... }`, or nil, err (`io` when the file cannot be read)
function Cms:upload_client_log(path, opts)
  util.check_self(self, Cms, "cms:upload_client_log(path)")
  if type(path) ~= "string" then util.raise("loghaul.cms: upload_client_log(path): path must be a string") end
  opts = util.options(opts, upload_options, "cms:upload_client_log")
  local c = self.client
  local filename = opts.filename or fs.basename(path)
  if type(filename) ~= "string" or filename == "" or filename:find('[%c"\\]') then
    local e = errors.invalid("filename must be a plain file name without quotes or control characters")
    e.vendor, e.operation = "cms", "uploadClientLog"
    return nil, e
  end
  local file_type = opts.file_type or 0
  if type(file_type) ~= "number" and type(file_type) ~= "string" then
    util.raise("loghaul.cms: file_type must be a number")
  end
  if path == "" or fs.is_dir(path) or not fs.readable(path) then
    local e = errors.io(path, "cannot read the file to upload")
    e.vendor, e.operation = "cms", "uploadClientLog"
    return nil, e
  end
  local on_upload, upload_done = progress.transfer(c, "upload")
  local v, err = c:call{
    operation = "uploadClientLog", method = "POST", url = c.base_url .. M.path,
    headers = { FileType = tostring(file_type) },
    form = { { name = "file", path = path, filename = filename, content_type = "application/octet-stream" } },
    -- a write: an upload that timed out may have arrived, so a timeout is not retried
    -- (429, 5xx and connection failures still are: a second copy of a log is harmless)
    auth = self.auth, allow_empty = true, write = true,
    prepare = function(req) req.progress = on_upload return true end,
    decode = envelope.huawei,
  }
  if not v then return nil, err end
  if v.status ~= nil and util.code(v.status) ~= "200" then
    return nil, errors.new{ kind = "api", code = util.code(v.status), status = 200, vendor = "cms",
      operation = "uploadClientLog",
      message = tostring(v.message or v.resultDesc or v.description or "upload not accepted") }
  end
  v.status = "200"
  if upload_done then upload_done(fs.size(path)) end -- the 100 % event, never dropped
  return v
end

--- Closes the client's connections.
function Cms:close() self.client:close() end

return M
