-- The core's JSON scanner (src/json.c) against lua-cjson, configured as loghaul.json does:
-- whatever both accept is sliced identically (raw texts decode to what cjson decodes); what
-- is malformed is refused with the byte offset; what cjson alone lets through (numbers strtod
-- takes, raw control bytes, a NUL after the value) is refused on purpose, and loghaul.json
-- refuses it too. fuzz/json_fuzz.c checks the same agreement on generated inputs.
local core = require "loghaul.core"
local json = require "loghaul.json"
local cjson = require("cjson.safe").new()
cjson.decode_max_depth(64)
cjson.decode_invalid_numbers(false)

local function deep_equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- inputs both must accept
local GOOD = {
  "0", "-0", "1", "-1", "0.5", "-0.0e-0", "1E5", "1e+5", "1.5E-2", "123456789012345678901234567890",
  "1691028715371000123", "-9223372036854775808", "1e999", "true", "false", "null", '""',
  '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\u0000"', '"\\u00e9\\uD83D\\uDE00"', '"é\226\130\172"',
  "[]", "{}", " \t\r\n[ ] \n", "[1,[2,[3,{}]],{\"a\":[]}]", '{"a":1,"a":2}', '{"":0}',
  '{"a\\u0062":{"c":[null,true]}}', '[{"x":"]}\\"{["}]', string.rep("[", 64) .. string.rep("]", 64),
  '{"response":{"requestId":"r","dataSet":[{"a":1},2,"s",[3]],"cursor":[1691028715371000123]}}',
}

-- inputs both must refuse
local BAD = {
  "", " ", "[", "]", "[1,]", "[,1]", '{"a":1,}', '{"a"}', '{"a" 1}', "{1:2}", "{'a':1}", "01", "-01",
  "-", "+1", ".5", "1e", "1e+", "0x1", "inf", "-inf", "nan", "Infinity", "tru", "nul", "truex", "[1 2]",
  "1 2", '"abc', '"\\x"', '"\\u12"', '"\\u12g4"', '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"',
  "\239\187\191[1]", string.rep("[", 65) .. string.rep("]", 65), "[1]]", "{}}", '{"a":1}{',
}

-- cjson takes these; RFC 8259 and the scanner do not (nor does loghaul.json.decode)
local LAX = { "1.", "-.5", "1.e3", "[1.]", '"a\1b"', '"tab\there"', "[1]\0garbage", "true\0" }

