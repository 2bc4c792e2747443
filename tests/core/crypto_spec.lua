-- loghaul.core crypto: SHA-256, HMAC-SHA256, hex, base64, sha256_file, random.
local core = require "loghaul.core"
local shell = require "helpers.shell"
local util = require "helpers.util"

local function unhex(h)
  return (h:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end))
end

local write_file = shell.write_file

describe("core.sha256", function()
  it("matches the FIPS 180-2 vectors", function()
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.hex(core.sha256("")))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", core.hex(core.sha256("abc")))
  end)

  it("returns 32 raw bytes", function()
    local d = core.sha256("abc")
    assert.equal(32, #d)
    assert.equal(unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), d)
  end)

  it("hashes embedded zero bytes", function()
    assert.not_equal(core.sha256("a"), core.sha256("a\0"))
    assert.equal(util.sha256_hex("a\0"), core.hex(core.sha256("a\0")))
    assert.equal(util.sha256_hex("\0x\0"), core.hex(core.sha256("\0x\0")))
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() core.sha256({}) end)
    assert.has_error(function() core.sha256() end)
  end)
end)

describe("core.hmac_sha256", function()
  -- RFC 4231 section 4
  it("test case 1", function()
    assert.equal("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      core.hex(core.hmac_sha256(string.rep("\11", 20), "Hi There")))
  end)

  it("test case 2", function()
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      core.hex(core.hmac_sha256("Jefe", "what do ya want for nothing?")))
  end)

  it("test case 6 (key longer than the block)", function()
    assert.equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      core.hex(core.hmac_sha256(string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First")))
  end)

  it("accepts an empty key and returns 32 bytes", function()
    local m = core.hmac_sha256("", "")
    assert.equal(32, #m)
    assert.equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", core.hex(m))
  end)

  it("raises on a missing message", function()
    assert.has_error(function() core.hmac_sha256("key") end)
  end)
end)

describe("core.hex", function()
  it("encodes every byte value in lower case", function()
    assert.equal("", core.hex(""))
    assert.equal("00017fabff", core.hex(string.char(0, 1, 127, 171, 255)))
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local h = core.hex(table.concat(all))
    assert.equal(512, #h)
    assert.equal(table.concat(all), unhex(h))
    assert.is_nil(h:find("[^0-9a-f]"))
  end)

  it("handles inputs longer than its internal chunk", function()
    local s = string.rep("\222\173\190\239", 1000)
    assert.equal(string.rep("deadbeef", 1000), core.hex(s))
  end)
end)

describe("core.base64", function()
  local vectors = { -- RFC 4648 section 10
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
  }

  it("encodes the RFC 4648 vectors", function()
    for _, v in ipairs(vectors) do
      assert.equal(v[2], core.base64_encode(v[1]))
    end
  end)

  it("decodes the RFC 4648 vectors to their exact length", function()
    for _, v in ipairs(vectors) do
      assert.equal(v[1], core.base64_decode(v[2]))
    end
  end)

  it("round-trips 1000 random binary strings", function()
    for i = 1, 1000 do
      local s = core.random(math.random(0, 2100)) -- also crosses the 768/1024-byte chunk edges
      local e = core.base64_encode(s)
      assert.equal(4 * math.ceil(#s / 3), #e, "encoded length, string " .. i)
      assert.equal(s, core.base64_decode(e), "round trip, string " .. i)
    end
  end)

  it("returns nil and an invalid error on bad input", function()
    local bad_inputs = { "Zg", "Zg=", "Zm9v!mFy", "Zm9v YmFy", "Zm9vYmFy\n", "=Zm9", "Zm=v", "Z===", "Zh==", "Zm9=",
      " Zm9vYmF", "Zm9vYmF\n", "Zm 9", "Zm9v-_==" }
    for _, bad in ipairs(bad_inputs) do
      local r, err = core.base64_decode(bad)
      assert.is_nil(r, bad)
      assert.is_table(err, bad)
      assert.equal("invalid", err.kind, bad)
      assert.matches("^base64_decode: ", err.message)
    end
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() core.base64_encode(nil) end)
    assert.has_error(function() core.base64_decode({}) end)
  end)
end)

describe("core.sha256_file", function()
  local dir

  setup(function()
    dir = shell.tmpdir("loghaul-crypto")
  end)

  teardown(function()
    shell.rmdir(dir)
  end)

  it("agrees with sha256sum on a 3 MiB + 7 byte file", function()
    local path = dir .. "/big.bin"
    local chunk = core.random(65536)
    write_file(path, string.rep(chunk, 48) .. "1234567")
    local want = util.sha256sum(path)
    assert.equal(64, #want)
    assert.equal(want, core.sha256_file(path))
    assert.equal(core.hex(core.sha256(string.rep(chunk, 48) .. "1234567")), core.sha256_file(path))
  end)

  it("hashes an empty file", function()
    local path = dir .. "/empty"
    write_file(path, "")
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.sha256_file(path))
    assert.equal(util.sha256sum(path), core.sha256_file(path))
  end)

  it("returns nil and an io error for a missing file", function()
    local path = dir .. "/no such file"
    local r, err = core.sha256_file(path)
    assert.is_nil(r)
    assert.is_table(err)
    assert.equal("io", err.kind)
    assert.equal("ENOENT", err.code)
    assert.is_truthy(err.message:find(path, 1, true))
  end)

  it("returns an io error for a directory", function()
    local r, err = core.sha256_file(dir)
    assert.is_nil(r)
    assert.equal("io", err.kind)
    assert.equal("EISDIR", err.code)
  end)

  it("raises on a non-string path", function()
    assert.has_error(function() core.sha256_file(nil) end)
  end)

  it("refuses a path with a NUL byte instead of hashing the file before it", function()
    local path = dir .. "/prefix"
    write_file(path, "the file the text before the NUL names")
    local ok, err = pcall(core.sha256_file, path .. "\0.part")
    assert.is_false(ok)
    assert.matches("path contains a NUL byte", err)
  end)
end)

describe("core.random", function()
  it("returns exactly n bytes", function()
    for _, n in ipairs { 0, 1, 16, 32, 1000, 1048576 } do
      assert.equal(n, #core.random(n))
    end
  end)

  it("differs between two calls", function()
    assert.not_equal(core.random(32), core.random(32))
  end)

  it("raises outside 0 .. 1 MiB and on a non-number", function()
    assert.has_error(function() core.random(-1) end)
    assert.has_error(function() core.random(1048577) end)
    assert.has_error(function() core.random("x") end)
  end)
end)
