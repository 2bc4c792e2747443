local download = require "loghaul.download"
local client = require "loghaul.client"
local envelope = require "loghaul.envelope"
local fake = require "vendors.fake"
local core = require "loghaul.core"
local util = require "helpers.util"

local function new_client(script)
  local opts, session, clock = fake.opts({ base_url = "https://files.test" }, script)
  return client.new(opts, { vendor = "test" }), session, clock
end

-- by sha256sum, not loghaul: the digest under test must not vouch for itself
local sha = util.sha256_hex

describe("download.safe_name", function()
  it("reduces paths to a base name that cannot escape dest", function()
    assert.equal("x", download.safe_name("../x"))
    assert.equal("passwd", download.safe_name("/etc/passwd"))
    assert.equal("evil.tar", download.safe_name("..\\..\\evil.tar"))
    assert.equal("SN1-dump.tar.gz", download.safe_name("SN1-dump.tar.gz"))
  end)

  it("refuses NUL, control characters, empty and dot names", function()
    for _, bad in ipairs{ "a\0b", "a\nb", "\27[31m", "", ".", "..", "dir/", "../", string.rep("a", 256) } do
      assert.is_nil(download.safe_name(bad), bad)
    end
    assert.is_nil(download.safe_name(nil))
  end)
end)

describe("download.content_disposition_name", function()
  it("reads the forms servers send", function()
    assert.equal("SN1-dump.tar.gz", download.content_disposition_name("attachment; filename=SN1-dump.tar.gz"))
    assert.equal("a b.tar", download.content_disposition_name('attachment; filename="a b.tar"'))
    assert.equal('q"x.tar', download.content_disposition_name('attachment; filename="q\\"x.tar"'))
    assert.equal("ü.tar", download.content_disposition_name("attachment; filename*=UTF-8''%C3%BC.tar; filename=u.tar"))
    assert.equal("../../x", download.content_disposition_name('attachment; FILENAME="../../x"'))
    assert.is_nil(download.content_disposition_name("attachment"))
  end)
end)