describe("core JSON scanner", function()
  it("accepts what cjson accepts, with the same slices", function()
    for _, s in ipairs(GOOD) do
      local v = cjson.decode(s)
      assert.is_not_nil(v, "cjson refuses " .. s)
      assert.is_true(core.json_valid(s), s)
      assert.is_true(deep_equal(v, cjson.decode((core.json_at(s, {})))), s)
      local list, n = core.json_array(s, {})
      if type(v) == "table" and list then
        assert.equal(#v, n, s)
        for i = 1, n do assert.is_true(deep_equal(v[i], cjson.decode(list[i])), s .. " [" .. i .. "]") end
      elseif type(v) == "table" then
        for k, x in pairs(v) do
          assert.is_true(deep_equal(x, cjson.decode((core.json_at(s, { k })))), s .. " ." .. k)
        end
      end
    end
  end)

  it("refuses what cjson refuses, naming the byte offset", function()
    for _, s in ipairs(BAD) do
      assert.is_nil(cjson.decode(s), "cjson accepts " .. s)
      local ok, err = core.json_valid(s)
      assert.is_false(ok, s)
      assert.matches("^malformed JSON at byte offset %d+: ", err)
      local v, e2 = core.json_at(s, { "a" })
      assert.is_nil(v)
      assert.equal(err, e2)
    end
    local _, err = core.json_valid('{"a":[1,2,x]}')
    assert.equal("malformed JSON at byte offset 10: unexpected byte", err)
    _, err = core.json_valid("[1,2")
    assert.equal("malformed JSON at byte offset 4: the text ends inside a value", err)
    _, err = core.json_valid(string.rep("[", 65))
    assert.equal("malformed JSON at byte offset 64: nested too deeply (more than 64 levels)", err)
  end)

  it("refuses what only cjson's laxness lets through, and so does loghaul.json", function()
    for _, s in ipairs(LAX) do
      assert.is_not_nil(cjson.decode(s), "cjson got strict about " .. s)
      assert.is_false(core.json_valid(s), s)
      local v, err = json.decode(s)
      assert.is_nil(v, s)
      assert.matches("byte offset", err)
    end
  end)

  it("keeps 19-digit integers byte-exact (cursor, elements, members)", function()
    local s = '{"response":{"cursor":[1691028715371000123, 9223372036854775807],'
      .. '"dataSet":[1691028715371000123,-9223372036854775808,12345678901234567890123]}}'
    assert.equal("[1691028715371000123, 9223372036854775807]", core.json_at(s, { "response", "cursor" }))
    local list, n = core.json_array(s, { "response", "dataSet" })
    assert.equal(3, n)
    assert.same({ "1691028715371000123", "-9223372036854775808", "12345678901234567890123" }, list)
  end)

  it("finds keys written with escapes, the last of repeated keys, and nothing through arrays", function()
    local s = '{"a\\u0062":1,"ab":2,"x":{"y":[{"z":3}]},"u":{"\\u00e9":4,"\\ud83d\\ude00":5}}'
    assert.equal("2", core.json_at(s, { "ab" }))
    assert.equal("4", core.json_at(s, { "u", "é" }))
    assert.equal("5", core.json_at(s, { "u", "\240\159\152\128" }))
    assert.is_false(core.json_at(s, { "x", "y", "z" }))
    assert.is_false(core.json_at(s, { "ab", "c" }))
    local a, b, c = core.json_at(s, { "x" }, { "x", "y" }, { "nope" })
    assert.equal('{"y":[{"z":3}]}', a)
    assert.equal('[{"z":3}]', b)
    assert.is_false(c)
  end)

  it("json_array: false when absent or null, an error when not an array", function()
    assert.is_false(core.json_array('{"a":null}', { "a" }))
    assert.is_false(core.json_array('{"b":[]}', { "a" }))
    local v, err = core.json_array('{"a":{"b":1}}', { "a" })
    assert.is_nil(v)
    assert.matches("an object, not an array", err)
    local list, n = core.json_array('{"a":[]}', { "a" })
    assert.same({}, list)
    assert.equal(0, n)
  end)

  it("json_array's boundary filter skips a multiset and counts what it keeps", function()
    local r1 = '{"opsTime":"2023-08-01T00:00:00.100Z","n":1}'
    local r2 = '{"opsTime":"2023-08-01T00:00:00.200Z","n":2}'
    local r3 = '{"opsTime":"2023-08-02T00:00:00.000Z","n":3}'
    local s = "[" .. table.concat({ r3, r1, r1, r2, r1 }, ",") .. "]"
    local skip, seen = { [r1] = 2 }, {}
    local f = { key = "opsTime", first = "2023-08-01T00:00:00", last = "2023-08-02T00:00:00", skip = skip, seen = seen }
    local list, n = core.json_array(s, {}, f)
    assert.same({ r3, r2, r1 }, list)
    assert.equal(5, n)
    assert.same({}, skip)
    assert.same({ [r3] = 1 }, seen)
    f.skip, f.indices = { [r1] = 1 }, true
    assert.same({ 2 }, (core.json_array(s, {}, f)))
  end)

  it("json_normalize: null becomes absent, whole numbers integers where Lua has them", function()
    local v = core.json_normalize(cjson.decode('{"a":null,"b":[1,2.0,2.5,{"c":null,"d":-0.0}],"e":1e300}'))
    assert.is_nil(v.a)
    assert.is_nil(v.b[4].c)
    assert.equal(2.5, v.b[3])
    if math.type then
      assert.equal("integer", math.type(v.b[2]))
      assert.equal("integer", math.type(v.b[4].d))
      assert.equal("float", math.type(v.e))
      assert.equal("float", math.type(v.b[3]))
    end
    assert.is_nil(core.json_normalize(cjson.null))
    -- tables deeper than 64 levels are not walked (cjson never decodes them)
    local deep = { x = cjson.null }
    for _ = 1, 69 do deep = { x = deep, y = cjson.null } end
    core.json_normalize(deep)
    local t, depth = deep, 1
    while type(t.x) == "table" do
      if depth <= 64 then assert.is_nil(t.y, depth) else assert.equal(cjson.null, t.y, depth) end
      t, depth = t.x, depth + 1
    end
    assert.equal(70, depth)
    assert.equal(cjson.null, t.x)
  end)
end)
