--- Zenlayer ZLS: DescribeLogs (audit logs), and an iterator over a whole time range that
-- follows the cursor and splits ranges into the API's legal windows.
-- @module loghaul.zenlayer
local client_mod = require "loghaul.client"
local envelope = require "loghaul.envelope"
local errors = require "loghaul.errors"
local json = require "loghaul.json"
local progress = require "loghaul.progress"
local scheduler = require "loghaul.scheduler"
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

-- JSON paths of a DescribeLogs answer, read in one pass of the core's scanner
local P_RESP, P_RID, P_RRID, P_RCUR, P_RDS = { "response", type = true }, { "requestId" },
  { "response", "requestId" }, { "response", "cursor" }, { "response", "dataSet", type = true }
local P_CODE, P_CUR, P_DS = { "code" }, { "cursor" }, { "dataSet", type = true }
-- the records' paths for core.json_array and writer:write_page
local DS_RESP, DS_TOP = { "response", "dataSet" }, { "dataSet" }
-- private fields of a page for the cursor loops: its text and the path of its records
local BODY, PATH = {}, {}

local function bad_page(res, secrets, why)
  return nil, envelope.http_error(res, { kind = "http", code = "INVALID_RESPONSE", retryable = true,
                                         message = "DescribeLogs answer of the wrong shape: " .. why }, secrets)
end

local function present(raw) return raw ~= false and raw ~= "null" end

-- A DescribeLogs answer as a page. The core validates the whole text and finds the fields in
-- one pass (no byte of it is scanned in Lua); `tables` also decodes the records with cjson.
-- The cursor is kept as the raw text the server sent (19-digit integers, exactly).
local function decode_page(res, op, secrets, tables)
  local body = res.body
  if res.status < 200 or res.status > 299 or type(body) ~= "string" then
    return envelope.zenlayer(res, op, secrets)
  end
  local resp, rid, rrid, rcur, rds, code, cur, ds = json.at(body, P_RESP, P_RID, P_RRID, P_RCUR, P_RDS,
                                                           P_CODE, P_CUR, P_DS)
  if resp == nil then
    if body:find("^%s*$") then return envelope.zenlayer(res, op, secrets) end -- "empty body"
    return nil, envelope.http_error(res, { kind = "http", code = "INVALID_RESPONSE", retryable = true,
                                           message = "DescribeLogs answer is not JSON (" .. rid .. ")" }, secrets)
  end
  if body:match("^%s*(.)") ~= "{" then return bad_page(res, secrets, "not a JSON object") end
  -- resp and the dataSets are JSON type names (no copy of a large value)
  local top = resp == false or resp == "null" -- `{requestId, dataSet, cursor}` without `response`
  if top and present(code) then return envelope.zenlayer(res, op, secrets) end -- an error on a 200
  if not top and resp ~= "object" then return bad_page(res, secrets, "response is not an object") end
  local dsr = top and ds or rds
  if dsr ~= false and dsr ~= "null" and dsr ~= "array" then
    return bad_page(res, secrets, "dataSet is not an array")
  end
  -- every ZLS answer carries a requestId: `{}` is not an empty page (it would end a cursor
  -- loop early and silently)
  local id = (not top and present(rrid)) and rrid or rid
  if not present(id) then return bad_page(res, secrets, "no requestId") end
  local c = top and cur or rcur
  if not present(c) or c:find("^%[%s*%]$") then c = nil end
  local page = {}
  if tables then
    local v = json.decode_checked(body)
    local r = v.response
    if r == nil then r = v end
    for k, x in pairs(r) do page[k] = x end
    page.dataSet = r.dataSet or {}
  end
  page.requestId = json.decode_checked(id)
  page.cursor = c
  page[BODY], page[PATH] = body, top and DS_TOP or DS_RESP
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
  local page, err = describe(self, params, false, true)
  if not page then
    if err.vendor == nil then err.vendor, err.operation = "zenlayer", "DescribeLogs" end
    return nil, err
  end
  if #page.dataSet == 0 then page.cursor = nil end
  page[BODY], page[PATH] = nil, nil
  return page
end

