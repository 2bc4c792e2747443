local json = require "loghaul.json"

-- json.at replaced the Lua scanner json.raw_at: the same cases, through the core's scanner
-- (absent is now `false`, malformed is nil and a message naming the byte offset)
describe("loghaul.json.at", function()
  it("keeps a 19-digit cursor as the server wrote it", function()
    local body = '{"requestId":"r1","response":{"requestId":"r1","dataSet":[],"cursor":[1691028715371000123]}}'
    assert.equal("[1691028715371000123]", json.at(body, { "response", "cursor" }))
  end)

  it("is not fooled by keys, brackets and escapes inside strings", function()
    local body = [[{"response":{"dataSet":[{"request":"{\"cursor\":[1]}","x":"a\"],}b\\"}],]]
      .. [["cursor" : [ 9007199254740993 , "a]b\"c" ] },"cursor":[2]}]]
    local a, b = json.at(body, { "response", "cursor" }, { "cursor" })
    assert.equal([=[[ 9007199254740993 , "a]b\"c" ]]=], a)
    assert.equal("[2]", b)
  end)

  it("tells absent (false) from malformed (nil and the byte offset)", function()
    assert.is_false(json.at('{"response":{"dataSet":[]}}', { "response", "cursor" }))
    assert.is_false(json.at('[1,2]', { "cursor" }))
    local v, err = json.at('{"response":{"cursor":[1', { "response", "cursor" })
    assert.is_nil(v)
    assert.matches("byte offset 24", err)
    -- a well-formed cursor in a page cut later is not taken: the whole text is checked
    v, err = json.at('{"response":{"cursor":[1],"dataSet":[{"a":', { "response", "cursor" })
    assert.is_nil(v)
    assert.matches("byte offset %d+", err)
    assert.has_error(function() json.at(nil, { "cursor" }) end)
  end)

  it("takes the last of repeated keys, as lua-cjson does", function()
    assert.equal("[2]", json.at('{"cursor":[1],"cursor":[2]}', { "cursor" }))
  end)
end)

describe("loghaul.json", function()
  it("accepts exactly one JSON value", function()
    assert.is_true(json.is_single_value(" [1691028715371000123] "))
    assert.is_false(json.is_single_value('1],"size":5,"x":['))
    assert.is_false(json.is_single_value("[1] [2]"))
    assert.is_false(json.is_single_value("[1"))
  end)

  it("gives whole numbers as integers where Lua has them", function()
    local v = json.decode('{"total_number":40,"p":30.5,"big":9007199254740992,"a":[1,2.0]}')
    assert.equal(40, v.total_number)
    assert.equal("40", tostring(v.total_number))
    assert.equal("30.5", tostring(v.p))
    assert.equal(9007199254740992, v.big)
    assert.equal("1", tostring(v.a[1]))
    assert.equal("2", tostring(v.a[2]))
  end)

  it("decodes null as absent", function()
    local v = json.decode('{"a":null,"b":[1,{"c":null}]}')
    assert.is_nil(v.a)
    assert.is_nil(v.b[2].c)
  end)
end)
