--- Huawei IAM password credentials → a token (from `X-Subject-Token`), cached, renewed
-- before its 24 h expiry and once when an API answers 401. Used as a client `auth` object.
-- @module loghaul.auth.iam
local envelope = require "loghaul.envelope"
local json = require "loghaul.json"
local util = require "loghaul.util"

local M = {}

local Iam = {}
Iam.__index = Iam

--- Seconds a token lives when the answer does not say (IAM tokens last 24 h).
M.lifetime = 24 * 3600
--- Renew this long before the token expires.
M.margin = 3600

local function need(opts, name)
  local v = opts[name]
  if type(v) ~= "string" or v == "" then
    error("loghaul: clouddc auth." .. name .. " must be a non-empty string", 4)
  end
  return v
end

--- Creates the provider.
-- @tparam table client the client whose session and retries it uses
-- @tparam table opts `{ iam_endpoint, user, password, domain, project | project_id }`
-- @treturn table the provider (`apply`, `renew`, `token`)
function M.new(client, opts)
  local endpoint = util.base_url(need(opts, "iam_endpoint"), "auth.iam_endpoint")
  local scope
  if opts.project_id then
    scope = { project = { id = need(opts, "project_id") } }
  else
    scope = { project = { name = need(opts, "project") } }
  end
  local body = json.encode{ auth = {
    identity = { methods = { "password" }, password = { user = {
      name = need(opts, "user"), password = need(opts, "password"), domain = { name = need(opts, "domain") },
    } } },
    scope = scope,
  } }
  client:secret(opts.password)
  return setmetatable({ client = client, url = endpoint .. "/v3/auth/tokens?nocatalog=true", body = body },
                      Iam)
end

-- parses "2024-01-02T03:04:05.123000Z" (fraction optional)
local function parse_expiry(s)
  if type(s) ~= "string" then return nil end
  local base = s:match("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d)")
  return base and util.parse_utc(base .. "Z")
end

--- Fetches a new token now (one request, retried like any read).
-- @treturn string|nil the token, or nil, err
function Iam:fetch()
  local client = self.client
  local got, err = client:call{
    operation = "KeystoneCreateUserTokenByPassword", method = "POST", url = self.url,
    headers = { ["Content-Type"] = "application/json;charset=utf8" }, body = self.body,
    decode = function(res, op, secrets)
      if res.status < 200 or res.status > 299 then return envelope.huawei(res, op, secrets) end
      local token = res.headers and res.headers["x-subject-token"]
      if type(token) ~= "string" or token == "" then
        return nil, envelope.http_error(res, { kind = "auth", code = "NO_SUBJECT_TOKEN",
          message = "IAM answered without an X-Subject-Token header" })
      end
      local v = json.decode(res.body or "")
      local expires = type(v) == "table" and type(v.token) == "table" and parse_expiry(v.token.expires_at)
      return { token = token, expires = expires }
    end,
  }
  if not got then return nil, err end
  local now = client.now()
  local expires = got.expires or (now + M.lifetime)
  local ttl = math.max(0, expires - now)
  client:forget(self.value)
  client:secret(got.token)
  self.value = got.token
  self.renew_at = now + ttl - math.min(M.margin, ttl / 10)
  return got.token
end

--- The cached token, fetched or renewed when missing or near its expiry.
-- @treturn string|nil the token, or nil, err
function Iam:token()
  if self.value and self.client.now() < self.renew_at then return self.value end
  return self:fetch()
end

--- Adds `X-Auth-Token` to a request (pipeline hook).
-- @tparam table req
-- @treturn boolean|nil true, or nil, err
function Iam:apply(req)
  local t, err = self:token()
  if not t then return nil, err end
  req.headers["X-Auth-Token"] = t
  return true
end

--- Drops the token and fetches a new one (after a 401).
-- @treturn boolean|nil true, or nil, err
function Iam:renew()
  self.value = nil
  local t, err = self:fetch()
  if not t then return nil, err end
  return true
end

return M
