--- The vendors' answers turned into a result or an error object, one decoder per envelope:
-- Huawei `{error_code, error_msg}`, Yeastar HTTP 200 with a non-zero `errcode`,
-- Zenlayer `{requestId, code, message}`.
-- @module loghaul.envelope
local errors = require "loghaul.errors"
local json = require "loghaul.json"
local retry = require "loghaul.retry"
local util = require "loghaul.util"

local M = {}

local function is_2xx(status) return status >= 200 and status < 300 end

--- Whether an HTTP status is transient (429 or 5xx).
-- @tparam number status
-- @treturn boolean
function M.transient_status(status)
  return status == 429 or (status >= 500 and status <= 599)
end

local function kind_for_status(status, default)
  if status == 401 or status == 403 then return "auth" end
  return default
end

-- a snippet of a non-JSON body for the message (HTML pages, proxies)
local function snippet(body)
  if not body or body == "" then return "empty body" end
  local s = body:sub(1, 120):gsub("[%c]", " ")
  return "body: " .. s .. (#body > 120 and "…" or "")
end

--- Builds the error for an answer: status class, Retry-After, whether the request reached.
-- @tparam table res the core response
-- @tparam table t error fields
-- @tparam[opt] table secrets literal secrets to redact
-- @treturn table the error
function M.http_error(res, t, secrets)
  t.status = t.status or res.status
  if t.retryable == nil then t.retryable = M.transient_status(res.status) end
  t.message = errors.redact(t.message, secrets)
  local e = errors.new(t)
  e.retry_after = retry.parse_retry_after(res.headers and res.headers["retry-after"])
  -- a 429 or 503 means the server refused the request before acting on it
  e.reached = not (res.status == 429 or res.status == 503)
  return e
end

local function decode_2xx(res, op, secrets)
  local body = res.body
  if body == nil or body:find("^%s*$") then
    if op.allow_empty then return {} end
    return nil, M.http_error(res, { kind = "http", code = "INVALID_RESPONSE", retryable = true,
                                    message = "expected a JSON body, got an empty one" }, secrets)
  end
  local v, err = json.decode(body)
  if type(v) ~= "table" then
    return nil, M.http_error(res, { kind = "http", code = "INVALID_RESPONSE", retryable = true,
      message = "expected a JSON object (" .. tostring(err or "got " .. type(v)) .. "); " .. snippet(body) },
      secrets)
  end
  return v
end

local huawei_transient = { ["APIG.0308"] = true }

--- Huawei (CC-CMS, CloudDC, IAM): 2xx with a JSON body (empty allowed with `op.allow_empty`);
-- errors as `{error_code, error_msg}` (API gateway, CloudDC, IAM) or `{status, message}` (CC-CMS).
-- @tparam table res the core response
-- @tparam table op the operation (`allow_empty`)
-- @tparam[opt] table secrets
-- @return the decoded body, or nil, err
function M.huawei(res, op, secrets)
  if is_2xx(res.status) then return decode_2xx(res, op, secrets) end
  local v = json.decode(res.body or "")
  if type(v) == "table" and (v.error_code or v.error_msg) then
    local code = util.code(v.error_code)
    return nil, M.http_error(res, {
      kind = kind_for_status(res.status, "api"), code = code,
      message = tostring(v.error_msg or ""),
      retryable = M.transient_status(res.status) or huawei_transient[code] or nil,
      request_id = res.headers and (res.headers["x-request-id"] or res.headers["x-openstack-request-id"]),
    }, secrets)
  end
  if type(v) == "table" and v.status ~= nil and v.message ~= nil then -- CC-CMS: {status, message}
    return nil, M.http_error(res, { kind = kind_for_status(res.status, "api"), code = util.code(v.status),
                                    message = tostring(v.message) }, secrets)
  end
  return nil, M.http_error(res, { kind = kind_for_status(res.status, "http"),
                                  message = "unexpected HTTP status; " .. snippet(res.body) }, secrets)
end

-- Yeastar codes and what they mean for the client
local yeastar_auth = { ["10004"] = true, ["10005"] = true }
local yeastar_transient = { ["70082"] = true }

--- Yeastar: HTTP 200 with `errcode` 0, or an error with the errcode as `code`
-- (`10004`/`10005` are `auth`, `70082` overload is retryable).
-- @tparam table res
-- @tparam table op
-- @tparam[opt] table secrets
-- @return the decoded body, or nil, err
function M.yeastar(res, op, secrets)
  if not is_2xx(res.status) then
    local v = json.decode(res.body or "")
    if type(v) == "table" and v.errcode ~= nil then
      local code = util.code(v.errcode)
      return nil, M.http_error(res, { kind = kind_for_status(res.status, yeastar_auth[code] and "auth" or "api"),
                                      code = code, message = tostring(v.errmsg or "") }, secrets)
    end
    return nil, M.http_error(res, { kind = kind_for_status(res.status, "http"),
                                    message = "unexpected HTTP status; " .. snippet(res.body) }, secrets)
  end
  local v, err = decode_2xx(res, op, secrets)
  if not v then return nil, err end
  local code = v.errcode
  if code == nil then
    return nil, M.http_error(res, { kind = "http", code = "INVALID_RESPONSE", retryable = true,
                                    message = "answer without errcode" }, secrets)
  end
  code = util.code(code)
  if code == "0" then return v end
  return nil, M.http_error(res, {
    kind = yeastar_auth[code] and "auth" or "api", code = code,
    message = tostring(v.errmsg or ""), retryable = yeastar_transient[code] or false,
  }, secrets)
end

local zenlayer_transient = { REQUEST_LIMIT_EXCEEDED = true, SERVICE_TEMPORARY_UNAVAILABLE = true }
local zenlayer_auth = { AUTH_FAILURE = true, SIGNATURE_FAILURE = true, INVALID_ACCESS_KEY = true,
                        SIGNATURE_EXPIRE = true, UNAUTHORIZED_OPERATION = true }

--- Zenlayer: 200 `{requestId, response = {...}}`; errors `{requestId, code, message}`
-- (also accepted on a 200 when there is no `response`).
-- @tparam table res
-- @tparam table op
-- @tparam[opt] table secrets
-- @return the decoded body, or nil, err
function M.zenlayer(res, op, secrets)
  local v = json.decode(res.body or "")
  if type(v) == "table" and v.code ~= nil and (not is_2xx(res.status) or v.response == nil) then
    local code = util.code(v.code)
    local kind = kind_for_status(res.status, zenlayer_auth[code] and "auth" or "api")
    return nil, M.http_error(res, {
      kind = kind, code = code, message = tostring(v.message or ""), request_id = v.requestId,
      retryable = M.transient_status(res.status) or zenlayer_transient[code] or false,
    }, secrets)
  end
  if not is_2xx(res.status) then
    return nil, M.http_error(res, { kind = kind_for_status(res.status, "http"),
                                    message = "unexpected HTTP status; " .. snippet(res.body) }, secrets)
  end
  return decode_2xx(res, op, secrets)
end

return M
