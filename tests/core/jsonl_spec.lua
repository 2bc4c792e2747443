-- core.jsonl_writer (src/jsonl.c): pages validated whole, then each element of an array
-- written as one line to <path>.part; commit renames over the final name, abort and the
-- garbage collector remove the .part; a resumable .part is truncated to its saved length.
local core = require "loghaul.core"
local shell = require "helpers.shell"
local util = require "helpers.util"

local PAGE = '{"requestId":"r","response":{"dataSet":[ {"n":1691028715371000123, "s":"a\\u00e9"} ,'
  .. '{"n":2,"opsTime":"2023-08-01T00:00:00Z"},[],"x"],"cursor":[1]}}'
local LINES = '{"n":1691028715371000123, "s":"a\\u00e9"}\n{"n":2,"opsTime":"2023-08-01T00:00:00Z"}\n[]\n"x"\n'
local DS = { "response", "dataSet" }

describe("core.jsonl_writer", function()
  local dir
  before_each(function() dir = util.tmpdir() end)
  after_each(function() util.rmdir(dir) end)

  it("writes each element's raw bytes and a newline to .part, then renames on commit", function()
    local out = dir .. "/a.jsonl"
    local w = assert(core.jsonl_writer(out))
    local n, bytes, total = w:write_page(PAGE, DS)
    assert.equal(4, n)
    assert.equal(#LINES, bytes)
    assert.equal(4, total)
    assert.same({ "a.jsonl.part" }, util.ls(dir))
    assert.same({ 0, 0, 0 }, { w:write_page('{"response":{}}', DS) }) -- no records: nothing
    assert.equal(out, w:commit())
    assert.equal(LINES, shell.read_file(out))
    assert.same({ "a.jsonl" }, util.ls(dir))
    assert.equal(tonumber("600", 8), core.stat(out).mode)
    assert.equal(#LINES, (w:size()))
    assert.has_error(function() w:write_page(PAGE, DS) end)
  end)

  it("refuses a malformed page or a non-array before writing any of it", function()
    local out = dir .. "/b.jsonl"
    local w = assert(core.jsonl_writer(out))
    local v, err = w:write_page(PAGE:sub(1, -3), DS)
    assert.is_nil(v)
    assert.matches("malformed JSON at byte offset", err)
    v, err = w:write_page('{"response":{"dataSet":{}}}', DS)
    assert.is_nil(v)
    assert.matches("not an array", err)
    assert.equal("", shell.read_file(out .. ".part"))
    w:abort()
    assert.same({}, util.ls(dir))
  end)

  it("abort and the garbage collector remove the .part; close keeps it", function()
    local w = assert(core.jsonl_writer(dir .. "/c.jsonl"))
    assert(w:write_page(PAGE, DS))
    w = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.same({}, util.ls(dir))
    w = assert(core.jsonl_writer(dir .. "/c.jsonl"))
    assert(w:write_page(PAGE, DS))
    w:close()
    assert.same({ "c.jsonl.part" }, util.ls(dir))
  end)

  it("resume_at truncates the .part to the saved length; a shorter .part is refused", function()
    local out = dir .. "/d.jsonl"
    shell.write_file(out .. ".part", LINES .. '{"half')
    local w = assert(core.jsonl_writer(out, #LINES))
    assert.equal(#LINES, (w:size()))
    assert(w:write_page(PAGE, DS))
    assert(w:commit())
    assert.equal(LINES .. LINES, shell.read_file(out))
    shell.write_file(out .. ".part", "short")
    local v, err = core.jsonl_writer(out, 100)
    assert.is_nil(v)
    assert.equal("io", err.kind)
    assert.equal("BAD_RESUME", err.code)
  end)

  it("never writes through a symlink, never replaces a directory", function()
    local out = dir .. "/e.jsonl"
    shell.write_file(dir .. "/victim", "keep")
    assert(os.execute("ln -s victim " .. out .. ".part"))
    local v, err = core.jsonl_writer(out)
    assert.is_nil(v)
    assert.equal("ELOOP", err.code)
    assert.equal("keep", shell.read_file(dir .. "/victim"))
    os.remove(out .. ".part")
    assert(os.execute("mkdir " .. out))
    local w = assert(core.jsonl_writer(out))
    assert(w:write_page(PAGE, DS))
    v, err = w:commit()
    assert.is_nil(v)
    assert.equal("EISDIR", err.code)
  end)

  it("applies the boundary filter of a cursor loop", function()
    local w = assert(core.jsonl_writer(dir .. "/f.jsonl"))
    local skip = { ['{"n":2,"opsTime":"2023-08-01T00:00:00Z"}'] = 1 }
    local n, _, total = w:write_page(PAGE, DS, { key = "opsTime", first = "2023-08-01T00:00:00", skip = skip })
    assert.equal(3, n)
    assert.equal(4, total)
    assert.same({}, skip)
    assert(w:commit())
    assert.equal('{"n":1691028715371000123, "s":"a\\u00e9"}\n[]\n"x"\n', shell.read_file(dir .. "/f.jsonl"))
  end)
end)
