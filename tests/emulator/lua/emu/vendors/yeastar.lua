-- Yeastar P-Series OpenAPI: tokens, system log list, download URL, the download itself.
-- Errors are HTTP 200 with a non-zero errcode. The access token counts only as the
-- `access_token` query parameter.
local common = require "emu.vendors.common"
local fixtures = require "emu.fixtures"
local json = require "emu.json"
local rate = require "emu.vendors.rate"

local M = {}

local ERR = {
  [-1] = "FAILURE", [10001] = "INTERFACE NOT EXISTED", [10004] = "TOKEN EXPIRED",
  [10005] = "ACCESS DENIED", [40002] = "PARAMETERS ERROR", [60001] = "DATA NOT FOUND",
}

local function errc(code, extra)
  common.count("yeastar", "errors")
  common.count("yeastar", "errcode_" .. code)
  ngx.req.discard_body()
  local v = { errcode = code, errmsg = ERR[code] or "FAILURE" }
  for k, x in pairs(extra or {}) do v[k] = x end
  return json.reply(v, 200)
end

local function d() return ngx.shared.vendors end

local function new_pair(cfg)
  local at, rt = common.random_hex(16), common.random_hex(16)
  local now = common.now()
  local at_ttl = tonumber(cfg.access_token_ttl) or 1800
  local rt_ttl = tonumber(cfg.refresh_token_ttl) or 86400
  -- the value is the expiry time; the key outlives it so "expired" differs from "unknown"
  d():set("ys_at:" .. at, now + at_ttl, at_ttl + 60)
  d():set("ys_rt:" .. rt, now + rt_ttl, rt_ttl + 60)
  return json.reply {
    errcode = 0, errmsg = "SUCCESS",
    access_token_expire_time = at_ttl, access_token = at,
    refresh_token_expire_time = rt_ttl, refresh_token = rt,
  }
end

local function token_ok(kind, t)
  if type(t) ~= "string" or t == "" then return false end
  local exp = d():get(kind .. t)
  return exp ~= nil and common.now() < exp
end

-- The daily log names: the last `n` days, newest first ("20240610").
local function file_names(cfg)
  local n = math.max(math.floor(tonumber(cfg.files) or 40), 0)
  local now = common.now()
  local out = {}
  for i = 1, n do out[i] = os.date("!%Y%m%d", math.floor(now) - (i - 1) * 86400) end
  return out
end

local function positive(v)
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n < 1 or n ~= math.floor(n) or type(v) == "table" then return false end
  return n
end

