-- loghaul zenlayer logs: the JSON Lines of a range equal each_log's records, to a file
-- (atomic: nothing at the final name until complete) or to stdout; --resume after a run
-- killed halfway gives each record exactly once.
local cjson = require "cjson"
local cli = require "cli.helper"
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local util = require "helpers.util"
local vendors = require "helpers.vendors"

-- request/response are JSON texts whose key order the emulator's nginx workers do not agree
-- on (each builds its own tables): compare them decoded
local function normal(rec)
  local t = {}
  for k, v in pairs(rec) do
    if v == cjson.null then v = nil end   -- raw JSON's null is an absent field in each_log's tables
    t[k] = (k == "request" or k == "response") and type(v) == "string" and cjson.decode(v) or v
  end
  return t
end

local function normalize(list)
  local t = {}
  for i, rec in ipairs(list) do t[i] = normal(rec) end
  return t
end

local function decode_lines(text)
  local t = {}
  for l in text:gmatch("[^\n]+") do t[#t + 1] = normal(cjson.decode(l)) end
  return t
end

describe("loghaul zenlayer logs", function()
  local e, dir, close_suite, env, range, expected
  setup(function()
    e, dir, close_suite = vendors.open_suite()
    vendors.configure{ zenlayer = { record_count = 10000 } }
    env = cli.emulator_env()
    local loghaul = require "loghaul"
    local zl = loghaul.zenlayer{ endpoint = e.base_url, ca_file = e.ca_file,
      access_key_id = vendors.fixtures.zenlayer.access_key_id,
      access_key_password = vendors.fixtures.zenlayer.access_key_password }
    -- the emulator's 10,000 records span its last 80 days; ask for all, in three 30-day windows
    local now = os.time()
    range = { since = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 85 * 86400),
              ["until"] = os.date("!%Y-%m-%dT%H:%M:%SZ", now) }
    expected = {}
    for rec in zl:each_log{ start_time = range.since, end_time = range["until"] } do
      expected[#expected + 1] = rec
    end
    expected = normalize(expected)
    zl:close()
  end)
  teardown(function() close_suite() end)
  before_each(function() emu.reset() end)

  it("--output FILE: every record of the range once, equal to each_log's, and a JSON summary", function()
    assert.are.equal(10000, #expected)
    local out = dir .. "/audit.jsonl"
    local r = cli.run({ "zenlayer", "logs", "--since", range.since, "--until", range["until"], "--output", out,
                        "--json" }, env)
    assert.are.equal(0, r.code, r.stderr)
    local summary = cjson.decode(r.stdout)
    assert.are.equal(#expected, summary.records)
    assert.are.equal(util.size(out), summary.bytes)
    assert.are.same(expected, decode_lines(shell.read_file(out)))
    assert.are.same({ "audit.jsonl" }, util.ls(dir))
  end)

  it("--output - (the default): the records on stdout, filters applied", function()
    local r = cli.run({ "zenlayer", "logs", "--since", range.since, "--until", range["until"],
                        "--event", expected[1].resEvent, "--page-size", "200" }, env)
    assert.are.equal(0, r.code, r.stderr)
    local want = {}
    for _, rec in ipairs(expected) do
      if rec.resEvent == expected[1].resEvent then want[#want + 1] = rec end
    end
    assert.is_true(#want > 10 and #want < #expected)
    assert.are.same(want, decode_lines(r.stdout))
  end)

  it("a page that fails: exit 1 with the vendor's code, nothing at the final name", function()
    emu.fault{ { path = "/api/v2/zls", delay = 0, count = 2 },
               { path = "/api/v2/zls", status = 400,
                 body = '{"requestId":"r9","code":"INVALID_ACTION","message":"no"}' } }
    local out = dir .. "/failed.jsonl"
    local r = cli.run({ "zenlayer", "logs", "--since", range.since, "--until", range["until"], "--output", out,
                        "--page-size", "100" }, env)
    assert.are.equal(1, r.code, r.stderr)
    assert.truthy(r.stderr:find("INVALID_ACTION", 1, true), r.stderr)
    assert.is_nil(util.size(out))
    assert.is_nil(util.size(out .. ".part"))
  end)

  it("--resume after a run killed halfway: each record exactly once across the two runs", function()
    local out, state = dir .. "/resumed.jsonl", dir .. "/state"
    local argv = { "zenlayer", "logs", "--since", range.since, "--until", range["until"], "--output", out,
                   "--resume", state, "--page-size", "100" }
    emu.fault{ path = "/api/v2/zls", delay = 0.1 }   -- slow pages: the kill lands mid-range
    local before = vendors.state().zenlayer.pages or 0
    local pidfile = dir .. "/pid"
    shell.check(cli.command(argv, env) .. " >/dev/null 2>&1 & echo $! > " .. shell.quote(pidfile))
    local pid = shell.read_file(pidfile):match("%d+")
    local pages
    for _ = 1, 200 do
      pages = (vendors.state().zenlayer.pages or 0) - before
      if pages >= 25 then break end
      shell.run("sleep 0.1")
    end
    shell.run("kill -9 " .. pid)
    shell.run("sleep 0.2")
    assert.is_true(pages >= 25 and pages < 90, "killed after " .. tostring(pages) .. " pages")
    assert.is_not_nil(util.size(state), "no state file after the kill")
    assert.is_nil(util.size(out))
    emu.reset()
    local start = vendors.state().zenlayer.pages or 0
    local r = cli.run(argv, env)
    assert.are.equal(0, r.code, r.stderr)
    -- it went on from the saved page: far fewer pages than the ~100 of the whole range
    assert.is_true((vendors.state().zenlayer.pages or 0) - start <= 100 - 20)
    assert.are.same(expected, decode_lines(shell.read_file(out)))
    assert.is_nil(util.size(state))
    local again = cli.run(argv, env)   -- a repeated run after success: the whole range again, same records
    assert.are.equal(0, again.code, again.stderr)
    assert.are.same(expected, decode_lines(shell.read_file(out)))
  end)
end)
