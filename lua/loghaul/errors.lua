--- The error object every failing operation returns (or, for iterators, raises), its
-- constructors, the mapping of core transfer errors, and secret redaction.
--
-- An error is a table `{ kind, code, message, status, request_id, retryable, attempts,
-- vendor, operation }` with a `__tostring`; `history` lists why each attempt failed; a 404
-- also has `method` and `url_path` (the path of what was not found, never the query).
-- @module loghaul.errors
local M = {}

local Error = {}
Error.__index = Error

--- The kinds an error can have.
M.kinds = { invalid = true, auth = true, api = true, http = true, network = true,
            timeout = true, tls = true, io = true }

-- patterns whose value is a secret wherever it appears (URLs, JSON, headers)
local secret_patterns = {
  { "([?&]access_token=)[^&%s\"'#]+", "%1***" },
  { "([?&]refresh_token=)[^&%s\"'#]+", "%1***" },
  { "(\"access_token\"%s*:%s*\")[^\"]*", "%1***" },
  { "(\"refresh_token\"%s*:%s*\")[^\"]*", "%1***" },
  { "(\"password\"%s*:%s*\")[^\"]*", "%1***" },
  { "(\"secret[%w_]*\"%s*:%s*\")[^\"]*", "%1***" },
  { "(\"token\"%s*:%s*\")[^\"]*", "%1***" },
  { "([Xx]%-[Ss]ubject%-[Tt]oken:%s*)[^\r\n]+", "%1***" },
  { "([Xx]%-[Aa]uth%-[Tt]oken:%s*)[^\r\n]+", "%1***" },
  { "(Signature=)%x+", "%1***" },
}

