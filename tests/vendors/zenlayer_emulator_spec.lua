-- Zenlayer ZLS DescribeLogs end to end against the emulator over TLS (ZC2 checked by the
-- emulator's own code): raw pages, rules checked before sending, each_log's windows and
-- cursors (19-digit integers the emulator refuses when rounded), throttling and bad pages.
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F
local DAY = 86400
local ZLS = "/api/v2/zls"

describe("zenlayer against the emulator", function()
  local e

  setup(function() e = T.start() end)
  before_each(function() T.reset() end)

  local function client(extra)
    local o = T.opts{ endpoint = e.base_url, access_key_id = F.zenlayer.access_key_id,
                      access_key_password = F.zenlayer.access_key_password }
    o.base_url = nil
    for k, v in pairs(extra or {}) do o[k] = v end
    return loghaul.zenlayer(o)
  end

  local function key(rec) return rec.opsTime .. "|" .. rec.resUid .. "|" .. rec.clientIP end

  -- The matching records of [s, e], counted independently of each_log: disjoint windows
  -- (at second precision) of under 30 days, paged with describe_logs and its raw cursor.
  local function count_by_pages(zl, s, t_end, filters)
    local n, keys = 0, {}
    local ws = s
    while ws <= t_end do
      local we = math.min(ws + 20 * DAY, t_end)
      local cursor
      repeat
        local p = { startTime = T.utc(ws), endTime = T.utc(we), size = 1000, cursor = cursor }
        for k, v in pairs(filters or {}) do p[k] = v end
        local page = assert(zl:describe_logs(p))
        for _, rec in ipairs(page.dataSet) do
          n = n + 1
          keys[key(rec)] = true
        end
        cursor = page.cursor
      until cursor == nil
      ws = we + 1
    end
    return n, keys
  end

  describe("describe_logs", function()
    it("returns the raw page: the API's field names and the cursor's exact JSON text", function()
      local now = os.time()
      local zl = client()
      local page, err = zl:describe_logs{ startTime = T.utc(now - 20 * DAY), endTime = T.utc(now), size = 7 }
      assert.is_nil(err)
      assert.is_string(page.requestId)
      assert.equal(7, #page.dataSet)
      for _, f in ipairs{ "resUid", "resType", "resEvent", "opsTime", "eventSource", "apiVersion", "opsUser",
                          "clientIP" } do
        assert.is_string(page.dataSet[1][f], f)
      end
      assert.matches("^%[%d+%]$", page.cursor)
      assert.equal(19, #page.cursor:match("%d+"))
      -- the cursor goes back exactly: the next page follows on, no rounding refused
      local p2 = assert(zl:describe_logs{ startTime = T.utc(now - 20 * DAY), endTime = T.utc(now), size = 7,
                                          cursor = page.cursor })
      assert.equal(7, #p2.dataSet)
      assert.is_true(p2.dataSet[1].opsTime < page.dataSet[7].opsTime)
      local c = T.counters("zenlayer")
      assert.equal(2, c.pages)
      assert.equal(0, c.bad_cursors)
      assert.equal(0, c.errors)
    end)

    it("the emulator refuses a cursor that went through a double (the reason raw text is kept)", function()
      local now = os.time()
      local zl = client()
      local page = assert(zl:describe_logs{ startTime = T.utc(now - 20 * DAY), endTime = T.utc(now), size = 5 })
      local digits = page.cursor:match("%d+")
      local rounded = string.format("[%.0f]", tonumber(digits))
      assert.are_not.equal(page.cursor, rounded)
      local _, err = zl:describe_logs{ startTime = T.utc(now - 20 * DAY), endTime = T.utc(now), size = 5,
                                       cursor = rounded }
      assert.equal("api", err.kind)
      assert.equal(400, err.status)
      assert.equal("INVALID_CURSOR", err.code)
      assert.is_string(err.request_id)
      assert.equal(1, T.counters("zenlayer").bad_cursors)
      -- a cursor as a Lua number list cannot be sent exactly: refused before sending
      local before = T.emu.stats().requests
      local _, lerr = zl:describe_logs{ startTime = T.utc(now - 20 * DAY), endTime = T.utc(now),
                                        cursor = { tonumber(digits) } }
      assert.equal("invalid", lerr.kind)
      assert.equal(before, T.emu.stats().requests)
    end)

    it("refuses size outside 1..1000 and bad ranges before sending", function()
      local now = os.time()
      local zl = client()
      for _, size in ipairs{ 0, 1001, 2.5, -1 } do
        local _, err = zl:describe_logs{ startTime = T.utc(now - DAY), endTime = T.utc(now), size = size }
        assert.equal("invalid", err.kind)
        assert.equal("INVALID_PARAMETER_VALUE", err.code)   -- what the server answers for it
        assert.equal("zenlayer", err.vendor)
        assert.equal("DescribeLogs", err.operation)
        assert.equal(0, err.attempts)
      end
      local _, err = zl:describe_logs{ startTime = T.utc(now - 30 * DAY), endTime = T.utc(now) }
      assert.equal("INVALID_PARAMETER__ILLEGAL_TIME", err.code)
      _, err = zl:describe_logs{ startTime = "2024-01-01 00:00:00", endTime = T.utc(now) }
      assert.equal("INVALID_TIME_FORMAT", err.code)
      assert.equal("DescribeLogs", err.operation)
      assert.equal(0, T.emu.stats().requests)
      -- the same rule the server makes, for comparison: a 1000 page is accepted
      assert.truthy(zl:describe_logs{ startTime = T.utc(now - DAY), endTime = T.utc(now), size = 1000 })
    end)

    it("a wrong password is kind auth, 401 SIGNATURE_FAILURE, with the request id", function()
      local _, err = client{ access_key_password = "not-the-password" }:describe_logs{
        startTime = T.utc(os.time() - DAY), endTime = T.utc(os.time()) }
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert.equal("SIGNATURE_FAILURE", err.code)
      assert.is_string(err.request_id)
      assert.equal(1, err.attempts)
      assert.is_nil(tostring(err):find("not-the-password", 1, true))
    end)

    it("429 REQUEST_LIMIT_EXCEEDED with Retry-After is waited for and retried", function()
      T.emu.fault{ path = ZLS, status = 429, retry_after = 1, count = 1,
                   body = '{"requestId":"r1","code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}' }
      local t0 = T.clock()
      local page, err = client():describe_logs{ startTime = T.utc(os.time() - DAY), endTime = T.utc(os.time()) }
      assert.is_nil(err)
      assert.is_table(page.dataSet)
      assert.is_true(T.clock() - t0 >= 0.9, "Retry-After not honoured")
      assert.equal(2, T.path_requests(ZLS))
      assert.equal(1, T.counters("zenlayer").pages)
    end)

    it("throttled every time: the final error says so (429, retryable, attempts)", function()
      T.emu.fault{ path = ZLS, status = 429,
                   body = '{"requestId":"r1","code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}' }
      local _, err = client{ retry = { max_attempts = 3, base_delay = 0.01, max_delay = 0.02 } }:describe_logs{
        startTime = T.utc(os.time() - DAY), endTime = T.utc(os.time()) }
      assert.equal(429, err.status)
      assert.equal("REQUEST_LIMIT_EXCEEDED", err.code)
      assert.is_true(err.retryable)
      assert.equal(3, err.attempts)
      assert.equal(3, T.path_requests(ZLS))
    end)

    it("a truncated JSON page or a cut connection is retried and the page comes whole", function()
      T.emu.fault{ { path = ZLS, status = 200, body = '{"requestId":"x","response":{"dataSet":[{"resUid"',
                     count = 1 },
                   { path = ZLS, cut_after = 50, count = 1 } }
      local now = os.time()
      local page, err = client():describe_logs{ startTime = T.utc(now - 5 * DAY), endTime = T.utc(now), size = 10 }
      assert.is_nil(err)
      assert.equal(10, #page.dataSet)
      assert.matches("^%[%d+%]$", page.cursor)
      assert.equal(3, T.path_requests(ZLS))
    end)
  end)

  describe("each_log", function()
    it("60 days with a filter: windows under 30 days, every matching record exactly once", function()
      local now = os.time()
      local s, t_end = now - 60 * DAY, now
      local zl = client()
      local seen, n, dup = {}, 0, 0
      for rec in zl:each_log{ start_time = T.utc(s), end_time = T.utc(t_end), res_event = "rename bmi",
                              page_size = 100 } do
        assert.equal("rename bmi", rec.resEvent)
        if seen[key(rec)] then dup = dup + 1 end
        seen[key(rec)] = true
        n = n + 1
      end
      local c = T.counters("zenlayer")
      assert.equal(0, c.errors)                        -- no window refused by the server
      assert.equal(0, c.bad_cursors)                   -- every 19-digit cursor came back exact
      assert.is_true(c.pages >= 3 + 3)                 -- three windows, several pages
      T.reset()
      local expected, keys = count_by_pages(zl, s, t_end, { resEvent = "rename bmi" })
      assert.is_true(expected > 300, "too few records to prove anything: " .. expected)
      assert.equal(0, dup)
      assert.equal(expected, n)
      for k in pairs(keys) do assert.is_true(seen[k], k) end
    end)

    it("several filters at once, page_size above 1000 capped", function()
      local now = os.time()
      local zl = client()
      local first = assert(zl:describe_logs{ startTime = T.utc(now - 20 * DAY), endTime = T.utc(now), size = 1 })
      local r = first.dataSet[1]
      local n = 0
      for rec in zl:each_log{ start_time = T.utc(now - 59 * DAY), end_time = T.utc(now), res_uid = r.resUid,
                              client_ip = r.clientIP, page_size = 5000 } do
        assert.equal(r.resUid, rec.resUid)
        assert.equal(r.clientIP, rec.clientIP)
        n = n + 1
      end
      assert.equal(0, T.counters("zenlayer").errors)
      T.reset()
      local expected = count_by_pages(zl, now - 59 * DAY, now, { resUid = r.resUid, clientIP = r.clientIP })
      assert.is_true(expected >= 1)
      assert.equal(expected, n)
    end)

    it("a record on the boundary second shared by two windows comes once", function()
      local now = os.time()
      local zl = client()
      local p = assert(zl:describe_logs{ startTime = T.utc(now - 45 * DAY), endTime = T.utc(now - 35 * DAY),
                                         size = 1 })
      local r = p.dataSet[1]
      local t0 = require("loghaul.util").parse_utc(r.opsTime:sub(1, 19) .. "Z")
      -- window 1 is [s, s + 30 days - 1 s] = [.., t0]; window 2 starts at t0
      local s, t_end = t0 - 30 * DAY + 1, t0 + 5 * DAY
      local n, hits = 0, 0
      for rec in zl:each_log{ start_time = T.utc(s), end_time = T.utc(t_end) } do
        n = n + 1
        if key(rec) == key(r) then hits = hits + 1 end
      end
      assert.equal(1, hits)
      T.reset()
      assert.equal((count_by_pages(zl, s, t_end)), n)
    end)

    it("ends on an empty cursor ([]) as on a missing one", function()
      T.vendors.configure{ zenlayer = { last_cursor = "empty" } }
      local now = os.time()
      local zl = client()
      local n = 0
      for _ in zl:each_log{ start_time = T.utc(now - 10 * DAY), end_time = T.utc(now), page_size = 200 } do
        n = n + 1
      end
      local pages = T.counters("zenlayer").pages
      T.reset()
      local expected = count_by_pages(zl, now - 10 * DAY, now)
      assert.equal(expected, n)
      assert.equal(math.ceil(expected / 200), pages)
    end)

    it("raises the API's codes before sending: 90-day limit, end before start, bad format", function()
      local now = os.time()
      local zl = client()
      local cases = {
        { { start_time = T.utc(now - 91 * DAY), end_time = T.utc(now) }, "INVALID_PARAMETER__ILLEGAL_TIME", "90" },
        { { start_time = T.utc(now), end_time = T.utc(now - DAY) }, "INVALID_PARAMETER__ILLEGAL_TIME", nil },
        { { start_time = "2024-13-01T00:00:00Z", end_time = T.utc(now) }, "INVALID_TIME_FORMAT", nil },
        { { start_time = T.utc(now - DAY), end_time = "yesterday" }, "INVALID_TIME_FORMAT", nil },
      }
      for _, case in ipairs(cases) do
        local ok, err = pcall(function()
          for _ in zl:each_log(case[1]) do end
        end)
        assert.is_false(ok)
        assert.is_table(err)
        assert.equal("invalid", err.kind)
        assert.equal(case[2], err.code)
        assert.equal("zenlayer", err.vendor)
        if case[3] then assert.truthy(tostring(err):find(case[3], 1, true)) end
      end
      assert.equal(0, T.emu.stats().requests)
    end)

    it("throttling and a truncated page in the middle of a loop are retried; nothing lost", function()
      local now = os.time()
      local zl = client()
      local expected = count_by_pages(zl, now - 20 * DAY, now)
      T.reset()
      local n, i = 0, 0
      for _ in zl:each_log{ start_time = T.utc(now - 20 * DAY), end_time = T.utc(now), page_size = 300 } do
        n = n + 1
        i = i + 1
        if i == 350 then   -- during the second page: arm faults for the next requests
          T.emu.fault{ { path = ZLS, status = 429, retry_after = 0, count = 1,
                         body = '{"requestId":"r","code":"REQUEST_LIMIT_EXCEEDED","message":"slow"}' },
                       { path = ZLS, status = 200, body = '{"requestId":"x","response":{"dataS', count = 1 } }
        end
      end
      assert.equal(expected, n)
      assert.equal(2, T.emu.stats().faults_fired)
      assert.equal(0, T.counters("zenlayer").bad_cursors)
    end)

    it("a page that stays truncated raises a clean error object after its retries", function()
      local now = os.time()
      local zl = client{ retry = { max_attempts = 3, base_delay = 0.01, max_delay = 0.02 } }
      T.emu.fault{ path = ZLS, status = 200, body = '{"requestId":"x","response":{"dataSet":[' }
      local ok, err = pcall(function()
        for _ in zl:each_log{ start_time = T.utc(now - DAY), end_time = T.utc(now) } do end
      end)
      assert.is_false(ok)
      assert.is_true(loghaul.errors.is(err))
      assert.equal("http", err.kind)
      assert.equal("INVALID_RESPONSE", err.code)
      assert.equal(3, err.attempts)
      assert.equal("zenlayer", err.vendor)
      assert.equal("DescribeLogs", err.operation)
      assert.equal(3, T.path_requests(ZLS))
    end)
  end)
end)
