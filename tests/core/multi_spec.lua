-- core.multi: many transfers in flight on one thread (libcurl's multi interface), each
-- with the options of the session it names, all sharing one connection cache.
local core = require "loghaul.core"
local emu = require "helpers.emulator"
local tu = require "helpers.util"
local cjson = require "cjson"

-- runs the multi until every id in `ids` has ended; returns id -> { res =, err = }
local function drain(m, n)
  local out, seen = {}, 0
  local deadline = core.monotonic() + 60
  while seen < n do
    assert(core.monotonic() < deadline, "transfers did not end")
    for _, d in ipairs(m:wait(1)) do
      out[d.id] = d
      seen = seen + 1
    end
  end
  return out
end

describe("core.multi", function()
  local e, dir, s
  setup(function() e = emu.start() end)
  before_each(function()
    emu.reset()
    dir = tu.tmpdir()
    s = core.session{ ca_file = e.ca_file }
  end)
  after_each(function() s:close() tu.rmdir(dir) end)

  it("runs transfers at once and reuses connections between them", function()
    local m = core.multi()
    local t0 = core.monotonic()
    local ids = {}
    for i = 1, 6 do ids[i] = assert(m:add(s, { url = e.base_url .. "/slow?delay=1&i=" .. i })) end
    assert.are.equal(6, m:count())
    local out = drain(m, 6)
    local wall = core.monotonic() - t0
    for i = 1, 6 do
      assert.are.equal(200, out[ids[i]].res.status)
      assert.are.equal(1, cjson.decode(out[ids[i]].res.body).slept)
    end
    assert.is_true(wall < 4, ("6 one-second answers took %.1f s: not at once"):format(wall))
    -- a second round over the connections the first one left open
    for i = 1, 6 do assert(m:add(s, { url = e.base_url .. "/echo?i=" .. i })) end
    drain(m, 6)
    assert.are.equal(6, emu.stats().connections)
    assert.are.equal(0, m:count())
    m:close()
  end)

  it("streams outputs to files and reports each transfer's own result", function()
    local m = core.multi()
    local a = assert(m:add(s, { url = e.base_url .. "/files/medium.bin", output = dir .. "/m.bin", sha256 = true }))
    local b = assert(m:add(s, { url = e.base_url .. "/status/503" }))
    local c = assert(m:add(s, { url = "https://127.0.0.1:1/refused" }))
    local out = drain(m, 3)
    assert.are.equal(200, out[a].res.status)
    assert.are.equal(tu.sha256sum(dir .. "/m.bin"), out[a].res.sha256)
    assert.are.equal(2 ^ 20, tu.size(dir .. "/m.bin"))
    assert.are.equal(503, out[b].res.status)
    assert.are.equal("network", out[c].err.kind)
    assert.is_false(out[c].err.request_sent)
    m:close()
  end)

  it("refuses a bad request before sending, as session:request does", function()
    local m = core.multi()
    local id, err = m:add(s, { url = e.base_url .. "/echo", headers = { ["Bad Name"] = "x" } })
    assert.is_nil(id)
    assert.are.same({ "invalid", "BAD_HEADER" }, { err.kind, err.code })
    assert.has_error(function() m:add(s, { url = e.base_url .. "/echo", tiemout = 1 }) end,
      "request: unknown option 'tiemout'")
    assert.are.equal(0, m:count())
    m:close()
  end)

  it("a raising progress function aborts only its transfer, with the error as cause", function()
    local m = core.multi()
    local a = assert(m:add(s, { url = e.base_url .. "/trickle?bytes=20&interval=0.05",
                                progress = function() error("stop here") end }))
    local b = assert(m:add(s, { url = e.base_url .. "/echo" }))
    local out = drain(m, 2)
    assert.are.equal("aborted", out[a].err.kind)
    assert.matches("stop here", out[a].err.cause)
    assert.are.equal(200, out[b].res.status)
    m:close()
  end)

  it("refuses to be re-entered from a callback, and to be used once closed", function()
    local m = core.multi()
    local a = assert(m:add(s, { url = e.base_url .. "/trickle?bytes=10&interval=0.05",
                                progress = function() m:wait(0) end }))
    local out = drain(m, 1)
    assert.matches("called from a callback of one of its own transfers", out[a].err.cause)
    m:close()
    assert.has_error(function() m:wait(0) end, "attempt to use a closed multi")
  end)

  it("closing with transfers in flight stops them and closes their outputs", function()
    local m = core.multi()
    for i = 1, 3 do
      assert(m:add(s, { url = e.base_url .. "/trickle?bytes=100&interval=0.1", output = dir .. "/t" .. i }))
    end
    m:wait(0.3)
    m:close()
    assert.are.equal(0, m:count())
    -- nothing holds the files open: they can be removed and the directory with them
    for i = 1, 3 do os.remove(dir .. "/t" .. i) end
    assert.are.same({}, tu.ls(dir))
  end)

  it("waits out a timeout with nothing in flight (a scheduler's timer), without spinning", function()
    local m = core.multi()
    local t0, c0 = core.monotonic(), os.clock()
    assert.are.same({}, m:wait(0.3))
    assert.is_true(core.monotonic() - t0 >= 0.29)
    assert.is_true(os.clock() - c0 < 0.1, "the wait used CPU")
    m:close()
  end)
end)
