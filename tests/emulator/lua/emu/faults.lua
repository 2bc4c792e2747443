-- Fault switches shared by every endpoint, the vendor ones included.
-- POST /_emu/fault arms a spec (or a list of specs):
--   { path = "/prefix", method = "GET"?, count = N?,        -- count absent: until reset
--     delay = S?,                                          -- sleep first (then answer normally)
--     status = 429?, retry_after = 1?, body = "..."?, content_type =?, headers = {}?,
--     cut_after = N?,                                      -- real answer, connection cut after N body bytes
--     drop = true? }                                       -- close without any answer
-- apply() runs for every request in the rewrite phase (emu.prelude); handlers may call
-- it again first thing, it acts once per request. The first armed spec whose path is a
-- prefix of the URI and that has count left fires; an exhausted spec lets the next match.
local json = require "emu.json"

local M = {}

local function dict() return ngx.shared.emu end

local function load_list()
  local s = dict():get("faults")
  return s and json.decode(s) or {}
end

local function check(spec)
  if type(spec) ~= "table" then return nil, "a fault is a JSON object" end
  if type(spec.path) ~= "string" or spec.path:sub(1, 1) ~= "/" then
    return nil, "fault.path must be a string starting with /"
  end
  for _, k in ipairs { "count", "delay", "status", "retry_after", "cut_after" } do
    if spec[k] ~= nil and type(spec[k]) ~= "number" then return nil, "fault." .. k .. " must be a number" end
  end
  for _, k in ipairs { "body", "method", "content_type" } do
    if spec[k] ~= nil and type(spec[k]) ~= "string" then return nil, "fault." .. k .. " must be a string" end
  end
  if spec.headers ~= nil and type(spec.headers) ~= "table" then return nil, "fault.headers must be an object" end
  return true
end

--- Arm one spec or a list of specs; returns the armed specs with their ids, or nil, err.
function M.arm(specs)
  if type(specs) == "table" and specs[1] == nil then specs = { specs } end
  if type(specs) ~= "table" then return nil, "expected a fault object or a list of them" end
  for _, s in ipairs(specs) do
    local ok, err = check(s)
    if not ok then return nil, err end
  end
  local d, list = dict(), load_list()
  for _, s in ipairs(specs) do
    s.id = d:incr("fault_seq", 1, 0)
    if s.count then d:set("left:" .. s.id, s.count) end
    list[#list + 1] = s
  end
  d:set("faults", json.encode(list))
  return specs
end

--- Armed specs with `left` (remaining count, nil = unlimited) and `fired`.
function M.list()
  local d, list = dict(), load_list()
  for _, s in ipairs(list) do
    s.left = s.count and math.max(d:get("left:" .. s.id) or 0, 0) or nil
    s.fired = d:get("fired:" .. s.id) or 0
  end
  return list
end

function M.clear()
  local d = dict()
  for _, k in ipairs(d:get_keys(0)) do
    if k:match("^left:") or k:match("^fired:") then d:delete(k) end
  end
  d:delete("faults")
end

-- Take the first matching spec with count left (atomic decrement), or nil.
local function take(uri, method)
  local d = dict()
  for _, s in ipairs(load_list()) do
    if uri:sub(1, #s.path) == s.path and (not s.method or s.method:upper() == method) then
      local fire = true
      if s.count then fire = (d:incr("left:" .. s.id, -1, 0) or -1) >= 0 end
      if fire then
        d:incr("fired:" .. s.id, 1, 0)
        d:incr("faults_fired", 1, 0)
        return s
      end
    end
  end
end

local METHODS = {
  GET = ngx.HTTP_GET, HEAD = ngx.HTTP_HEAD, POST = ngx.HTTP_POST, PUT = ngx.HTTP_PUT,
  DELETE = ngx.HTTP_DELETE, OPTIONS = ngx.HTTP_OPTIONS, PATCH = ngx.HTTP_PATCH,
}

-- Produce the real answer through a subrequest (faults off), send its headers with the
-- full Content-Length and only `n` body bytes, then close the TCP connection (444).
-- The answer is held in memory: for big files use /cut/<name>?after=N instead.
local function cut(n)
  ngx.req.read_body()
  local res = ngx.location.capture(ngx.var.uri, {
    method = METHODS[ngx.req.get_method()] or ngx.HTTP_GET,
    args = ngx.var.args, always_forward_body = true, ctx = { emu_no_fault = true },
  })
  local body = res.body or ""
  ngx.status = res.status
  for k, v in pairs(res.header) do
    local lk = k:lower()
    if lk ~= "transfer-encoding" and lk ~= "connection" and lk ~= "content-length" then ngx.header[k] = v end
  end
  -- nginx applies no Range to a subrequest: honour one `bytes=N-` here (If-Range checked
  -- against the ETag or Last-Modified), so a resumed download can be cut again
  local from = res.status == 200 and tonumber((ngx.var.http_range or ""):match("^bytes=(%d+)%-$"))
  local if_range = ngx.var.http_if_range
  if from and if_range and if_range ~= res.header["ETag"] and if_range ~= res.header["Last-Modified"] then
    from = nil
  end
  if from and from < #body then
    ngx.status = 206
    ngx.header["Content-Range"] = ("bytes %d-%d/%d"):format(from, #body - 1, #body)
    body = body:sub(from + 1)
  end
  ngx.header["Content-Length"] = #body
  ngx.send_headers()
  if n > 0 then ngx.print(body:sub(1, n)) end
  ngx.flush(true)
  if n >= #body then return ngx.exit(ngx.HTTP_OK) end
  return ngx.exit(444)
end

local function fire(s)
  if s.delay and s.delay > 0 then ngx.sleep(s.delay) end
  if s.drop then return ngx.exit(444) end
  if s.cut_after then return cut(math.floor(s.cut_after)) end
  if s.status or s.body then
    ngx.req.discard_body()
    local status = s.status or 200
    local headers = {}
    for k, v in pairs(s.headers or {}) do headers[k] = v end
    if s.retry_after then headers["Retry-After"] = tostring(s.retry_after) end
    if s.content_type then headers["Content-Type"] = s.content_type end
    return json.reply(s.body or json.encode { error = "emulated fault", status = status, fault = s.id },
      status, headers)
  end
  -- delay only: carry on with the normal answer
end

--- Inject the armed fault matching this request, if any. Call first in a handler.
function M.apply()
  local ctx = ngx.ctx
  if ctx.emu_fault_done or ctx.emu_no_fault or ngx.is_subrequest then return end
  ctx.emu_fault_done = true
  local uri = ngx.var.uri
  if uri:sub(1, 6) == "/_emu/" then return end
  local s = take(uri, ngx.req.get_method())
  if s then return fire(s) end
end

return M
