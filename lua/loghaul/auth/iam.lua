--- Huawei IAM password credentials → a token (from `X-Subject-Token`), cached, renewed
-- before its 24 h expiry and once when an API answers 401. Used as a client `auth` object.
-- @module loghaul.auth.iam
local cache_mod = require "loghaul.auth.cache"
local envelope = require "loghaul.envelope"
local json = require "loghaul.json"
local single_flight = require "loghaul.auth.single_flight"
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
-- @tparam table opts `{ iam_endpoint, user, password, domain, project | project_id, token_cache }`
--   (`token_cache`: a file that keeps the token for the next run, see `loghaul.auth.cache`)
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
  local self = setmetatable({ client = client, url = endpoint .. "/v3/auth/tokens?nocatalog=true", body = body },
                            Iam)
  if opts.token_cache ~= nil then
    self.cache = cache_mod.new(client, opts.token_cache, "loghaul.clouddc: auth.token_cache")
    -- a token is scoped to one user and project: the key says which (never the password)
    self.cache_key = "iam " .. endpoint .. " " .. opts.domain .. " " .. opts.user .. " "
      .. (opts.project_id and ("id:" .. opts.project_id) or opts.project)
  end
  return self
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
  return self:adopt(got.token, now + ttl - math.min(M.margin, ttl / 10))
end

--- Takes a token into use (registered as a secret for redaction).
-- @tparam string token
-- @tparam number renew_at Unix seconds
-- @treturn string the token
function Iam:adopt(token, renew_at)
  self.client:forget(self.value)
  self.client:secret(token)
  self.value, self.renew_at = token, renew_at
  return token
end

-- With a token cache: under the file's lock, the cached token when it is alive (and not the
-- one an API just refused), else a new one, stored for the next run. Processes sharing the
-- file wait for each other: one token request in all.
local function from_cache(self)
  local t, err = self.cache:update(self.cache_key, function(e)
    if type(e) == "table" and type(e.token) == "string" and e.token ~= self.dead
       and self.client.now() < (tonumber(e.renew_at) or 0) then
      return nil, self:adopt(e.token, e.renew_at)
    end
    local tok, ferr = self:fetch()
    if not tok then return nil, nil, ferr end
    return { token = tok, renew_at = self.renew_at }, tok
  end)
  if not t then return nil, err end
  return t
end

--- The cached token, fetched or renewed when missing or near its expiry.
-- @treturn string|nil the token, or nil, err
function Iam:token()
  if self.value and self.client.now() < self.renew_at then return self.value end
  return single_flight.run(self, function()
    if self.cache then return from_cache(self) end
    return self:fetch()
  end)
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

--- Drops the refused token and gets another (after a 401). Tasks sharing the client renew
-- once between them: a task whose token was already replaced by another's renewal uses the
-- new one instead of logging in again.
-- @param _ the error (unused)
-- @param _ the client (unused)
-- @tparam[opt] table req the refused request (its `X-Auth-Token` is the token refused)
-- @treturn boolean|nil true, or nil, err
function Iam:renew(_, _, req)
  local refused = req and req.headers and req.headers["X-Auth-Token"] or self.value
  local t, err = single_flight.run(self, function()
    if self.value ~= nil and self.value ~= refused then return self.value end
    self.dead, self.value = refused, nil
    if self.cache then return from_cache(self) end
    return self:fetch()
  end)
  if not t then return nil, err end
  return true
end

return M
