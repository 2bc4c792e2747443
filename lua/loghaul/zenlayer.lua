--- Zenlayer ZLS: DescribeLogs (audit logs), and an iterator over a whole time range that
-- follows the cursor and splits ranges into the API's legal windows.
-- @module loghaul.zenlayer
local client_mod = require "loghaul.client"
local envelope = require "loghaul.envelope"
local errors = require "loghaul.errors"
local json = require "loghaul.json"
local progress = require "loghaul.progress"
local util = require "loghaul.util"

local M = {}

local Zl = {}
Zl.__index = Zl

M.default_endpoint = "https://console.zenlayer.com"
M.path = "/api/v2/zls"
M.version = "2023-08-04"
--- The API's rules (seconds): a window shorter than 30 days, a start at most 90 days ago.
M.max_window = 30 * 86400
M.max_age = 90 * 86400
M.max_size = 1000

local ILLEGAL = "INVALID_PARAMETER__ILLEGAL_TIME"
local FORMAT = "INVALID_TIME_FORMAT"

local new_options = client_mod.options{ "access_key_id", "access_key_password" }

--- Creates a Zenlayer client.
-- @tparam table opts `access_key_id`, `access_key_password`, optional `endpoint`
--   (default https://console.zenlayer.com), and the common client options
-- @treturn table the client
function M.new(opts)
  client_mod.check_new(opts, new_options, "loghaul.zenlayer")
  for _, n in ipairs{ "access_key_id", "access_key_password" } do
    if type(opts[n]) ~= "string" or opts[n] == "" then
      util.raise("loghaul.zenlayer: " .. n .. (opts[n] == nil and " is missing" or " must be a non-empty string"))
    end
  end
  local c = client_mod.new(opts, { vendor = "zenlayer", default_endpoint = M.default_endpoint, adds = M.path })
  c:secret(opts.access_key_password)
  local id, pw = opts.access_key_id, opts.access_key_password
  local self = setmetatable({ client = c }, Zl)
  self.auth = { apply = function(_, req, cl)
    local r = cl.core.sign_zc2{
      access_key_id = id, access_key_password = pw, timestamp = tostring(math.floor(cl.now())),
      host = util.host_header(req.url), content_type = req.headers["Content-Type"], body = req.body,
    }
    for k, v in pairs(r.headers) do req.headers[k] = v end
    return true
  end }
  return self
end

-- a cursor given as a Lua list (not the raw text of a page): integers written without exponent
local function encode_cursor_list(t)
  local parts = {}
  for i, v in ipairs(t) do
    if type(v) == "string" then
      parts[i] = json.encode(v)
    elseif type(v) == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
      parts[i] = string.format("%.0f", v)
    else
      return nil
    end
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

--- Checks a time range against the API's rules, before sending.
-- @tparam string start_s
-- @tparam string end_s
-- @tparam number now Unix seconds
-- @tparam[opt] boolean any_length skip the 30-day window rule (each_log splits long ranges)
-- @treturn number|nil start, end (Unix seconds), or nil, err (`invalid` with the API's code)
function M.check_range(start_s, end_s, now, any_length)
  local s = util.parse_utc(start_s)
  if not s then
    return nil, errors.invalid(("start time %s is not yyyy-MM-ddTHH:mm:ssZ (UTC)"):format(tostring(start_s)), FORMAT)
  end
  local e = util.parse_utc(end_s)
  if not e then
    return nil, errors.invalid(("end time %s is not yyyy-MM-ddTHH:mm:ssZ (UTC)"):format(tostring(end_s)), FORMAT)
  end
  if s >= e then return nil, errors.invalid("start time must be earlier than end time", ILLEGAL) end
  if not any_length and e - s >= M.max_window then
    return nil, errors.invalid("the interval between start and end time must be less than 30 days", ILLEGAL)
  end
  if now - s > M.max_age then
    return nil, errors.invalid("start time cannot be more than 90 days ago (" .. start_s .. ")", ILLEGAL)
  end
  return s, e
end

local function decode_page(res, op, secrets)
  local v, err = envelope.zenlayer(res, op, secrets)
  if not v then return nil, err end
  local r = v.response
  if r == nil then r = v end
  -- every ZLS answer carries a requestId: `{}` or `[]` is not an empty page (it would end a
  -- cursor loop early and silently)
  if type(r) ~= "table" or (r.dataSet ~= nil and type(r.dataSet) ~= "table")
     or (r.requestId == nil and v.requestId == nil) then
    return nil, envelope.http_error(res, { kind = "http", code = "INVALID_RESPONSE", retryable = true,
                                           message = "DescribeLogs answer of the wrong shape" }, secrets)
  end
  local page = {}
  for k, x in pairs(r) do page[k] = x end
  page.requestId = r.requestId or v.requestId
  page.dataSet = r.dataSet or {}
  local raw = json.raw_at(res.body, v.response ~= nil and { "response", "cursor" } or { "cursor" })
  if raw == nil or raw == "null" or raw:find("^%[%s*%]$") or #page.dataSet == 0 then raw = nil end
  page.cursor = raw
  return page
end

local describe

--- The options each method takes (one place, for the options check).
M.describe_logs_options = { "startTime", "endTime", "resUid", "resEvent", "clientIP", "size", "cursor" }
M.each_log_options = { "start_time", "end_time", "res_uid", "res_event", "client_ip", "page_size", "raw",
                       "parallel" }
M.write_logs_options = { "start_time", "end_time", "res_uid", "res_event", "client_ip", "page_size", "output",
                         "state_file", "parallel" }

-- Checks a method's params at its top: called with a colon, a table, known names, and both
-- times there (a missing one is named; its format is check_range's job). Returns the
-- `invalid` error object for a missing time, tagged with vendor and operation.
local function check_params(self, params, method, names, start_name, end_name)
  util.check_self(self, Zl, ("zl:%s{ %s = ..., %s = ... }"):format(method, start_name, end_name))
  if type(params) ~= "table" then
    util.raise(("loghaul.zenlayer: %s(params): params must be a table, got %s"):format(method, type(params)))
  end
  util.check_options(params, util.set(names), "zl:" .. method)
  for _, name in ipairs{ start_name, end_name } do
    if params[name] == nil then
      local e = errors.invalid(name .. " is missing: give a UTC time yyyy-MM-ddTHH:mm:ssZ", FORMAT)
      e.vendor, e.operation = "zenlayer", "DescribeLogs"
      return e
    end
  end
end

--- DescribeLogs: one page of audit logs.
-- @tparam table params the API's fields: `startTime`, `endTime` (UTC `yyyy-MM-ddTHH:mm:ssZ`),
--   optional `resUid`, `resEvent`, `clientIP`, `size` (1..1000), `cursor` (a previous page's
--   `cursor`, passed back unchanged)
-- @treturn table|nil `{ requestId =, dataSet = { ... }, cursor = }` where `cursor` is the raw JSON
--   text of the API's cursor (nil at the end), or nil, err
function Zl:describe_logs(params)
  local missing = check_params(self, params, "describe_logs", M.describe_logs_options, "startTime", "endTime")
  if missing then return nil, missing end
  local page, err = describe(self, params, false)
  if not page and err.vendor == nil then err.vendor, err.operation = "zenlayer", "DescribeLogs" end
  return page, err
end

-- DescribeLogs itself; a refusal before sending is tagged by the caller. `range_checked`:
-- each_log checked the whole range once at its start (windows it makes are legal), so a long
-- iteration does not fail midway when its start drifts past 90 days ago
describe = function(self, params, range_checked)
  local c = self.client
  if not range_checked then
    local ok, rerr = M.check_range(params.startTime, params.endTime, c.now())
    if not ok then return nil, rerr end
  end
  local size = params.size
  if size ~= nil and (type(size) ~= "number" or size ~= math.floor(size) or size < 1 or size > M.max_size) then
    return nil, errors.invalid("size must be an integer from 1 to 1000", "INVALID_PARAMETER_VALUE")
  end
  for _, k in ipairs{ "resUid", "resEvent", "clientIP" } do
    if params[k] ~= nil and type(params[k]) ~= "string" then
      return nil, errors.invalid(k .. " must be a string", "INVALID_PARAMETER_VALUE")
    end
  end
  local cursor = params.cursor
  if type(cursor) == "table" then
    cursor = encode_cursor_list(cursor)
    if not cursor then
      return nil, errors.invalid("cursor list holds a value that cannot be sent exactly; pass page.cursor")
    end
  elseif cursor ~= nil and not (type(cursor) == "string" and json.is_single_value(cursor)) then
    return nil, errors.invalid("cursor must be a previous page's cursor (its raw JSON text)", "INVALID_PARAMETER")
  end
  local body = json.encode{
    startTime = params.startTime, endTime = params.endTime, resUid = params.resUid,
    resEvent = params.resEvent, clientIP = params.clientIP,
    size = size and math.floor(size) or nil,
  }
  if cursor then
    -- spliced as text: the digits go back exactly as the server sent them
    body = body:sub(1, -2) .. (body == "{}" and "" or ",") .. '"cursor":' .. cursor .. "}"
  end
  return c:call{
    operation = "DescribeLogs", method = "POST", url = c.base_url .. M.path, body = body,
    headers = { ["Content-Type"] = "application/json", ["X-ZC-Action"] = "DescribeLogs",
                ["X-ZC-Version"] = M.version },
    auth = self.auth, decode = decode_page,
  }
end

local function boundary_key(rec)
  local parts = {}
  for _, k in ipairs{ "opsTime", "resUid", "resType", "resEvent", "opsUser", "clientIP", "eventSource",
                      "request", "response" } do
    parts[#parts + 1] = tostring(rec[k])
  end
  return table.concat(parts, "\0")
end

--- Iterates over every audit log record of a time range, following cursors and splitting
-- a range longer than 30 days into legal windows (consecutive windows share their boundary
-- second; a record on it is yielded once). The range rules (format, order, 90 days) are
-- checked once, at the start. Raises the error object on a refused range, on a page that
-- still fails after its retries, and (`http` `CURSOR_LOOP`) when the server sends a cursor
-- it already sent in the same window (wrap in pcall).
-- @tparam table params `start_time`, `end_time` (UTC `yyyy-MM-ddTHH:mm:ssZ`), optional
--   `res_uid`, `res_event`, `client_ip`, `page_size` (default and cap 1000)
-- @treturn function an iterator yielding LogInfo records
function Zl:each_log(params)
  local missing = check_params(self, params, "each_log", M.each_log_options, "start_time", "end_time")
  if missing then error(missing, 2) end
  local c = self.client
  local s, e = M.check_range(params.start_time, params.end_time, c.now(), true)
  if not s then
    e.vendor, e.operation = "zenlayer", "DescribeLogs"
    error(e, 2)
  end
  local size = params.page_size or M.max_size
  if type(size) ~= "number" or size < 1 or size ~= size then
    local err = errors.invalid("page_size must be a positive integer", "INVALID_PARAMETER_VALUE")
    err.vendor, err.operation = "zenlayer", "DescribeLogs"
    error(err, 2)
  end
  size = math.min(math.floor(size), M.max_size)
  local ws, we = s, math.min(s + M.max_window - 1, e)
  local cursor, buf, idx, done, pages = nil, {}, 1, false, 0
  local seen_prev, seen_next = {}, {}
  local cursors = {} -- raw texts of the cursors this window already sent: a repeat is a loop
  local report = progress.reporter(c, "page")
  return function()
    while true do
      if idx <= #buf then
        idx = idx + 1
        return buf[idx - 1]
      end
      if done then return nil end
      local page, err = describe(self, {
        startTime = util.format_utc(ws), endTime = util.format_utc(we), resUid = params.res_uid,
        resEvent = params.res_event, clientIP = params.client_ip, size = size, cursor = cursor,
      }, true)
      if not page then
        if err.vendor == nil then err.vendor, err.operation = "zenlayer", "DescribeLogs" end
        error(err, 0)
      end
      pages = pages + 1
      local last_page = page.cursor == nil and we >= e
      if report then report(pages, last_page and pages or nil, last_page) end -- the last event is never dropped
      -- drop what the previous window already gave on the shared boundary second
      local first = util.format_utc(ws):sub(1, 19)
      local last = util.format_utc(we):sub(1, 19)
      buf, idx = {}, 1
      for _, rec in ipairs(page.dataSet) do
        local t = type(rec) == "table" and type(rec.opsTime) == "string" and rec.opsTime:sub(1, 19) or nil
        local key = t and (t == first or t == last) and boundary_key(rec)
        if not (key and t == first and seen_prev[key]) then
          buf[#buf + 1] = rec
          if key and t == last then seen_next[key] = true end
        end
      end
      if page.cursor == nil then
        if we >= e then
          done = true
        else
          ws, we = we, math.min(we + M.max_window - 1, e)
          cursor, seen_prev, seen_next, cursors = nil, seen_next, {}, {}
        end
      elseif cursors[page.cursor] then
        error(errors.new{ kind = "http", code = "CURSOR_LOOP", vendor = "zenlayer", operation = "DescribeLogs",
                          message = "the server sent a cursor it already sent for this window ("
                            .. page.cursor:sub(1, 64) .. "); stopping instead of looping" }, 0)
      else
        cursors[page.cursor] = true
        cursor = page.cursor
      end
    end
  end
end

--- Closes the client's connections.
function Zl:close() self.client:close() end

return M
