-- Zenlayer's cursor loop without Lua in the byte path, against a scripted server (fake
-- session): each_log{ raw = true } and write_logs give the records byte for byte, cursors go
-- back with their 19 digits, the boundary second is a multiset, a malformed page is an error
-- (never a silent end, never a file at the final name), and a state file resumes exactly.
local loghaul = require "loghaul"
local fake = require "vendors.fake"
local shell = require "helpers.shell"
local util = require "loghaul.util"

local NOW = util.parse_utc("2023-08-10T00:00:00Z")
local DAY = 86400

-- A scripted ZLS: `data(window_start, window_end)` gives the records (JSON texts, newest
-- first) the server holds for that request; pages of `size`, cursors `[1691028715371000NNN]`
-- (19 digits, the index in the text). Returns the script and the list of request bodies.
local function server(data, opts)
  opts = opts or {}
  local bodies = {}
  local script = { default = function(req)
    bodies[#bodies + 1] = req.body
    local b = fake.json(req.body)
    local s, e = util.parse_utc(b.startTime), util.parse_utc(b.endTime)
    local all = {}
    for _, text in ipairs(data(b.startTime, b.endTime)) do
      local t = util.parse_utc(fake.json(text).opsTime:sub(1, 19) .. "Z")
      if t >= s and t <= e then all[#all + 1] = text end
    end
    local from = 0
    local c = req.body:match('"cursor":%[(%d+)%]')
    if c then
      assert(#c == 19, "cursor lost digits: " .. c)
      from = tonumber(c:sub(14))
    end
    local page = {}
    for i = from + 1, math.min(from + b.size, #all) do page[#page + 1] = all[i] end
    local cursor = ""
    if from + b.size < #all then cursor = ',"cursor":[1691028715371' .. string.format("%06d", from + b.size) .. "]" end
    if opts.fail and opts.fail(#bodies) then
      return { status = 500, headers = {}, body = '{"requestId":"E","code":"INTERNAL_ERROR","message":"x"}' }
    end
    return { status = 200, headers = {}, body = '{"requestId":"r' .. #bodies .. '","response":{"requestId":"r'
      .. #bodies .. '","dataSet":[' .. table.concat(page, ",") .. "]" .. cursor .. "}}" }
  end }
  return script, bodies
end

local function client(script, extra)
  local o = { access_key_id = "AKID", access_key_password = "Gu5t9xGARNpq86cd98joQYCN3",
              retry = { max_attempts = 2 } }
  for k, v in pairs(extra or {}) do o[k] = v end
  local opts, session = fake.opts(o, script, fake.clock(NOW))
  return loghaul.zenlayer(opts), session
end

-- records as the server writes them: odd spacing, 19-digit numbers, escapes, key order kept
local function rec(ops, n)
  return ('{ "opsTime":"%s", "resUid":"bmi-%d","big":1691028715371000%03d,"f":1.50,"s":"a\\u00e9\\"b"}')
    :format(ops, n, n)
end

local function each(zl, params)
  local out = {}
  for r in zl:each_log(params) do out[#out + 1] = r end
  return out
end

local function lines(path)
  local out = {}
  for l in assert(io.open(path)):lines() do out[#out + 1] = l end
  return out
end

local function range(days)
  return { start_time = util.format_utc(NOW - days * DAY), end_time = util.format_utc(NOW) }
end

describe("zenlayer raw records", function()
  local dir
  before_each(function() dir = fake.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  -- 25 records over the last 5 days, newest first
  local function five_days()
    local data = {}
    for i = 1, 25 do data[i] = rec(util.format_utc(NOW - i * 4 * 3600):sub(1, 19) .. ".123Z", i) end
    return function() return data end, data
  end

  it("raw = true yields each record's text byte for byte; cursors go back with 19 digits", function()
    local data_fn, data = five_days()
    local script, bodies = server(data_fn)
    local zl = client(script)
    local p = range(6)
    p.page_size, p.raw = 10, true
    local got = each(zl, p)
    assert.same(data, got)
    assert.equal(3, #bodies)
    assert.truthy(bodies[2]:find('"cursor":[1691028715371000010]', 1, true))
    assert.truthy(bodies[3]:find('"cursor":[1691028715371000020]', 1, true))
    -- the same records as tables, in the same order
    script = server(data_fn)
    zl = client(script)
    p.raw = nil
    local tables = each(zl, p)
    assert.equal(#got, #tables)
    for i, t in ipairs(tables) do
      assert.equal(fake.json(got[i]).resUid, t.resUid)
      assert.equal(math.type and "integer" or "number", math.type and math.type(t.big) or type(t.big))
    end
  end)

  it("write_logs writes the same records, one per line, with .part and an atomic rename", function()
    local data_fn, data = five_days()
    local script, bodies = server(data_fn)
    local zl, session = client(script)
    local out = dir .. "/audit.jsonl"
    local p = range(6)
    p.page_size, p.output = 10, out
    local res = assert(zl:write_logs(p))
    assert.same({ path = out, records = 25, pages = 3, bytes = #(table.concat(data, "\n") .. "\n") }, res)
    assert.same(data, lines(out))
    assert.equal(res.bytes, #assert(shell.read_file(out)))
    assert.same({ "audit.jsonl" }, fake.ls(dir))
    assert.truthy(bodies[3]:find('"cursor":[1691028715371000020]', 1, true))
    -- every API call asks for a compressed answer
    for _, r in ipairs(session.requests) do assert.is_true(r.compressed) end
  end)

  it("the boundary second is a multiset: k copies yielded by the previous window are skipped k times", function()
    -- 40 days: window 1 ends on second B, window 2 starts on it. The server holds two identical
    -- records on B; window 1 sees only one of them (the second arrived late), window 2 both.
    local s = NOW - 40 * DAY
    local b = s + 30 * DAY - 1
    local same = rec(util.format_utc(b):sub(1, 19) .. ".500Z", 7)
    local other = rec(util.format_utc(b + 3600):sub(1, 19) .. ".000Z", 8)
    local older = rec(util.format_utc(b - 3600):sub(1, 19) .. ".000Z", 9)
    local function data(ws)
      if ws == util.format_utc(s) then return { same, older } end -- window 1
      return { other, same, same }                                -- window 2 (and later)
    end
    local p = { start_time = util.format_utc(s), end_time = util.format_utc(NOW), page_size = 1 }
    local want = { same, older, other, same }
    for _, mode in ipairs{ "tables", "raw", "write" } do
      local zl = client((server(data)))
      local got
      if mode == "write" then
        p.output = dir .. "/m.jsonl"
        local r = assert(zl:write_logs(p))
        p.output = nil
        assert.equal(4, r.records)
        got = lines(r.path)
      else
        p.raw = mode == "raw"
        got = each(zl, p)
        if mode == "tables" then
          for i, t in ipairs(got) do got[i] = t.resUid .. "@" .. t.opsTime end
        end
        p.raw = nil
      end
      if mode == "tables" then
        for i, t in ipairs(want) do
          local d = fake.json(t)
          assert.equal(d.resUid .. "@" .. d.opsTime, got[i], mode)
        end
        assert.equal(#want, #got, mode)
      else
        assert.same(want, got, mode)
      end
    end
    -- and two copies seen by both windows stay two
    local function data2(ws)
      if ws == util.format_utc(s) then return { same, same } end
      return { same, same }
    end
    local zl = client((server(data2)))
    p.raw = true
    assert.same({ same, same }, each(zl, p))
  end)

  describe("a malformed page is an error object, never a silent end or a file", function()
    local cases = {
      cut = '{"requestId":"x","response":{"requestId":"x","dataSet":[{"opsTime":"2023-08-09T00:00:00Z"},',
      empty_object = "{}",
      wrong_shape = '{"requestId":"x","response":{"requestId":"x","dataSet":{"a":1}}}',
      response_string = '{"requestId":"x","response":"ok"}',
      no_request_id = '{"response":{"dataSet":[]}}',
      trailing = '{"requestId":"x","response":{"requestId":"x","dataSet":[]}} x',
      lax_number = '{"requestId":"x","response":{"requestId":"x","dataSet":[{"n":1.}]}}',
      array = "[]",
    }
    for name, body in pairs(cases) do
      it(name, function()
        local good = { status = 200, headers = {}, body = '{"requestId":"g","response":{"requestId":"g","dataSet":['
          .. rec("2023-08-09T12:00:00.000Z", 1) .. '],"cursor":[1691028715371000123]}}' }
        local bad = { status = 200, headers = {}, body = body }
        for _, mode in ipairs{ "tables", "raw", "write" } do
          local zl, session = client{ good, bad, bad, bad }
          local p = range(2)
          local ok, err
          if mode == "write" then
            p.output = dir .. "/bad.jsonl"
            ok, err = zl:write_logs(p)
            assert.is_nil(ok)
            assert.same({}, fake.ls(dir), mode .. ": nothing at the final name, no .part")
          else
            p.raw = mode == "raw"
            ok, err = pcall(function() return each(zl, p) end)
            assert.is_false(ok, mode)
          end
          assert.is_true(loghaul.errors.is(err), mode)
          assert.equal("http", err.kind, mode)
          assert.equal("INVALID_RESPONSE", err.code, mode)
          assert.equal("zenlayer", err.vendor)
          assert.equal(2, err.attempts, mode) -- retried, then given up
          assert.equal(3, #session.requests, mode)
        end
      end)
    end
  end)

  it("state_file: a failed run keeps .part and state; the rerun goes on and each record lands once", function()
    local data_fn, data = five_days()
    local out, st = dir .. "/a.jsonl", dir .. "/a.state"
    local p = range(6)
    p.page_size, p.output, p.state_file = 4, out, st
    -- requests 3 and 4 (page 3 and its retry) fail: two pages written, then the error
    local script = server(data_fn, { fail = function(n) return n == 3 or n == 4 end })
    local zl = client(script)
    local res, err = zl:write_logs(p)
    assert.is_nil(res)
    assert.equal("api", err.kind)
    assert.same({ "a.jsonl.part", "a.state" }, fake.ls(dir))
    assert.same({ data[1], data[2], data[3], data[4], data[5], data[6], data[7], data[8] }, lines(out .. ".part"))
    -- a crash after the .part grew but before the state was saved: garbage past the saved length
    local f = assert(io.open(out .. ".part", "ab"))
    f:write('{"half a record')
    f:close()
    -- another run's parameters are refused
    local other = util.copy(p)
    other.page_size = 5
    res, err = client((server(data_fn))):write_logs(other)
    assert.is_nil(res)
    assert.equal("BAD_STATE_FILE", err.code)
    local bodies
    script, bodies = server(data_fn)
    res = assert(client(script):write_logs(p))
    assert.equal(25, res.records)
    assert.equal(7, res.pages) -- 2 pages in the first run, 5 in the rerun
    assert.same(data, lines(out))
    assert.same({ "a.jsonl" }, fake.ls(dir))
    assert.truthy(bodies[1]:find('"cursor":[1691028715371000008]', 1, true))
  end)
end)