local function escape_pattern(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

--- Removes secrets from a text: the known patterns (Yeastar `access_token=` query values,
-- JSON `password`/`token` fields, token headers) and every literal secret given.
-- @tparam string s the text
-- @tparam[opt] table secrets a list (or set keys) of literal secrets
-- @treturn string
function M.redact(s, secrets)
  if s == nil then return nil end
  s = tostring(s)
  if secrets then
    for k, v in pairs(secrets) do
      local secret = type(k) == "string" and k or v
      if type(secret) == "string" and #secret >= 4 then
        s = s:gsub(escape_pattern(secret), "***")
      end
    end
  end
  for _, p in ipairs(secret_patterns) do s = s:gsub(p[1], p[2]) end
  return s
end

--- Renders an error as one line (secrets redacted).
-- @tparam table e
-- @treturn string
function M.format(e)
  local where = "loghaul"
  if e.vendor then where = where .. " " .. e.vendor end
  if e.operation then where = where .. " " .. e.operation end
  local s = where .. ": " .. tostring(e.kind or "error")
  if e.code ~= nil then s = s .. " " .. tostring(e.code) end
  if e.status then s = s .. " (HTTP " .. tostring(e.status) .. ")" end
  if e.message and e.message ~= "" then s = s .. ": " .. tostring(e.message) end
  if e.status == 404 and e.method and e.url_path then s = s .. " (" .. e.method .. " " .. e.url_path .. ")" end
  if e.request_id then s = s .. " [request_id " .. tostring(e.request_id) .. "]" end
  if e.attempts and e.attempts > 1 then
    s = s .. " after " .. e.attempts .. " attempts"
    if type(e.history) == "table" and #e.history > 0 then
      s = s .. " (" .. table.concat(e.history, "; ") .. ")"
    end
  end
  if e.gave_up then s = s .. "; gave up: " .. tostring(e.gave_up) end
  return M.redact(s)
end

Error.__tostring = M.format

--- Makes an error object. The message is redacted.
-- @tparam table t fields: `kind` (required), `code`, `message`, `status`, `request_id`,
--   `retryable`, `attempts`, `vendor`, `operation`
-- @treturn table the error
function M.new(t)
  assert(type(t) == "table" and M.kinds[t.kind], "loghaul.errors.new: unknown kind")
  t.message = M.redact(t.message or "")
  t.retryable = t.retryable and true or false
  return setmetatable(t, Error)
end

--- Whether a value is a loghaul error object.
-- @param v
-- @treturn boolean
function M.is(v)
  return getmetatable(v) == Error
end

--- An `invalid` error: refused before anything was sent.
-- @tparam string message
-- @tparam[opt] string code the vendor's code for the rule
-- @treturn table
function M.invalid(message, code)
  return M.new{ kind = "invalid", code = code, message = message, attempts = 0 }
end

--- An `io` error about a local file; the message names the path.
-- @tparam string path
-- @tparam string message
-- @treturn table
function M.io(path, message)
  return M.new{ kind = "io", message = tostring(path) .. ": " .. tostring(message), path = path }
end

-- curl codes that prove the request never left this host
local never_reached = {
  CURLE_COULDNT_CONNECT = true, CURLE_COULDNT_RESOLVE_HOST = true,
  CURLE_COULDNT_RESOLVE_PROXY = true, CURLE_UNSUPPORTED_PROTOCOL = true,
  CURLE_URL_MALFORMAT = true,
}
M.never_reached_codes = never_reached

local partial_headers = { "etag", "last-modified", "content-range", "content-length", "content-type",
                          "content-disposition", "retry-after" }

local core_kinds = { network = "network", timeout = "timeout", tls = "tls", io = "io",
                     invalid = "invalid", http = "http", aborted = "io" }

--- Maps a failed core request (`{ kind, code, message }`) to an error object.
-- `reached` is false when the request provably never reached the server: the core says
-- `request_sent = false`, or (when it does not say) the curl code proves it; it is true
-- whenever `request_sent` is true;
-- `path` is kept for `io` errors; when an answer had started before the failure (a cut
-- download), `partial` holds its `{ status, headers, bytes }` (ETag, Content-Range, how much
-- reached the output) for a resume.
-- @tparam table cerr the core's error
-- @tparam[opt] table secrets literal secrets to redact from the message
-- @treturn table
function M.from_core(cerr, secrets)
  cerr = type(cerr) == "table" and cerr or { kind = "network", message = tostring(cerr) }
  local kind = core_kinds[cerr.kind] or "network"
  local code = cerr.code
  local retryable = kind == "network" or kind == "timeout"
    -- a connection cut before every promised byte arrived, a server that stops mid-body
    or code == "CURLE_PARTIAL_FILE" or code == "RANGE_MISMATCH"
  local e = M.new{
    kind = kind, code = code, retryable = retryable,
    message = M.redact(cerr.message or code or kind, secrets),
  }
  -- the core's request_sent (CURLINFO_REQUEST_SIZE) is the proof when it is there: false means
  -- no byte of the request left this host (a connect timeout, a failed TLS handshake)
  if cerr.request_sent == false then
    e.reached = false
  elseif cerr.request_sent == true then
    e.reached = true
  else
    e.reached = not never_reached[code or ""]
  end
  if type(cerr.path) == "string" then
    e.path = cerr.path
    if kind == "io" and not e.message:find(cerr.path, 1, true) then
      e.message = M.redact(cerr.path .. ": " .. e.message, secrets)
    end
  end
  if type(cerr.status) == "number" then
    -- only the headers a resume needs: a cut token answer must not carry X-Subject-Token along
    local h = {}
    if type(cerr.headers) == "table" then
      for _, k in ipairs(partial_headers) do h[k] = cerr.headers[k] end
    end
    e.partial = { status = cerr.status, headers = h, bytes = cerr.bytes }
  end
  return e
end

--- A short note for an error's history (`HTTP 503 APIG.0308`, `timeout CURLE_OPERATION_TIMEDOUT`).
-- @tparam table e
-- @treturn string
function M.brief(e)
  local s = e.status and ("HTTP " .. e.status) or tostring(e.kind)
  if e.code ~= nil then s = s .. " " .. tostring(e.code) end
  return s
end

return M
