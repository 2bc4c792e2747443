--- Yeastar P-Series access tokens: one `get_token`, then `refresh_token` before expiry
-- (relative expire times); on errcode 10004 refresh, or log in again when the refresh token
-- is dead, then retry once. Never a login per request. The token goes in the query string.
-- @module loghaul.auth.yeastar
local envelope = require "loghaul.envelope"
local errors = require "loghaul.errors"
local json = require "loghaul.json"
local util = require "loghaul.util"

local M = {}

local Provider = {}
Provider.__index = Provider

--- Creates the provider.
-- @tparam table client
-- @tparam string client_id
-- @tparam string client_secret
-- @treturn table the provider (`apply`, `renew`, `access_token`)
function M.new(client, client_id, client_secret)
  client:secret(client_secret)
  return setmetatable({ client = client, id = client_id, secret = client_secret, logins = 0, refreshes = 0 },
                      Provider)
end

local function margin(ttl) return math.min(60, ttl / 10) end

local function store(self, v)
  local c = self.client
  if type(v.access_token) ~= "string" or v.access_token == "" then
    return nil, errors.new{ kind = "http", code = "INVALID_RESPONSE", message = "token answer without access_token",
                            vendor = c.vendor }
  end
  local now = c.now()
  local at = tonumber(v.access_token_expire_time) or 1800
  local rt = tonumber(v.refresh_token_expire_time) or 86400
  c:forget(self.access)
  c:forget(self.refresh)
  c:secret(v.access_token)
  c:secret(v.refresh_token)
  self.access, self.access_renew_at = v.access_token, now + at - margin(at)
  self.refresh = type(v.refresh_token) == "string" and v.refresh_token ~= "" and v.refresh_token or nil
  self.refresh_renew_at = now + rt - margin(rt)
  return self.access
end

local function token_call(self, operation, body)
  local c = self.client
  return c:call{
    operation = operation, method = "POST", url = c:url("/openapi/v1.0/" .. operation),
    headers = { ["Content-Type"] = "application/json" }, body = json.encode(body), decode = envelope.yeastar,
  }
end

--- Logs in (`get_token`).
-- @treturn string|nil the access token, or nil, err
function Provider:login()
  self.logins = self.logins + 1
  local v, err = token_call(self, "get_token", { username = self.id, password = self.secret })
  if not v then return nil, err end
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

--- The access token: cached, refreshed before expiry, obtained by login the first time.
-- @treturn string|nil the token, or nil, err
function Provider:access_token()
  if self.access and self.client.now() < self.access_renew_at then return self.access end
  if not self.access then return self:login() end
  return renew(self)
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

--- Renews after a 10004 (token expired): refresh, or log in again.
-- @treturn boolean|nil true, or nil, err
function Provider:renew()
  self.access = nil
  local t, err = renew(self)
  if not t then return nil, err end
  return true
end

return M
