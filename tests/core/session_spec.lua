-- loghaul.core sessions against the local emulator, over TLS: what a user of the core sees.
local core = require "loghaul.core"
local cjson = require "cjson"
local gettime = require("socket").gettime
local emu = require "helpers.emulator"
local util = require "helpers.util"
local shell = require "helpers.shell"

local SMALL = os.getenv("LOGHAUL_TEST_SMALL") ~= nil
local MiB = 1024 * 1024

describe("core.session", function()
  local e, s, tmp

  setup(function()
    e = emu.start()
    tmp = util.tmpdir()
  end)

  teardown(function()
    if s then s:close() end
    util.rmdir(tmp)
  end)

  before_each(function()
    emu.reset()
    s = core.session{ ca_file = e.ca_file, timeout = 30 }
  end)

  after_each(function()
    s:close()
  end)

  local function get_json(path, req)
    req = req or {}
    req.url = e.base_url .. path
    local res, err = s:request(req)
    assert.is_nil(err)
    return cjson.decode(res.body), res
  end

  describe("keep-alive", function()
    it("sends 100 requests over one connection", function()
      local before = emu.stats().connections
      for i = 1, 100 do
        local res = assert(s:request{ url = e.base_url .. "/echo?i=" .. i })
        assert.equal(200, res.status)
        if i > 1 then assert.is_true(res.reused) end
      end
      assert.equal(1, emu.stats().connections - before)
    end)

    it("opens a new connection per session", function()
      local before = emu.stats().connections
      for _ = 1, 3 do
        local other = core.session{ ca_file = e.ca_file }
        assert(other:request{ url = e.base_url .. "/echo" })
        other:close()
      end
      assert.equal(3, emu.stats().connections - before)
    end)
  end)

  describe("requests", function()
    it("sends the method, headers and body, and lower-cases response headers", function()
      local body = string.rep("x", 1000) .. "\0binary"
      local echo, res = get_json("/echo?a=1", { method = "PUT", body = body,
        headers = { ["X-Custom"] = "value 1", ["Content-Type"] = "text/plain" } })
      assert.equal("PUT", echo.method)
      assert.equal("value 1", echo.headers["x-custom"])
      assert.equal(#body, echo.body_bytes)
      assert.equal(util.sha256_hex(body), echo.body_sha256)
      assert.equal("1", echo.args.a)
      assert.is_string(res.headers["content-type"])
      assert.is_nil(res.headers["Content-Type"])
      assert.equal(200, res.status)
      assert.equal(math.type and "integer" or "number", math.type and math.type(res.status) or type(res.status))
    end)

    it("defaults to GET, and to POST when there is a body", function()
      assert.equal("GET", (get_json("/echo")).method)
      assert.equal("POST", (get_json("/echo", { body = "{}" })).method)
      assert.equal("DELETE", (get_json("/echo", { method = "DELETE" })).method)
    end)

    it("streams a request body from a file", function()
      local path = tmp .. "/body.bin"
      util.write_random(path, 3 * MiB + 5)
      local echo = get_json("/echo", { body_file = path })
      assert.equal(3 * MiB + 5, echo.body_bytes)
      assert.equal(util.sha256sum(path), echo.body_sha256)
    end)

    it("follows a redirect when asked, and reports the final URL", function()
      s:close()
      s = core.session{ ca_file = e.ca_file, timeout = 30, follow_redirects = true }
      local echo, res = get_json("/redirect?to=/echo%3Ffrom%3Dredirect")
      assert.equal("redirect", echo.args.from)
      assert.matches("/echo%?from=redirect$", res.url)
    end)

    it("returns a non-2xx answer as a result, with its body", function()
      local res = assert(s:request{ url = e.base_url .. "/status/503?retry_after=7" })
      assert.equal(503, res.status)
      assert.equal("7", res.headers["retry-after"])
      assert.is_true(#res.body > 0)
    end)
  end)

  describe("multipart", function()
    it("streams file parts and sends data parts, as the server receives them", function()
      local path = tmp .. "/OELOG_1_10.0.0.1_20250226162127.zip"
      local size = SMALL and 300 * 1024 or 5 * MiB + 3
      util.write_random(path, size)
      local res = assert(s:request{ url = e.base_url .. "/upload", form = {
        { name = "file", path = path, content_type = "application/zip" },
        { name = "note", data = "hello\r\n--not-a-boundary" },
        { name = "renamed", path = path, filename = "other.zip" },
      } })
      assert.equal(200, res.status)
      local parts = cjson.decode(res.body).parts
      assert.equal(3, #parts)
      assert.same({ "file", "note", "renamed" }, { parts[1].name, parts[2].name, parts[3].name })
      assert.equal("OELOG_1_10.0.0.1_20250226162127.zip", parts[1].filename)
      assert.equal(size, parts[1].size)
      assert.equal(util.sha256sum(path), parts[1].sha256)
      assert.equal("application/zip", parts[1].content_type)
      assert.equal(util.sha256_hex("hello\r\n--not-a-boundary"), parts[2].sha256)
      assert.equal("other.zip", parts[3].filename)
      assert.equal(size, res.uploaded > size and size or res.uploaded) -- everything was sent
    end)

    it("names the file when a file part cannot be read", function()
      local res, err = s:request{ url = e.base_url .. "/upload",
        form = { { name = "file", path = tmp .. "/missing.zip" } } }
      assert.is_nil(res)
      assert.equal("io", err.kind)
      assert.matches("missing.zip", err.message, 1, true)
    end)
  end)

  describe("downloads to a file", function()
    local f
    setup(function()
      f = emu.make_file("dl.bin", SMALL and 512 * 1024 or 16 * MiB + 17)
    end)

    it("streams the body to disk with the right bytes", function()
      local out = tmp .. "/dl.bin"
      local res = assert(s:request{ url = f.url, output = out })
      assert.equal(200, res.status)
      assert.is_nil(res.body)
      assert.equal(f.size, res.bytes)
      assert.equal(f.sha256, util.sha256sum(out))
      assert.is_nil(res.sha256) -- only when asked for
    end)

    it("replaces what an existing, longer output file held", function()
      local out = tmp .. "/old.bin"
      shell.write_file(out, ("x"):rep(f.size + 4096))
      assert(s:request{ url = f.url, output = out })
      assert.equal(f.size, util.size(out))
      assert.equal(f.sha256, util.sha256sum(out))
    end)

    it("hashes the output as it writes it, when asked", function()
      local out = tmp .. "/hashed.bin"
      local res = assert(s:request{ url = f.url, output = out, sha256 = true })
      assert.equal(f.sha256, res.sha256)
      assert.equal(f.sha256, util.sha256sum(out))
    end)

    it("appends exactly the missing bytes when resuming with Range", function()
      local out = tmp .. "/resumed.bin"
      local half = math.floor(f.size / 3)
      util.copy_prefix(f.path, out, half + 100)  -- extra bytes past resume_from are cut off
      local res = assert(s:request{ url = f.url, output = out, resume_from = half, sha256 = true })
      assert.equal(206, res.status)
      assert.is_nil(res.sha256) -- it saw only the tail: no hash that could be taken for the file's
      assert.equal(f.size - half, res.bytes)
      assert.equal(f.size, util.size(out))
      assert.equal(f.sha256, util.sha256sum(out))
    end)

    it("resumes after the server cut the connection", function()
      local out = tmp .. "/cut.bin"
      local res, err = s:request{ url = e.base_url .. "/cut/dl.bin?after=100000", output = out }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      assert.equal("CURLE_PARTIAL_FILE", err.code)
      local have = util.size(out)
      assert.equal(100000, have)
      -- what a caller needs to resume safely: the answer's status, headers and bytes kept
      assert.equal(200, err.status)
      assert.equal(tostring(f.size), err.headers["content-length"])
      assert.equal(have, err.bytes)
      res = assert(s:request{ url = f.url, output = out, resume_from = have })
      assert.equal(206, res.status)
      assert.equal(f.sha256, util.sha256sum(out))
    end)

    it("never writes an error answer into the output file", function()
      local out = tmp .. "/error.bin"
      local res = assert(s:request{ url = e.base_url .. "/status/404", output = out })
      assert.equal(404, res.status)
      assert.is_true(#res.body > 0)
      assert.is_false(util.exists(out))
    end)

    it("refuses to resume past the end of the output", function()
      local out = tmp .. "/short.bin"
      util.write_random(out, 10)
      local res, err = s:request{ url = f.url, output = out, resume_from = 20 }
      assert.is_nil(res)
      assert.equal("io", err.kind)
      assert.equal(out, err.path)
    end)

    it("reports an output it cannot write as an io error with the path", function()
      local out = tmp .. "/no/such/dir/x.bin"
      local res, err = s:request{ url = f.url, output = out }
      assert.is_nil(res)
      assert.equal("io", err.kind)
      assert.equal(out, err.path)
      assert.equal("ENOENT", err.errno)
      assert.matches("No such file", err.message, 1, true)
    end)
  end)

  describe("TLS", function()
    it("refuses a certificate from an unknown CA by default", function()
      local plain = core.session{}
      local res, err = plain:request{ url = e.base_url .. "/echo" }
      plain:close()
      assert.is_nil(res)
      assert.equal("tls", err.kind)
      assert.equal("CURLE_PEER_FAILED_VERIFICATION", err.code)
    end)

    it("accepts it with ca_file, or with an explicit insecure = true", function()
      assert.equal(200, assert(s:request{ url = e.base_url .. "/echo" }).status)
      local loose = core.session{ insecure = true }
      assert.equal(200, assert(loose:request{ url = e.base_url .. "/echo" }).status)
      loose:close()
    end)
  end)

  describe("timeouts", function()
    it("fires the request timeout", function()
      local quick = core.session{ ca_file = e.ca_file, timeout = 0.5 }
      local t0 = gettime()
      local res, err = quick:request{ url = e.base_url .. "/slow?delay=5" }
      quick:close()
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.equal("CURLE_OPERATION_TIMEDOUT", err.code)
      assert.is_true(gettime() - t0 < 1.5)
    end)

    it("aborts a transfer slower than low_speed_limit", function()
      local quick = core.session{ ca_file = e.ca_file, low_speed_limit = 1000, low_speed_time = 1 }
      local res, err = quick:request{ url = e.base_url .. "/trickle?bytes=50&interval=0.2" }
      quick:close()
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
    end)

    it("fails fast when nothing listens, and says the request never left", function()
      local res, err = s:request{ url = "http://127.0.0.1:1/" }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      assert.equal("CURLE_COULDNT_CONNECT", err.code)
      assert.is_false(err.request_sent)
    end)

    it("says the request was sent when the answer is what timed out", function()
      local res, err = s:request{ url = e.base_url .. "/slow?delay=5", timeout = 0.3 }
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.is_true(err.request_sent)
    end)

    it("lets one request set its own timeout, or none", function()
      local quick = core.session{ ca_file = e.ca_file, timeout = 0.3 }
      local t0 = gettime()
      local res = assert(quick:request{ url = e.base_url .. "/slow?delay=0.6", timeout = 0 })
      assert.equal(200, res.status)
      assert.is_true(gettime() - t0 >= 0.6)
      local _, err = quick:request{ url = e.base_url .. "/slow?delay=0.6" } -- the session's 0.3 s again
      assert.equal("timeout", err.kind)
      quick:close()
      assert.has_error(function() s:request{ url = e.base_url, timeout = "1" } end,
        "request: bad option 'timeout' (number expected, got string)")
    end)
  end)

  describe("progress", function()
    it("is called with the transfer's numbers, at most about 10 times a second", function()
      local calls, last = 0, nil
      local t0 = gettime()
      assert(s:request{ url = e.base_url .. "/trickle?bytes=30&interval=0.05", progress = function(dt, dn)
        calls = calls + 1
        last = { dt, dn }
      end })
      local seconds = gettime() - t0
      assert.is_true(seconds > 1)
      assert.is_true(calls >= 5)
      assert.is_true(calls <= 10 * seconds + 2, calls .. " calls in " .. seconds .. " s")
      assert.is_number(last[1])
    end)

    it("aborts cleanly when the callback raises, keeping the error value", function()
      local marker = {}
      local res, err = s:request{ url = e.base_url .. "/trickle?bytes=20&interval=0.05",
        progress = function() error(marker) end }
      assert.is_nil(res)
      assert.equal("aborted", err.kind)
      assert.equal("CURLE_ABORTED_BY_CALLBACK", err.code)
      assert.equal(marker, err.cause)
      -- the session is still usable
      assert.equal(200, assert(s:request{ url = e.base_url .. "/echo" }).status)
    end)

    it("aborts when the callback returns false", function()
      local out = tmp .. "/aborted.bin"
      local res, err = s:request{ url = e.base_url .. "/trickle?bytes=20&interval=0.05", output = out,
        progress = function() return false end }
      assert.is_nil(res)
      assert.equal("aborted", err.kind)
      assert.matches("progress callback", err.message)
    end)

    it("refuses a request made from inside its own session's callback", function()
      local inner
      local res, err = s:request{ url = e.base_url .. "/trickle?bytes=5&interval=0.05", progress = function()
        inner = select(2, pcall(s.request, s, { url = e.base_url .. "/echo" }))
        return false
      end }
      assert.is_nil(res)
      assert.equal("aborted", err.kind)
      assert.matches("busy", inner)
    end)
  end)

  describe("max_body", function()
    it("turns a body over the cap into an error, not a memory hog", function()
      local capped = core.session{ ca_file = e.ca_file, max_body = 1000 }
      local res, err = capped:request{ url = e.base_url .. "/files/medium.bin" }
      assert.is_nil(res)
      assert.equal("http", err.kind)
      assert.equal("BODY_TOO_LARGE", err.code)
      -- a body streamed to a file is not capped
      res = assert(capped:request{ url = e.base_url .. "/files/medium.bin", output = tmp .. "/m.bin" })
      assert.equal(MiB, res.bytes)
      capped:close()
    end)
  end)

  describe("answers in memory, one after another", function()
    -- each answer's body buffer is handed to the session's next request: a small answer after
    -- a big one must not carry the big one's bytes, nor a body over the kept size be lost
    it("each body is exactly its file, whatever came before (big, small, empty, bigger than kept)", function()
      local sizes = SMALL and { 300000, 10, 0, 1000000, 7 } or { 300000, 10, 0, 9 * MiB, 7, 400000, 1 }
      local files = {}
      for i, n in ipairs(sizes) do files[i] = emu.make_file("mem" .. i .. ".bin", n) end
      for round = 1, 2 do
        for i, f in ipairs(files) do
          local res = assert(s:request{ url = f.url })
          assert.equal(f.size, #res.body, "round " .. round .. " file " .. i)
          assert.equal(f.sha256, core.hex(core.sha256(res.body)), "round " .. round .. " file " .. i)
        end
      end
    end)

    it("a session closed by its own request's progress callback still ends cleanly", function()
      -- (under `make valgrind`: the closing session must not be handed the body buffer to keep)
      local f = emu.make_file("mem-close.bin", 200000)
      local closer = core.session{ ca_file = e.ca_file, timeout = 30 }
      assert(closer:request{ url = f.url })   -- closer now keeps a body buffer
      local res = assert(closer:request{ url = f.url, progress = function() closer:close() end })
      assert.equal(f.sha256, core.hex(core.sha256(res.body)))
      assert.has_error(function() closer:request{ url = f.url } end)
    end)
  end)

  describe("bad arguments", function()
    it("raise with messages that name the problem", function()
      assert.has_error(function() core.session{ timeout = "5" } end,
        "session: bad option 'timeout' (number expected, got string)")
      assert.has_error(function() core.session{ timout = 5 } end, "session: unknown option 'timout'")
      assert.has_error(function() core.session{ timeout = -1 } end)
      assert.has_error(function() core.session("x") end)
      assert.has_error(function() s:request{} end, "request: field 'url' (string expected, got nil)")
      assert.has_error(function() s:request{ url = e.base_url, body = "a", form = {} } end,
        "request: give only one of body, body_file and form")
      assert.has_error(function() s:request{ url = e.base_url, progress = 1 } end,
        "request: field 'progress' (function expected, got number)")
      assert.has_error(function() s:request{ url = e.base_url, resume_from = 5 } end,
        "request: resume_from needs output")
      assert.has_error(function() s:request{ url = e.base_url, sha256 = true } end,
        "request: sha256 needs output")
      assert.has_error(function() s:request{ url = e.base_url, form = { { name = "x" } } } end,
        "request: form part 1 needs a name and exactly one of path or data")
      assert.has_error(function() s.request(io.stdout, { url = "x" }) end)
    end)

    it("return invalid errors for values that cannot go on the wire", function()
      local res, err = s:request{ url = e.base_url .. "/echo", headers = { ["X-A"] = "a\r\nInjected: 1" } }
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      res, err = s:request{ url = e.base_url .. "/echo", method = "GET /x" }
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      res, err = s:request{ url = "ftp://127.0.0.1/x" }
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
    end)

    it("raise on a closed session", function()
      local c = core.session{}
      c:close()
      c:close() -- closing twice is fine
      assert.has_error(function() c:request{ url = e.base_url } end, "attempt to use a closed session")
      assert.matches("closed", tostring(c))
    end)
  end)

  if _VERSION == "Lua 5.4" and not jit then
    it("closes a <close> session at the end of its scope", function()
      local chunk = assert(load([[
        local core = ...
        local kept
        do
          local c <close> = core.session{}
          kept = c
        end
        return tostring(kept)
      ]]))
      assert.matches("closed", chunk(core))
    end)
  end
end)