describe("download.fetch", function()
  local dir
  before_each(function() dir = fake.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  local function fetch(c, dest, extra)
    local spec = { operation = "get", url = c.base_url .. "/f", decode = envelope.huawei, dest = dest }
    for k, v in pairs(extra or {}) do spec[k] = v end
    return download.fetch(c, spec)
  end

  it("writes to <path>.part, renames when complete, reports path, bytes, sha256", function()
    local data = string.rep("0123456789", 1000)
    local c, session = new_client{ { status = 200, file = data } }
    local res = assert(fetch(c, dir .. "/out.tar.gz"))
    assert.same({ path = dir .. "/out.tar.gz", bytes = #data, sha256 = sha(data) }, res)
    assert.equal(dir .. "/out.tar.gz.part", session.requests[1].output)
    assert.equal(data, fake.read(res.path))
    assert.same({ "out.tar.gz" }, fake.ls(dir))
  end)

  it("runs download transfers with no total time limit unless timeout was set", function()
    local c, session = new_client{ { status = 200, file = "abc" } }
    assert(fetch(c, dir .. "/a"))
    assert.equal(0, session.requests[1].timeout) -- the session's low-speed abort still applies
    local opts, session2 = fake.opts({ base_url = "https://files.test", timeout = 30 },
                                     { { status = 200, file = "abc" } })
    assert(fetch(client.new(opts, { vendor = "test" }), dir .. "/b"))
    assert.equal(30, session2.requests[1].timeout)
    -- API calls keep the session's default limit
    local c3, session3 = new_client{ { status = 200, body = "{}" } }
    assert(c3:call{ operation = "api", url = c3.base_url .. "/x", decode = envelope.huawei })
    assert.is_nil(session3.requests[1].timeout)
  end)

  it("takes the name from Content-Disposition into a dest directory, made safe", function()
    local c = new_client{ { status = 200, file = "abc",
      headers = { ["Content-Disposition"] = 'attachment; filename="../../etc/SN9-dump.tar.gz"' } } }
    local res = assert(fetch(c, dir .. "/sub/"))
    assert.equal(dir .. "/sub/SN9-dump.tar.gz", res.path)
    assert.same({ "SN9-dump.tar.gz" }, fake.ls(dir .. "/sub"))
  end)

  it("keeps the first answer's Content-Disposition name when a resumed 206 omits it", function()
    local data = string.rep("x", 10) .. string.rep("y", 10)
    local c, session = new_client{
      { status = 200, file = data, cut = 10, headers = { ["Content-Length"] = "20", ETag = '"e1"',
        ["Content-Disposition"] = "attachment; filename=SN7-dump.tar.gz" } },
      { status = 206, file = data:sub(11), headers = { ETag = '"e1"', ["Content-Range"] = "bytes 10-19/20" } },
    }
    local res = assert(fetch(c, dir .. "/", { default_name = "fallback.tar.gz" }))
    assert.equal(10, session.requests[2].resume_from)
    assert.equal(dir .. "/SN7-dump.tar.gz", res.path)
    assert.equal(data, fake.read(res.path))
    assert.same({ "SN7-dump.tar.gz" }, fake.ls(dir))
  end)

  it("refuses a hostile name and leaves nothing behind", function()
    local c = new_client{ { status = 200, file = "abc",
      headers = { ["Content-Disposition"] = 'attachment; filename="a\1b"' } } }
    local res, err = fetch(c, dir .. "/")
    assert.is_nil(res)
    assert.equal("UNSAFE_FILE_NAME", err.code)
    assert.same({}, fake.ls(dir))
  end)

  it("resumes with resume_from after a cut connection", function()
    local data = string.rep("x", 5000) .. string.rep("y", 5000)
    local c, session, clock = new_client{
      { status = 200, file = data, cut = 5000, headers = { ["Content-Length"] = "10000" } },
      function(req)
        assert.equal(5000, req.resume_from)
        local f = assert(io.open(req.output, "ab"))
        f:write(data:sub(5001))
        f:close()
        return { status = 206, headers = { ["content-range"] = "bytes 5000-9999/10000" } }
      end,
    }
    local res = assert(fetch(c, dir .. "/f.bin"))
    assert.equal(10000, res.bytes)
    assert.equal(sha(data), res.sha256)
    assert.equal(2, #session.requests)
    assert.equal(1, #clock.sleeps)
    assert.same({ "f.bin" }, fake.ls(dir))
  end)

  it("never writes an error answer to the final name and keeps the older file", function()
    local old = dir .. "/SN1-dump.tar.gz"
    local f = assert(io.open(old, "wb")) f:write("yesterday") f:close()
    local c = new_client{ { status = 404, body = '{"error_code":"CDC.404","error_msg":"no such export"}' } }
    local res, err = fetch(c, old)
    assert.is_nil(res)
    assert.equal("api", err.kind)
    assert.equal("CDC.404", err.code)
    assert.equal(404, err.status)
    assert.equal("yesterday", fake.read(old))
    assert.same({ "SN1-dump.tar.gz" }, fake.ls(dir))
  end)

  it("treats a JSON errcode body where bytes were expected as not the file", function()
    local c = new_client{ { status = 200, file = '{"errcode":10004,"errmsg":"TOKEN EXPIRED"}',
                            headers = { ["Content-Type"] = "application/json" } } }
    local res, err = fetch(c, dir .. "/x.tar")
    assert.is_nil(res)
    assert.equal("auth", err.kind)
    assert.equal("10004", err.code)
    assert.same({}, fake.ls(dir))
  end)

  it("replaces an older file of the same name only with the complete new one", function()
    local path = dir .. "/same.tar.gz"
    local f = assert(io.open(path, "wb")) f:write("old bytes") f:close()
    local c = new_client{ { status = 200, file = "new bytes, complete" } }
    assert(fetch(c, path))
    assert.equal("new bytes, complete", fake.read(path))
    assert.same({ "same.tar.gz" }, fake.ls(dir))
  end)

  -- Fetches with a three-answer script whose third request must start over: exactly three
  -- requests, the third without resume_from, and the file is the third answer's bytes.
  local function fetch_starting_over(script)
    local c, session = new_client(script)
    local res = assert(fetch(c, dir .. "/f"))
    assert.equal(script[3].file, fake.read(res.path))
    assert.equal(3, #session.requests)
    assert.is_nil(session.requests[3].resume_from)
    return session
  end

  it("starts over when a resumed file changed size on the server", function()
    -- the first size is learnt from the cut 200's Content-Length
    local session = fetch_starting_over{
      { status = 200, file = string.rep("a", 100), cut = 40, headers = { ["Content-Length"] = "100" } },
      { status = 206, file = string.rep("b", 60), headers = { ["Content-Range"] = "bytes 40-199/200" } },
      { status = 200, file = string.rep("c", 200) },
    }
    assert.equal(40, session.requests[2].resume_from)
  end)

  it("never takes the expected size from an error answer's body", function()
    -- nothing to check a resumed answer against: the third request starts over
    fetch_starting_over{
      -- a 503 whose 50-byte error page the core reports through the progress callback
      function(req)
        req.progress(50, 0, 0, 0)
        return { status = 503, headers = {}, body = string.rep("e", 50) }
      end,
      -- then the file, with no size and no validator, cut after 40 bytes
      { status = 200, file = string.rep("a", 100), cut = 40 },
      { status = 200, file = string.rep("a", 100) },
    }
  end)

  it("starts over when a resume without validator ends past the size the file had", function()
    local session = fetch_starting_over{
      { status = 200, file = string.rep("a", 100), cut = 40, headers = { ["Content-Length"] = "100" } },
      -- no validator to send as If-Range, and a Content-Range without the total: only the size tells
      { status = 206, file = string.rep("b", 160), headers = { ["Content-Range"] = "bytes 40-199/*" } },
      { status = 200, file = string.rep("c", 200) },
    }
    assert.equal(40, session.requests[2].resume_from)
  end)

  it("does not hand back a file cut short by a 206 that ends before the file does", function()
    local data = string.rep("0123456789", 2)
    local c, session = new_client{
      { status = 200, file = data, cut = 5, headers = { ["Content-Length"] = "20", ETag = '"e1"' } },
      { status = 206, file = data:sub(6, 10), headers = { ETag = '"e1"', ["Content-Range"] = "bytes 5-9/20" } },
      { status = 206, file = data:sub(11), headers = { ETag = '"e1"', ["Content-Range"] = "bytes 10-19/20" } },
    }
    local res = assert(fetch(c, dir .. "/f"))
    assert.equal(20, res.bytes)
    assert.equal(data, fake.read(res.path))
    assert.equal(3, #session.requests)
    assert.equal(10, session.requests[3].resume_from)
    assert.same({ "f" }, fake.ls(dir))
  end)

  it("reports why hashing the downloaded file failed, in words, and leaves nothing", function()
    local failing = setmetatable({ sha256_file = function(p)
      return nil, { kind = "io", code = "EIO", message = p .. ": Input/output error" }
    end }, { __index = core })
    local opts = fake.opts({ base_url = "https://files.test", _core = failing }, { { status = 200, file = "abc" } })
    local c = client.new(opts, { vendor = "test" })
    local res, err = fetch(c, dir .. "/g")
    assert.is_nil(res)
    assert.equal("io", err.kind)
    assert.matches("Input/output error", err.message, 1, true)
    assert.not_matches("table: ", err.message, 1, true)
    assert.same({}, fake.ls(dir))
  end)

  it("removes a leftover .part of an earlier run instead of splicing it", function()
    local f = assert(io.open(dir .. "/f.part", "wb")) f:write("stale") f:close()
    local c, session = new_client{ { status = 200, file = "fresh" } }
    local res = assert(fetch(c, dir .. "/f"))
    assert.is_nil(session.requests[1].resume_from)
    assert.equal("fresh", fake.read(res.path))
  end)
end)
