-- Huawei Cloud CloudDC: export server logs, poll the export, download the archive.
-- Auth: X-Auth-Token from emu IAM, or SDK-HMAC-SHA256 with the fixture AK/SK.
local archive = require "emu.vendors.archive"
local common = require "emu.vendors.common"
local fixtures = require "emu.fixtures"
local iam = require "emu.vendors.iam"
local fleet = require "emu.vendors.fleet"
local json = require "emu.json"
local rate = require "emu.vendors.rate"
local sign = require "emu.vendors.sign"

local M = {}

local APIG_AUTH = "APIG.0301"

local function auth(cfg, body)
  local token = ngx.var.http_x_auth_token
  if token then
    local st = iam.check(token)
    if st == "expired" then
      return nil, "APIG.0307", "The token must be updated."
    elseif st ~= "ok" then
      return nil, APIG_AUTH, "Incorrect IAM authentication information: decrypt token fail"
    end
    return "token"
  end
  local a, why = sign.parse_sdk(ngx.var.http_authorization)
  if not a then return nil, APIG_AUTH, "Incorrect IAM authentication information: " .. why end
  if a.access_key ~= fixtures.clouddc.access_key then
    return nil, APIG_AUTH, "Incorrect IAM authentication information: ak " .. a.access_key .. " not exist"
  end
  local hs = common.headers()
  local t = common.parse_sdk_date(hs["x-sdk-date"])
  if not t then
    return nil, APIG_AUTH, "Incorrect IAM authentication information: x-sdk-date is missing or malformed"
  end
  if math.abs(common.now() - t) > cfg.max_skew then
    return nil, APIG_AUTH, "Incorrect IAM authentication information: x-sdk-date is out of range"
  end
  local expect = sign.sdk {
    secret_key = fixtures.clouddc.secret_key, date = hs["x-sdk-date"], signed_headers = a.signed_headers,
    method = ngx.req.get_method(), path = ngx.var.uri, query = ngx.req.get_uri_args(0),
    headers = hs, body = body,
  }
  if not expect or not sign.equal(expect, a.signature:lower()) then
    return nil, APIG_AUTH, "Incorrect IAM authentication information: verify aksk signature fail"
  end
  return "aksk"
end

local function pct(cfg, n)
  if cfg.percentage == "number" then return n end
  return string.format("%d%%", n)
end

local function status_word(cfg, done, failed)
  if failed then return "failed" end
  if done then return "completed" end
  return cfg.status_style == "processing" and "processing" or "Running"
end

local function export_key(id) return "dc_exp:" .. id end

local function load_export(id)
  local s = ngx.shared.vendors:get(export_key(id))
  return s and json.decode(s)
end

local function save(e)
  ngx.shared.vendors:set(export_key(e.export_id), json.encode(e), 86400)
end

-- An export is done after `needed` polls, or, with export_seconds set when it was created,
-- once its time has passed (the percentage then grows with the time).
local function is_done(e)
  if e.ready_at then return common.now() >= e.ready_at end
  return e.polls >= e.needed
end

local function view(cfg, e)
  local done = is_done(e)
  local p
  if e.ready_at and not done then
    local span = math.max(e.ready_at - e.created, 1e-3)
    p = math.min(30 + math.floor(70 * (common.now() - e.created) / span), 99)
  elseif done and not e.failed then
    p = 100
  elseif done then
    p = math.min(30 + math.floor(60 * (e.needed - 1) / math.max(e.needed, 1)), 99)
  else
    p = math.min(30 + math.floor(60 * e.polls / math.max(e.needed, 1)), 99)
  end
  return { export_id = e.export_id, status = status_word(cfg, done, done and e.failed),
           percentage = pct(cfg, p), created_at = e.created_at }
end

function M.handle()
  common.count("clouddc", "requests")
  if not rate.admit("clouddc") then   -- the API gateway throttles before anything else
    return common.huawei(429, "APIG.0308", "The request is throttled.", { ["Retry-After"] = "1" })
  end
  local cfg = common.settings("clouddc")
  local method = ngx.req.get_method()
  local uri = ngx.var.uri
  local project, server, rest = uri:match("^/v1/([^/]+)/physicalservers/([^/]+)/logs/exports(.*)$")
  local export_id, content
  if rest and rest ~= "" then
    export_id, content = rest:match("^/([^/]+)(/?[%w]*)$")
    if not export_id or (content ~= "" and content ~= "/content") then rest = nil end
  end
  local allowed = rest and ((rest == "" and method == "POST") or (export_id and method == "GET"))
  if not allowed then
    return common.huawei(404, "APIG.0101", "The API does not exist or has not been published in the environment.")
  end
  local body = method == "POST" and common.body() or ""
  local how, code, msg = auth(cfg, body)
  if not how then
    common.count("clouddc", "auth_failures")
    return common.huawei(401, code, msg)
  end
  common.count("clouddc", "auth_" .. how)
  local f = fixtures.clouddc
  if project ~= f.project_id then
    return common.huawei(403, "CloudDC.0403", "The project " .. project .. " is not the caller's project.")
  end
  if server ~= f.server_id and not fleet.number(server) then
    return common.huawei(404, "CloudDC.0404", "The physical server " .. server .. " does not exist.")
  end
  if rest == "" then
    local now = common.now()
    local e = {
      export_id = common.uuid(), polls = 0, needed = math.max(math.floor(tonumber(cfg.polls) or 3), 0),
      failed = cfg.fail and true or false, created_at = common.iso(now), server = server,
    }
    local seconds = fleet.export_seconds(server, cfg)
    if seconds then e.created, e.ready_at = now, now + seconds end
    save(e)
    common.count("clouddc", "exports_created")
    local v = view(cfg, e)   -- a new export always answers Running 30% (even one born done)
    v.status, v.percentage = status_word(cfg, false, false), pct(cfg, 30)
    return json.reply(v, 202)
  end
  local e = load_export(export_id)
  if not e or e.server ~= server then
    return common.huawei(404, "CloudDC.0404", "The export task " .. export_id .. " does not exist.")
  end
  if content == "" then
    e.polls = e.polls + 1
    save(e)
    common.count("clouddc", "polls")
    return json.reply(view(cfg, e))
  end
  if e.failed or not is_done(e) then
    return common.huawei(400, "CloudDC.0400", "The export task " .. export_id .. " has not completed.")
  end
  common.count("clouddc", "downloads")
  local name, fname
  if server == f.server_id then
    name, fname = common.tar_gz("clouddc", tonumber(cfg.archive_size) or 300000), f.sn .. "-dump.tar.gz"
  else
    local sn = fleet.sn(server)
    name, fname = archive.ensure(server, sn, cfg.fleet_archive_size), sn .. "-dump.tar.gz"
  end
  if cfg.hostile_filename then
    fname = type(cfg.hostile_filename) == "string" and cfg.hostile_filename or "../../etc/passwd"
  end
  return common.serve(name, "application/octet-stream;charset=UTF-8", "attachment; filename=" .. fname)
end

return M
