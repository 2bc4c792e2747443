-- Huawei CC-CMS: POST /rest/cmsapp/v1/ClientLog/uploadClientLog (auth-v2, multipart `file`).
local common = require "emu.vendors.common"
local fixtures = require "emu.fixtures"
local json = require "emu.json"
local sign = require "emu.vendors.sign"
local upload = require "emu.handlers.upload"

local M = {}

local function fail(status, msg)
  common.count("cms", "rejected")
  ngx.req.discard_body()
  return json.reply({ status = tostring(status), message = msg }, status)
end

--- Verify the auth-v2 Authorization of the current request; true or nil, why.
function M.verify(cfg)
  local a, why = sign.parse_auth_v2(ngx.var.http_authorization)
  if not a then return nil, why end
  if a.access_key ~= fixtures.cms.access_key then return nil, "unknown access key" end
  local ts = common.parse_iso(a.timestamp)
  if not ts then return nil, "bad timestamp" end
  if math.abs(common.now() - ts) > cfg.max_skew then return nil, "timestamp more than 15 min off" end
  local signed = {}
  for n in a.signed_headers:gmatch("[^;]+") do signed[n] = true end
  if not signed.host then return nil, "host is not signed" end
  local expect, err = sign.auth_v2 {
    access_key = a.access_key, secret_key = fixtures.cms.secret_key, timestamp = a.timestamp,
    signed_headers = a.signed_headers, method = ngx.req.get_method(), path = common.raw_path(),
    query = ngx.var.args and ngx.req.get_uri_args(0) or nil, headers = common.headers(),
    body = "",   -- a multipart upload signs an empty payload
  }
  if not expect then return nil, err end
  if not sign.equal(expect, a.signature:lower()) then return nil, "signature mismatch" end
  return true
end

function M.handle()
  common.count("cms", "requests")
  local cfg = common.settings("cms")
  if ngx.req.get_method() ~= "POST" then return fail(405, "POST only") end
  local ok, why = M.verify(cfg)
  if not ok then return fail(401, "authentication failed: " .. why) end
  if ngx.var.http_filetype ~= "0" then return fail(400, "FileType must be 0") end
  local parts, err = upload.receive()   -- streamed to <dir>/uploads, hashed on the way
  if not parts then return fail(400, "bad multipart body: " .. tostring(err)) end
  local file
  for _, p in ipairs(parts) do
    if p.name == "file" and p.filename and p.filename ~= "" then file = p end
  end
  if not file then return fail(400, "no part named file with a file name") end
  common.count("cms", "uploads")
  common.push("cms_uploads", {
    name = file.filename, size = file.size, sha256 = file.sha256, path = file.path,
    content_type = file.content_type, parts = #parts,
  })
  return json.reply { status = "200" }
end

return M
