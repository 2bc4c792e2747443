-- each_log{ parallel = N }: the range cut into sub-windows paged by N tasks at once on the
-- curl multi scheduler; the records come out in exactly the sequential loop's order, boundary
-- seconds of its 30-day windows included (the emulator's data has duplicates on them too).
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F
local DAY = 86400

describe("zenlayer each_log with parallel = N", function()
  local e

  setup(function() e = T.start() end)
  before_each(function()
    T.reset()
    T.vendors.configure{ zenlayer = { record_count = 3000, span_days = 60 } }
  end)

  local function client(on_progress)
    local o = T.opts{ endpoint = e.base_url, access_key_id = F.zenlayer.access_key_id,
                      access_key_password = F.zenlayer.access_key_password, on_progress = on_progress }
    o.base_url = nil
    return loghaul.zenlayer(o)
  end

  local function collect(zl, p)
    local out = {}
    for r in zl:each_log(p) do out[#out + 1] = r end
    return out
  end

  it("yields the sequential order over 60 days, raw and as tables", function()
    local zl = client()
    local now = os.time()
    local p = { start_time = T.utc(now - 61 * DAY), end_time = T.utc(now), page_size = 200, raw = true }
    local seq = collect(zl, p)
    assert.is_true(#seq > 2000, #seq .. " records")
    p.parallel = 4
    local par = collect(zl, p)
    assert.are.equal(#seq, #par)
    for i = 1, #seq do
      if seq[i] ~= par[i] then error(("record %d differs:\n%s\n%s"):format(i, seq[i], par[i])) end
    end
    p.raw, p.parallel = nil, nil
    local tseq = collect(zl, p)
    p.parallel = 3
    local tpar = collect(zl, p)
    assert.are.equal(#seq, #tpar)
    for i = 1, #tseq do assert.are.same(tseq[i], tpar[i]) end
    zl:close()
  end)

  it("the last page event says every page, sequential or parallel", function()
    local events = {}
    local zl = client(function(ev) events[#events + 1] = ev end)
    local now = os.time()
    for _, parallel in ipairs{ false, 4 } do
      events = {}
      local p = { start_time = T.utc(now - 61 * DAY), end_time = T.utc(now), page_size = 200, raw = true,
                  parallel = parallel or nil }
      collect(zl, p)
      local last = events[#events]
      assert.is_true(last.done > 10, last.done .. " pages")
      assert.same({ "page", last.done, 100 }, { last.phase, last.total, last.percent })
    end
    zl:close()
  end)

  it("write_logs with parallel = 4 writes the same lines as each_log", function()
    local zl = client()
    local dir = T.tmpdir()
    local now = os.time()
    local p = { start_time = T.utc(now - 45 * DAY), end_time = T.utc(now), page_size = 300, raw = true }
    local seq = collect(zl, p)
    p.raw, p.parallel, p.output = nil, 4, dir .. "/audit.jsonl"
    local res = assert(zl:write_logs(p))
    assert.are.equal(#seq, res.records)
    local lines = {}
    for l in io.lines(res.path) do lines[#lines + 1] = l end
    assert.are.equal(#seq, #lines)
    for i = 1, #seq do assert.are.equal(seq[i], lines[i]) end
    assert.are.same({ "audit.jsonl" }, T.ls(dir))
    T.rmdir(dir)
    zl:close()
  end)

  it("raises a page that still fails after its retries, and refuses a bad parallel", function()
    local zl = client()
    local now = os.time()
    local p = { start_time = T.utc(now - 20 * DAY), end_time = T.utc(now), page_size = 100, parallel = 4 }
    T.emu.fault{ path = "/api/v2/zls", status = 400, count = 100,
                 body = '{"requestId":"r1","code":"INVALID_PARAMETER","message":"emulated"}' }
    local ok, err = pcall(collect, zl, p)
    assert.is_false(ok)
    assert.are.same({ "api", "INVALID_PARAMETER" }, { err.kind, err.code })
    assert.has_error(function() zl:each_log{ start_time = p.start_time, end_time = p.end_time, parallel = 0 } end,
      "loghaul.zenlayer: each_log: parallel must be a whole number >= 1")
    zl:close()
  end)
end)
