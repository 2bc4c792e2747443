--- Yeastar P-Series access tokens: one `get_token`, then `refresh_token` before expiry
-- (relative expire times); on errcode 10004 refresh, or log in again when the refresh token
-- is dead, then retry once. Never a login per request. The token goes in the query string.
--
-- A failed login is never retried: a PBX blocks the caller's IP after 5 failed logins, so a
-- wrong secret costs exactly one `get_token`, and this provider remembers the failure and
-- answers it again without another request. (Only a request that provably never reached
-- the PBX, e.g. a refused connection, is sent again: that is not a failed login.)
--
-- Tokens are released: `release()` (the client's close()) revokes the access token with
-- `del_token`, since the cloud edition allows only 8 live access tokens per application;
-- a token that lives in a `token_cache` file is left alive for the next run instead.
-- @module loghaul.auth.yeastar
local cache_mod = require "loghaul.auth.cache"
local envelope = require "loghaul.envelope"
local errors = require "loghaul.errors"
local json = require "loghaul.json"
local single_flight = require "loghaul.auth.single_flight"
local util = require "loghaul.util"

local M = {}

local Provider = {}
Provider.__index = Provider

--- Creates the provider.
-- @tparam table client
-- @tparam string client_id
-- @tparam string client_secret
-- @tparam[opt] string token_cache path of a token cache file (see `loghaul.auth.cache`)
-- @treturn table the provider (`apply`, `renew`, `access_token`, `release`)
function M.new(client, client_id, client_secret, token_cache)
  client:secret(client_secret)
  local p = setmetatable({ client = client, id = client_id, secret = client_secret, logins = 0, refreshes = 0 },
                         Provider)
  if token_cache ~= nil then
    p.cache = cache_mod.new(client, token_cache, "loghaul.yeastar: token_cache")
    -- keyed by PBX and application: a cache file may serve several
    p.cache_key = "yeastar " .. client.base_url .. " " .. client_id
  end
  return p
end

local function margin(ttl) return math.min(60, ttl / 10) end

-- adopts a token pair: `v` holds absolute renew times (a cache entry)
local function adopt(self, e)
  local c = self.client
  c:forget(self.access)
  c:forget(self.refresh)
  c:secret(e.access_token)
  c:secret(e.refresh_token)
  self.access, self.access_renew_at = e.access_token, e.access_renew_at
  self.refresh = type(e.refresh_token) == "string" and e.refresh_token ~= "" and e.refresh_token or nil
  self.refresh_renew_at = e.refresh_renew_at
  return self.access
end

-- a get_token/refresh_token answer → a cache-shaped entry with absolute renew times
local function entry_of(self, v)
  if type(v.access_token) ~= "string" or v.access_token == "" then
    return nil, errors.new{ kind = "http", code = "INVALID_RESPONSE", message = "token answer without access_token",
                            vendor = self.client.vendor }
  end
  local now = self.client.now()
  local at = tonumber(v.access_token_expire_time) or 1800
  local rt = tonumber(v.refresh_token_expire_time) or 86400
  return { access_token = v.access_token, access_renew_at = now + at - margin(at),
           refresh_token = type(v.refresh_token) == "string" and v.refresh_token or nil,
           refresh_renew_at = now + rt - margin(rt) }
end

local function store(self, v)
  local e, err = entry_of(self, v)
  if not e then return nil, err end
  return adopt(self, e), e
end

local function token_call(self, operation, body, create)
  local c = self.client
  return c:call{
    operation = operation, method = "POST", url = c:url("/openapi/v1.0/" .. operation),
    headers = { ["Content-Type"] = "application/json" }, body = json.encode(body), decode = envelope.yeastar,
    create = create,
  }
end

-- What a failed get_token means, in plain words.
local login_hints = {
  ["70004"] = "the PBX has blocked this IP address after too many failed logins (errcode 70004 IP BLOCKED); "
    .. "lift the block on the PBX web page under Security > Blocked IPs, and check client_id and client_secret "
    .. "before trying again: every failed login counts",
  ["60002"] = "the PBX refused a new access token (errcode 60002 MAX LIMITATION EXCEEDED): the application has "
    .. "its maximum of live access tokens (8 on the cloud edition); close() clients when done (that revokes "
    .. "their token), use token_cache for cron jobs, or wait for old tokens to expire (30 minutes)",
  ["10005"] = "the PBX refused the login (errcode 10005 ACCESS DENIED): check client_id and client_secret; "
    .. "not retried: a PBX blocks an IP after 5 failed logins",
}

--- Logs in (`get_token`). Never retried after the PBX answered; a failure is remembered
-- and returned again without a request.
-- @treturn string|nil the access token, or nil, err
function Provider:login()
  if self.login_failed then return nil, self.login_failed end
  self.logins = self.logins + 1
  local v, err = token_call(self, "get_token", { username = self.id, password = self.secret }, true)
  if not v then
    local hint = err.code and login_hints[err.code]
    if hint then err.message = hint end
    -- the PBX judged the credentials (or refuses logins): asking again cannot help and may
    -- get the IP blocked
    if err.kind == "auth" or err.kind == "api" then self.login_failed = err end
    return nil, err
  end
  return store(self, v)
end

--- Exchanges the refresh token for a new pair (`refresh_token`).
-- @treturn string|nil the access token, or nil, err
function Provider:refresh_now()
  self.refreshes = self.refreshes + 1
  local v, err = token_call(self, "refresh_token", { refresh_token = self.refresh })
  if not v then return nil, err end
  return store(self, v)
end

-- refresh when the refresh token is alive, else (or when refreshing fails) log in again
local function renew(self)
  if self.refresh and self.client.now() < self.refresh_renew_at then
    local t, err = self:refresh_now()
    if t then return t end
    self.client:log("info", "yeastar refresh_token failed (" .. errors.brief(err) .. "), logging in again")
  end
  return self:login()
end

-- With a token cache: under the file's lock, take the cached pair when its access token is
-- alive (and is not the one the PBX just called expired), else refresh or log in and store
-- the new pair. Several processes sharing the file wait for each other: one login in all.
local function from_cache(self)
  local t, err = self.cache:update(self.cache_key, function(e)
    local now = self.client.now()
    if type(e) == "table" and type(e.access_token) == "string" and e.access_token ~= self.dead
       and now < (tonumber(e.access_renew_at) or 0) then
      return nil, adopt(self, e)
    end
    if type(e) == "table" and type(e.refresh_token) == "string" and now < (tonumber(e.refresh_renew_at) or 0) then
      self.refresh, self.refresh_renew_at = e.refresh_token, e.refresh_renew_at
    end
    local tok, ferr = renew(self)
    if not tok then return nil, nil, ferr end
    return { access_token = self.access, access_renew_at = self.access_renew_at, refresh_token = self.refresh,
             refresh_renew_at = self.refresh_renew_at }, tok
  end)
  if not t then return nil, err end
  self.cached = true
  return t
end

--- The access token: cached, refreshed before expiry, obtained by login the first time.
-- @treturn string|nil the token, or nil, err
function Provider:access_token()
  if self.access and self.client.now() < self.access_renew_at then return self.access end
  return single_flight.run(self, function()
    if self.cache then return from_cache(self) end
    if not self.access then return self:login() end
    return renew(self)
  end)
end

--- Adds `access_token=` to the request's query string (pipeline hook).
-- @tparam table req
-- @treturn boolean|nil true, or nil, err
function Provider:apply(req)
  local t, err = self:access_token()
  if not t then return nil, err end
  req.url = util.add_query(req.url, "access_token=" .. util.urlencode(t))
  return true
end

--- Renews after a 10004 (token expired): refresh, or log in again. Tasks sharing the client
-- renew once between them: a task whose token was already replaced by another's renewal uses
-- the new one (a PBX allows 8 live tokens per application).
-- @param _ the error (unused)
-- @param _ the client (unused)
-- @tparam[opt] table req the refused request (its `access_token=` is the token refused)
-- @treturn boolean|nil true, or nil, err
function Provider:renew(_, _, req)
  local sent = req and type(req.url) == "string" and req.url:match("[?&]access_token=([^&#]*)")
  local t, err = single_flight.run(self, function()
    local current = self.access
    if current ~= nil and sent and util.urlencode(current) ~= sent then return current end
    self.dead, self.access = current, nil
    if self.cache then return from_cache(self) end
    return renew(self)
  end)
  if not t then return nil, err end
  return true
end

--- Revokes the access token now (`del_token`), unless it belongs to the token cache.
-- Idempotent; a failure is logged and returned, the token is forgotten either way.
-- @treturn boolean|nil true, or nil, err
function Provider:release()
  local t = self.access
  if not t or self.cached then return true end
  self.access, self.access_renew_at = nil, nil
  local c = self.client
  local _, err = c:call{
    operation = "del_token", method = "GET",
    url = c:url("/openapi/v1.0/del_token", { access_token = t }), decode = envelope.yeastar,
  }
  c:forget(t)
  if err and err.code ~= "10004" then -- 10004: it had expired already
    c:log("warn", "yeastar: could not revoke the access token: " .. errors.brief(err))
    return nil, err
  end
  return true
end

--- What a finalizer may revoke: the live token that is not in a cache, or nil.
-- @treturn string|nil
function Provider:revocable()
  if self.cached then return nil end
  return self.access
end

return M