-- DescribeLogs itself; a refusal before sending is tagged by the caller. `range_checked`:
-- each_log checked the whole range once at its start (windows it makes are legal), so a long
-- iteration does not fail midway when its start drifts past 90 days ago
describe = function(self, params, range_checked, tables)
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
    auth = self.auth, decode = function(res, op, secrets) return decode_page(res, op, secrets, tables) end,
  }
end

local function tag(err)
  if err.vendor == nil then err.vendor, err.operation = "zenlayer", "DescribeLogs" end
  return err
end

-- The cursor loop behind each_log and write_logs: the current window [ws, we] (consecutive
-- windows share their boundary second), the cursor within it (raw text), the boundary
-- multisets (raw record text -> count: `prev`, what the previous window yielded on the shared
-- second; `next`, what this one yields on its last second) and the cursors this window sent.
local Loop = {}
Loop.__index = Loop

local function new_loop(self, params)
  local c = self.client
  local s, e = M.check_range(params.start_time, params.end_time, c.now(), true)
  if not s then return nil, tag(e) end
  local size = params.page_size or M.max_size
  if type(size) ~= "number" or size < 1 or size ~= size then
    return nil, tag(errors.invalid("page_size must be a positive integer", "INVALID_PARAMETER_VALUE"))
  end
  return setmetatable({
    zl = self, params = params, size = math.min(math.floor(size), M.max_size), e = e,
    ws = s, we = math.min(s + M.max_window - 1, e), pages = 0, prev = {}, next = {}, cursors = {},
    report = progress.reporter(c, "page"),
  }, Loop)
end

-- The next page: the page, false at the end, or nil, err.
function Loop:fetch(tables)
  if self.done then return false end
  local p = self.params
  local page, err = describe(self.zl, {
    startTime = util.format_utc(self.ws), endTime = util.format_utc(self.we), resUid = p.res_uid,
    resEvent = p.res_event, clientIP = p.client_ip, size = self.size, cursor = self.cursor,
  }, true, tables)
  if not page then return nil, tag(err) end
  self.pages = self.pages + 1
  if self.report then self.report(self.pages, nil) end
  return page
end

-- The core's boundary filter for this window (core.json_array, writer:write_page): a record
-- on the shared second is skipped as many times as the previous window yielded it.
function Loop:filter(indices)
  return { key = "opsTime", first = util.format_utc(self.ws):sub(1, 19), last = util.format_utc(self.we):sub(1, 19),
           skip = self.prev, seen = self.next, indices = indices }
end

-- After a page of `total` records: its cursor, or the next window, or the end; nil, err when
-- the server repeats a cursor of this window.
function Loop:advance(page, total)
  local cursor = total > 0 and page.cursor or nil
  if cursor == nil then
    if self.we >= self.e then
      self.done = true
      if self.report then self.report(self.pages, self.pages, true) end -- the last event is never dropped
    else
      self.ws, self.we = self.we, math.min(self.we + M.max_window - 1, self.e)
      self.cursor, self.prev, self.next, self.cursors = nil, self.next, {}, {}
    end
  elseif self.cursors[cursor] then
    return nil, errors.new{ kind = "http", code = "CURSOR_LOOP", vendor = "zenlayer", operation = "DescribeLogs",
                            message = "the server sent a cursor it already sent for this window ("
                              .. cursor:sub(1, 64) .. "); stopping instead of looping" }
  else
    self.cursors[cursor] = true
    self.cursor = cursor
  end
  return true
end