local function list(cfg, args)
  local page, size = positive(args.page), positive(args.page_size)
  if page == false or size == false then return errc(40002) end
  if args.sort_by ~= nil and args.sort_by ~= "file_name" then return errc(40002) end
  if args.order_by ~= nil and args.order_by ~= "asc" and args.order_by ~= "desc" then return errc(40002) end
  local names = file_names(cfg)
  if args.order_by == "asc" then table.sort(names) end
  page = page or 1
  size = size or #names
  local data = {}
  for i = (page - 1) * size + 1, math.min(page * size, #names) do data[#data + 1] = { file_name = names[i] } end
  common.count("yeastar", "lists")
  return json.reply { errcode = 0, errmsg = "SUCCESS", total_number = #names,
                      data = #data > 0 and data or json.empty_array }
end

local function download_url(cfg, args)
  local files = type(args.files) == "string" and args.files or nil
  if not files or files == "" then return errc(40002) end
  local known = {}
  for _, n in ipairs(file_names(cfg)) do known[n] = true end
  local members = {}
  for f in (files .. ","):gmatch("([^,]*),") do
    if f == "" then return errc(40002) end
    if not known[f] then return errc(60001) end
    members[#members + 1] = f
  end
  local seq = d():incr("ys_dl_seq", 1, 0)
  local name = string.format("PBX-SystemLog-%s-%d.tar", os.date("!%Y%m%d%H%M%S", math.floor(common.now())), seq)
  common.tar(name, members, tonumber(cfg.archive_size) or 200000)
  local ttl = tonumber(cfg.download_url_ttl) or 1800
  d():set("ys_dl:" .. name, common.now() + ttl, ttl + 3600)
  common.count("yeastar", "download_urls")
  local file = name
  if cfg.hostile_file then
    file = type(cfg.hostile_file) == "string" and cfg.hostile_file or "../../etc/passwd"
  end
  return json.reply { errcode = 0, errmsg = "SUCCESS", file = file, download_resource_url = "/api/download/" .. name }
end

-- Over the rate: the PBX's overload answer, HTTP 200 errcode 70082.
local function throttled()
  return errc(70082, { errmsg = "SYSTEM OVERLOAD" })
end

function M.openapi()
  common.count("yeastar", "requests")
  if not rate.admit("yeastar") then return throttled() end
  local cfg = common.settings("yeastar")
  if not ngx.var.http_user_agent or ngx.var.http_user_agent == "" then
    common.count("yeastar", "no_user_agent")
    return errc(10005)
  end
  local ep = ngx.var.uri:match("^/openapi/v1%.0/(.+)$")
  local method = ngx.req.get_method()
  local args = ngx.req.get_uri_args(0)
  if ep == "get_token" and method == "POST" then
    common.count("yeastar", "login_attempts")
    local b = json.decode(common.body())
    if type(b) ~= "table" or type(b.username) ~= "string" or type(b.password) ~= "string" then
      return errc(40002)
    end
    if b.username ~= fixtures.yeastar.client_id or b.password ~= fixtures.yeastar.client_secret then
      return errc(10005)
    end
    common.count("yeastar", "logins")
    return new_pair(cfg)
  elseif ep == "refresh_token" and method == "POST" then
    local b = json.decode(common.body())
    if type(b) ~= "table" or type(b.refresh_token) ~= "string" then return errc(40002) end
    if not token_ok("ys_rt:", b.refresh_token) then return errc(10004) end
    d():delete("ys_rt:" .. b.refresh_token)   -- a refresh token is used once
    common.count("yeastar", "refreshes")
    return new_pair(cfg)
  end
  local known = { del_token = "GET", ["system_log/list"] = "GET", ["system_log/download"] = "GET" }
  if not known[ep] or known[ep] ~= method then return errc(10001) end
  local at = type(args.access_token) == "string" and args.access_token or nil
  if not token_ok("ys_at:", at) then return errc(10004) end
  common.count("yeastar", "authorized")
  if ep == "del_token" then
    d():delete("ys_at:" .. at)
    common.count("yeastar", "deletes")
    return json.reply { errcode = 0, errmsg = "SUCCESS" }
  elseif ep == "system_log/list" then
    return list(cfg, args)
  end
  return download_url(cfg, args)
end

function M.download()
  common.count("yeastar", "requests")
  if not rate.admit("yeastar") then return throttled() end
  local cfg = common.settings("yeastar")
  local name = ngx.var.uri:match("^/api/download/([^/]+)$")
  local function stale(code)
    common.count("yeastar", "stale_downloads")
    if cfg.expired_download == "403" then
      ngx.req.discard_body()
      return json.reply({ errcode = code, errmsg = ERR[code] }, 403)
    end
    return errc(code)
  end
  if not ngx.var.http_user_agent or ngx.var.http_user_agent == "" then return errc(10005) end
  if ngx.req.get_method() ~= "GET" and ngx.req.get_method() ~= "HEAD" then return errc(10001) end
  local at = ngx.req.get_uri_args(0).access_token
  if not token_ok("ys_at:", type(at) == "string" and at or nil) then return stale(10004) end
  local exp = name and d():get("ys_dl:" .. name)
  if not exp then return stale(60001) end
  if common.now() >= exp then return stale(10004) end
  common.count("yeastar", "downloads")
  return common.serve(name, "application/octet-stream", "attachment; filename=" .. name)
end

return M
