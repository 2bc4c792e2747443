-- Zenlayer's raw records and JSON Lines against the emulator over TLS: 60 days of data (three
-- windows), 19-digit cursors the emulator refuses when rounded, gzip answers (counted by the
-- emulator) equal to plain ones, and a malformed page that leaves no file behind.
local json = require "loghaul.json"
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F
local DAY = 86400
local ZLS = "/api/v2/zls"

describe("zenlayer raw records and write_logs against the emulator", function()
  local e, dir

  setup(function() e = T.start() end)
  before_each(function()
    T.reset()
    T.vendors.configure{ zenlayer = { record_count = 2000, span_days = 60 } }
    dir = T.tmpdir()
  end)
  after_each(function() T.rmdir(dir) end)

  local function client(extra)
    local o = T.opts{ endpoint = e.base_url, access_key_id = F.zenlayer.access_key_id,
                      access_key_password = F.zenlayer.access_key_password }
    o.base_url = nil
    for k, v in pairs(extra or {}) do o[k] = v end
    return loghaul.zenlayer(o)
  end

  local function params(extra)
    local now = os.time()
    local p = { start_time = T.utc(now - 61 * DAY), end_time = T.utc(now), page_size = 250 }
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end

  local function collect(zl, p)
    local out = {}
    for r in zl:each_log(p) do out[#out + 1] = r end
    return out
  end

  local function lines(path)
    local out = {}
    for l in assert(io.open(path)):lines() do out[#out + 1] = l end
    return out
  end

  it("each_log, raw = true and write_logs give the same records; cursors came back exact", function()
    local zl = client()
    local p = params()
    local tables = collect(zl, p)
    local pages = T.counters("zenlayer").pages
    p.raw = true
    local raw = collect(zl, p)
    p.raw, p.output = nil, dir .. "/audit.jsonl"
    local res = assert(zl:write_logs(p))
    local c = T.counters("zenlayer")
    assert.equal(0, c.errors)
    assert.equal(0, c.bad_cursors)             -- every 19-digit cursor went back byte for byte
    assert.is_true(#tables >= 1900, "records: " .. #tables) -- 2000 minus what is older than 61 days
    assert.is_true(pages >= 3 + 6)             -- three windows, several pages
    assert.equal(3 * pages, c.pages)
    assert.equal(#tables, #raw)
    for i, t in ipairs(tables) do
      local d = assert(json.decode(raw[i]))
      assert.same(t, d)
      assert.equal(t.opsTime, raw[i]:match('"opsTime":"([^"]+)"'))
    end
    assert.same({ path = p.output, records = #raw, pages = pages, bytes = T.size(p.output) }, res)
    assert.same(raw, lines(p.output))
    assert.same({ "audit.jsonl" }, T.ls(dir))
  end)

  it("answers come gzip-compressed and give the same records as plain ones", function()
    local p = params{ raw = true }
    local gz = collect(client(), p)
    local st = T.emu.stats()
    assert.is_true(st.compressed >= 9, "compressed answers: " .. st.compressed)
    assert.equal(T.path_requests(ZLS), st.compressed)
    T.reset()
    T.vendors.configure{ zenlayer = { record_count = 2000, span_days = 60 } }
    -- the same loop on a session that never asks for an encoding
    local real = require("loghaul.core").session{ ca_file = e.ca_file, timeout = 60 }
    local plain_session = { request = function(_, req)
      req.compressed = nil
      return real:request(req)
    end, close = function() real:close() end }
    local plain = collect(client{ _session = plain_session }, p)
    assert.equal(0, T.emu.stats().compressed)
    assert.is_true(T.path_requests(ZLS) >= 9)
    assert.same(gz, plain)
    real:close()
  end)

  it("a page that stays malformed: write_logs returns the error and leaves no file", function()
    for _, body in ipairs{ '{"requestId":"x","response":{"requestId":"x","dataSet":[{"a":1},',
                           "{}", '{"requestId":"x","response":{"requestId":"x","dataSet":"none"}}' } do
      T.reset()
      -- the first page is good, and its progress event arms the fault for the next ones
      local armed = false
      local zl = client{ retry = { max_attempts = 2, base_delay = 0.01, max_delay = 0.02 }, on_progress = function()
        if not armed then
          armed = true
          T.emu.fault{ path = ZLS, status = 200, body = body }
        end
      end }
      local res, err = zl:write_logs(params{ output = dir .. "/bad.jsonl" })
      assert.is_nil(res)
      assert.is_true(loghaul.errors.is(err))
      assert.equal("INVALID_RESPONSE", err.code)
      assert.equal(2, err.attempts)
      assert.same({}, T.ls(dir))
      assert.equal(3, T.path_requests(ZLS))
    end
  end)
end)