-- What a later run needs to go on exactly where this one is (write_logs' state_file).
function Loop:state()
  local cursors = {}
  for k in pairs(self.cursors) do cursors[#cursors + 1] = k end
  return { ws = self.ws, we = self.we, cursor = self.cursor, pages = self.pages, done = self.done,
           prev = self.prev, next = self.next, cursors = cursors }
end

function Loop:restore(st)
  self.ws, self.we, self.cursor, self.pages, self.done = st.ws, st.we, st.cursor, st.pages, st.done
  self.prev, self.next, self.cursors = st.prev or {}, st.next or {}, {}
  for _, k in ipairs(st.cursors or {}) do self.cursors[k] = true end
end

-- the records of a decoded page minus the boundary ones the core says to skip
local function kept_records(page, total, skipped)
  local ds = page.dataSet
  if #skipped == 0 and #ds == total then return ds end
  local skip, out = {}, {}
  for _, i in ipairs(skipped) do skip[i] = true end
  for i = 1, total do
    if not skip[i] and ds[i] ~= nil then out[#out + 1] = ds[i] end
  end
  return out
end

-- ---- parallel = N: the range paged by N tasks, pages handed out in the sequential order ----

--- How many pages one piece may fetch ahead of the consumer.
M.pages_ahead = 2

-- The sequential loop's windows ([ws, we], consecutive ones sharing their boundary second),
-- each cut into disjoint pieces of at least two seconds, newest first inside a window (the
-- order the API pages in), windows oldest first: the order the sequential loop yields.
local function plan_pieces(s, e, n)
  local windows, ws, we = {}, s, math.min(s + M.max_window - 1, e)
  while true do
    windows[#windows + 1] = { ws, we }
    if we >= e then break end
    ws, we = we, math.min(we + M.max_window - 1, e)
  end
  local len = math.max(2, math.ceil((e - s + 1) / (2 * n)))
  local pieces = {}
  for k, w in ipairs(windows) do
    local hi = w[2]
    while hi >= w[1] do
      local lo = math.max(w[1], hi - len + 1)
      if lo - w[1] < 2 then lo = w[1] end -- never leave a one-second rest (start must be before end)
      -- the window's newest piece records what it yields on the window's last second; its
      -- oldest skips what the previous window yielded on the shared first second
      pieces[#pieces + 1] = { lo = lo, hi = hi, window = k, newest = hi == w[2], oldest = lo == w[1] and k > 1,
                              ws = w[1], we = w[2], pages = {}, cursors = {} }
      hi = lo - 1
    end
  end
  return pieces
end

-- The piece's cursor loop, as a task of the scheduler: it fetches pages into piece.pages,
-- parking while it is M.pages_ahead ahead of the consumer.
local function piece_task(self, params, size, tables, piece)
  return function()
    local cursor
    while true do
      while #piece.pages >= M.pages_ahead do scheduler.park() end
      local page, err = describe(self, {
        startTime = util.format_utc(piece.lo), endTime = util.format_utc(piece.hi), resUid = params.res_uid,
        resEvent = params.res_event, clientIP = params.client_ip, size = size, cursor = cursor,
      }, true, tables)
      if not page then piece.err = tag(err) return end
      local _, total = json.array(page[BODY], page[PATH], { key = "opsTime", indices = true })
      piece.pages[#piece.pages + 1] = { page = page, total = total or 0 }
      cursor = (total or 0) > 0 and page.cursor or nil
      if cursor == nil then return end
      if piece.cursors[cursor] then
        piece.err = errors.new{ kind = "http", code = "CURSOR_LOOP", vendor = "zenlayer", operation = "DescribeLogs",
          message = "the server sent a cursor it already sent for this window (" .. cursor:sub(1, 64)
            .. "); stopping instead of looping" }
        return
      end
      piece.cursors[cursor] = true
    end
  end
end

-- An iterator over the pages of the range in the sequential order, fetched by `n` tasks at
-- once; each call returns `page, filter` (the boundary filter for core.json_array /
-- writer:write_page), nil at the end, and raises the error object of a failed page.
local function ordered_pages(self, params, n, tables)
  local c = self.client
  local s, e = M.check_range(params.start_time, params.end_time, c.now(), true)
  if not s then return nil, tag(e) end
  local size = params.page_size or M.max_size
  if type(size) ~= "number" or size < 1 or size ~= size then
    return nil, tag(errors.invalid("page_size must be a positive integer", "INVALID_PARAMETER_VALUE"))
  end
  size = math.min(math.floor(size), M.max_size)
  local pieces = plan_pieces(s, e, n)
  local sched = scheduler.new(c.core)
  local report, pages = progress.reporter(c, "page"), 0
  local next_piece, running, cur, finished = 1, 0, 1, false
  local seen = {} -- window -> what its newest piece yielded on the window's last second
  local function fill()
    while running < n and next_piece <= #pieces do
      local piece = pieces[next_piece]
      next_piece, running = next_piece + 1, running + 1
      sched:spawn(piece_task(self, params, size, tables, piece), function(ok, err)
        running = running - 1
        piece.ended = true
        if not ok then piece.err = err end -- a programming error inside the task
      end)
    end
  end
  fill()
  return function()
    while true do
      local piece = pieces[cur]
      if not piece then
        sched:close()
        if report and not finished then report(pages, pages, true) end -- the last event is never dropped
        finished = true
        return nil
      end
      if #piece.pages == 0 and not piece.ended then
        sched:run(fill, function() return #piece.pages > 0 or piece.ended end)
      end
      if #piece.pages > 0 then
        local item = table.remove(piece.pages, 1)
        for co, t in pairs(sched.parked) do if t then sched:wake(co) end end
        pages = pages + 1
        if report then report(pages, nil) end
        seen[piece.window] = seen[piece.window] or {}
        return item.page, {
          key = "opsTime", indices = tables,
          first = piece.oldest and util.format_utc(piece.ws):sub(1, 19) or nil,
          skip = piece.oldest and (seen[piece.window - 1] or {}) or nil,
          last = piece.newest and util.format_utc(piece.we):sub(1, 19) or nil,
          seen = piece.newest and seen[piece.window] or nil,
        }
      end
      if piece.err then sched:close() error(piece.err, 0) end
      cur = cur + 1
    end
  end
end


--- Iterates over every audit log record of a time range, following cursors and splitting
-- a range longer than 30 days into legal windows. Consecutive windows share their boundary
-- second: the records on it that the previous window yielded are skipped as many times as
-- it yielded them (two identical records stay two). The range rules (format, order, 90 days)
-- are checked once, at the start. Each page is validated whole by the core before any of its
-- records is yielded. Raises the error object on a refused range, on a page that still fails
-- after its retries (malformed, cut, of the wrong shape: `http` `INVALID_RESPONSE`), and
-- (`http` `CURSOR_LOOP`) when the server sends a cursor it already sent in the same window
-- (wrap in pcall).
-- @tparam table params `start_time`, `end_time` (UTC `yyyy-MM-ddTHH:mm:ssZ`), optional
--   `res_uid`, `res_event`, `client_ip`, `page_size` (default and cap 1000), `raw` (true:
--   yield each record as its JSON text, byte for byte as the server sent it; no table is built),
--   `parallel` (N > 1: the range is cut into sub-windows paged by N tasks at once on the
--   scheduler of `loghaul.run_all`; records come out in exactly the sequential order)
-- @treturn function an iterator yielding LogInfo records (tables, or strings with `raw`)
function Zl:each_log(params)
  local missing = check_params(self, params, "each_log", M.each_log_options, "start_time", "end_time")
  if missing then error(missing, 2) end
  local raw = params.raw
  if raw ~= nil and type(raw) ~= "boolean" then error("loghaul.zenlayer: each_log: raw must be a boolean", 2) end
  local parallel = params.parallel
  if parallel ~= nil and (type(parallel) ~= "number" or parallel < 1 or parallel ~= math.floor(parallel)) then
    error("loghaul.zenlayer: each_log: parallel must be a whole number >= 1", 2)
  end
  if parallel and parallel > 1 then
    local next_page, perr = ordered_pages(self, params, parallel, not raw)
    if not next_page then error(perr, 2) end
    local buf, idx, n = {}, 1, 0
    return function()
      while idx > n do
        local page, filter = next_page()
        if not page then return nil end
        local list, total = json.array(page[BODY], page[PATH], filter)
        if list == nil then error(tag(errors.new{ kind = "http", code = "INVALID_RESPONSE", message = total }), 0) end
        if list == false then list, total = {}, 0 end
        buf = raw and list or kept_records(page, total, list)
        idx, n = 1, #buf
      end
      idx = idx + 1
      return buf[idx - 1]
    end
  end
  local loop, err = new_loop(self, params)
  if not loop then error(err, 2) end
  local buf, idx, n = {}, 1, 0
  return function()
    while true do
      if idx <= n then
        idx = idx + 1
        return buf[idx - 1]
      end
      local page, perr = loop:fetch(not raw)
      if page == false then return nil end
      if not page then error(perr, 0) end
      local list, total = json.array(page[BODY], page[PATH], loop:filter(not raw))
      if list == nil then error(tag(errors.new{ kind = "http", code = "INVALID_RESPONSE", message = total }), 0) end
      if list == false then list, total = {}, 0 end
      buf = raw and list or kept_records(page, total, list)
      idx, n = 1, #buf
      local ok, aerr = loop:advance(page, total)
      if not ok then error(aerr, 0) end
    end
  end
end

-- write_logs{ parallel = N }: the pages of ordered_pages written in their sequential order
local function write_parallel(self, params, n)
  local next_page, err = ordered_pages(self, params, n, false)
  if not next_page then return nil, err end
  local w, werr0 = self.client.core.jsonl_writer(params.output)
  if not w then return nil, tag(errors.from_core(werr0)) end
  local records, pages = 0, 0
  while true do
    local ok, page, filter = pcall(next_page)
    if not ok then w:abort() return nil, page end
    if not page then break end
    local k, werr = w:write_page(page[BODY], page[PATH], filter)
    if not k then
      w:abort()
      return nil, tag(type(werr) == "table" and errors.from_core(werr)
                      or errors.new{ kind = "http", code = "INVALID_RESPONSE", message = tostring(werr) })
    end
    records, pages = records + k, pages + 1
  end
  local bytes = w:size()
  local path, cerr = w:commit()
  if not path then w:abort() return nil, tag(errors.from_core(cerr)) end
  return { path = path, records = records, pages = pages, bytes = bytes }
end

-- the identity of a write_logs run, so that a state file is only taken up by the same run
local function run_key(p)
  local parts = {}
  for _, k in ipairs{ "start_time", "end_time", "res_uid", "res_event", "client_ip", "page_size", "output" } do
    parts[#parts + 1] = tostring(p[k])
  end
  return table.concat(parts, "\n")
end

-- a state file: nil (none), the state, or nil, err (unreadable, or another run's)
local function load_state(core, path, key)
  local text, err = core.read_file(path, 64 * 1024 * 1024)
  if not text then
    if err and err.code == "ENOENT" then return nil end
    return nil, errors.from_core(err)
  end
  local st = json.decode(text)
  if type(st) ~= "table" or st.version ~= 1 or type(st.bytes) ~= "number" then
    return nil, errors.invalid("state file " .. path .. " is not a write_logs state; remove it to start over",
                               "BAD_STATE_FILE")
  end
  if st.key ~= key then
    return nil, errors.invalid("state file " .. path .. " belongs to a write_logs run with other parameters;"
                               .. " run again with the same ones, or remove it to start over", "BAD_STATE_FILE")
  end
  return st
end

-- Saves a state file as a one-line JSON Lines file, the way the output is written: into
-- `path.part` (a fixed name: a run killed while saving leaves a file the next save truncates
-- and reuses, where a random temporary name would be left behind), synced, then renamed.
local function save_state(core, path, state)
  local w, err = core.jsonl_writer(path)
  if not w then return nil, err end
  local ok, werr = w:write_page("[" .. json.encode(state) .. "]", {})
  if ok then ok, werr = w:commit() end
  if not ok then
    w:abort()
    return nil, type(werr) == "table" and werr or { kind = "io", message = tostring(werr) }
  end
  return true
end

--- Writes every audit log record of a time range as JSON Lines: one record per line, its raw
-- JSON text exactly as the server sent it (every field, every digit), written by the core
-- straight from each page (no Lua string per record; memory stays flat whatever the range).
-- Follows cursors and windows exactly like `each_log` (same records, same order). Each page is
-- validated whole before any of it is written; the file is `output.part` until the end, then
-- made durable and renamed over `output` (a failed run leaves nothing at `output`).
--
-- With `state_file`, a run can be resumed: after every page the `.part` is synced and the
-- state (window, cursor, counts, the `.part`'s length) is saved atomically (written to
-- `state_file.part`, synced, renamed); a later run with
-- the same parameters and `state_file` truncates the `.part` to the saved length and goes on
-- from there, so each record lands exactly once across a killed run and its rerun (a missing
-- or short `.part` starts over). A failed run keeps both for the rerun; success removes the
-- state file. Whatever a killed run leaves (`output.part`, `state_file`, `state_file.part`) is
-- reused or removed by the next run with the same parameters. Another run's state file is
-- refused (`invalid` `BAD_STATE_FILE`).
--
-- `output = "-"` writes to standard output (no `.part`, no rename, no state file).
-- `parallel = N` pages sub-windows with N tasks at once, as `each_log` does (same lines, same
-- order); it cannot be combined with `state_file`.
-- @tparam table params as `each_log` (`start_time`, `end_time`, `res_uid`, `res_event`,
--   `client_ip`, `page_size`, `parallel`), plus `output` (a file name, or "-") and optional `state_file`
-- @treturn table|nil `{ path =, records =, pages =, bytes = }` (records and bytes of the whole
--   file, pages fetched over every run of it), or nil, err
function Zl:write_logs(params)
  local missing = check_params(self, params, "write_logs", M.write_logs_options, "start_time", "end_time")
  if missing then return nil, missing end
  local output, state_file = params.output, params.state_file
  if type(output) ~= "string" or output == "" then
    error('loghaul.zenlayer: write_logs: output must be a file name or "-"', 2)
  end
  if state_file ~= nil and (type(state_file) ~= "string" or state_file == "" or output == "-") then
    error("loghaul.zenlayer: write_logs: state_file must be a file name (and output a file)", 2)
  end
  local core = self.client.core
  local parallel = params.parallel
  if parallel ~= nil and (type(parallel) ~= "number" or parallel < 1 or parallel ~= math.floor(parallel)) then
    error("loghaul.zenlayer: write_logs: parallel must be a whole number >= 1", 2)
  end
  if parallel and parallel > 1 then
    if state_file then error("loghaul.zenlayer: write_logs: parallel cannot be combined with state_file", 2) end
    return write_parallel(self, params, parallel)
  end
  local loop, err = new_loop(self, params)
  if not loop then return nil, err end
  local key, w, records = run_key(params), nil, 0
  if state_file then
    local st
    st, err = load_state(core, state_file, key)
    if err then return nil, tag(err) end
    if st then
      w = core.jsonl_writer(output, st.bytes)
      if w then
        loop:restore(st)
        records = st.records
      else
        self.client:log("warn", "write_logs: " .. output .. ".part is missing or shorter than " .. state_file
                                .. " says; starting over")
      end
    end
  end
  if not w then
    w, err = core.jsonl_writer(output)
    if not w then return nil, tag(errors.from_core(err)) end
  end
  -- on failure: a resumable run keeps its .part and state for the rerun, any other removes it
  local function fail(e)
    if state_file then w:close() else w:abort() end
    return nil, tag(e)
  end
  while true do
    local page, perr = loop:fetch(false)
    if page == false then break end
    if not page then return fail(perr) end
    local n, werr, total = w:write_page(page[BODY], page[PATH], loop:filter())
    if not n then
      return fail(type(werr) == "table" and errors.from_core(werr)
                  or errors.new{ kind = "http", code = "INVALID_RESPONSE", message = tostring(werr) })
    end
    records = records + n
    local ok, aerr = loop:advance(page, total)
    if not ok then return fail(aerr) end
    if state_file then
      local sok, serr = w:sync()
      if sok then
        local state = loop:state()
        state.version, state.key, state.records, state.bytes = 1, key, records, (w:size())
        sok, serr = save_state(core, state_file, state)
      end
      if not sok then return fail(errors.from_core(serr)) end
    end
  end
  local bytes = w:size()
  local path, cerr = w:commit()
  if not path then return fail(errors.from_core(cerr)) end
  if state_file then
    core.remove(state_file)
    core.remove(state_file .. ".part")
  end
  return { path = path, records = records, pages = loop.pages, bytes = bytes }
end

--- Closes the client's connections.
function Zl:close() self.client:close() end

return M
