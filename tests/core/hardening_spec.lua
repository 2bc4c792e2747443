-- The C core against hostile Lua values and hostile neighbours (issue 8): each case is a
-- finding of a review, confirmed by a reproducer, and failed before its fix. The memory cases
-- also run under `make asan` and `make valgrind`, where a use-after-free is reported even when
-- it happens to read the right bytes.
local core = require "loghaul.core"
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local tu = require "helpers.util"
local hostile = require "reliability.hostile"
local cjson = require "cjson"

local q = shell.quote

local function octal_mode(path)
  return (shell.run("stat -c %a " .. q(path)):match("%d+"))
end

-- A request table whose every field is made up by __index: a new string object at each
-- read, never referenced anywhere else, while the collector runs and garbage of the same
-- sizes takes the memory it frees. A pointer kept to a popped field reads that garbage.
local junk = {}
local function made_up(fields)
  return setmetatable({}, { __index = function(_, k)
    local v = fields[k]
    if type(v) ~= "string" then return v end
    collectgarbage("collect")
    for i = 1, 64 do junk[#junk % 512 + 1] = ("Z"):rep(#v - 1) .. string.char(65 + i % 26) end
    return table.concat({ v:sub(1, 1), v:sub(2) }) -- a fresh string object
  end })
end

describe("core hardening", function()
  local e, dir
  setup(function() e = emu.start() end)
  before_each(function() dir = tu.tmpdir() emu.reset() end)
  after_each(function() tu.rmdir(dir) end)

  it("keeps every field of the request alive while it uses it (1: use-after-free)", function()
    local s = core.session{ ca_file = e.ca_file }
    local out = dir .. "/a-rather-long-output-file-name-for-the-heap.bin"
    local res = assert(s:request(made_up{
      url = e.base_url .. "/files/medium.bin?padding=" .. ("p"):rep(40), method = "GET", output = out,
      progress = function() collectgarbage("collect") end,
    }))
    assert.are.equal(200, res.status)
    assert.are.equal(2 ^ 20, tu.size(out))
    local src = dir .. "/upload-source-file-with-a-long-name-too.bin"
    tu.write_random(src, 4096)
    res = assert(s:request(made_up{
      url = e.base_url .. "/upload?padding=" .. ("u"):rep(40), method = "POST",
      form = { made_up{ name = "file-part-name-long-enough-to-be-a-heap-string", path = src,
                        filename = "uploaded-file-name-long-enough-to-be-a-heap-string.bin",
                        content_type = "application/octet-stream; padding=" .. ("c"):rep(40) } },
      progress = function() collectgarbage("collect") end,
    }))
    local up = cjson.decode(res.body)
    assert.are.equal("file-part-name-long-enough-to-be-a-heap-string", up.parts[1].name)
    assert.are.equal("uploaded-file-name-long-enough-to-be-a-heap-string.bin", up.parts[1].filename)
    assert.are.equal(tu.sha256sum(src), up.parts[1].sha256)
    s:close()
  end)

  it("defers closing a session until its own request ends (2: freed while busy)", function()
    local ways = {
      close = function(s) s:close() end,
      __gc = function(s) getmetatable(s).__gc(s) end,
      __close = function(s) getmetatable(s).__close(s) end,
    }
    for name, close in pairs(ways) do
      local s = core.session{ ca_file = e.ca_file }
      local closed = 0
      local res, err = s:request{ url = e.base_url .. "/trickle?bytes=20&interval=0.02&chunk=2",
        progress = function() closed = closed + 1 close(s) end }
      assert.is_truthy(res, name .. ": " .. tostring(err and err.message))
      assert.are.equal(200, res.status, name)
      assert.is_true(closed > 0, name)
      assert.matches("closed", tostring(s), 1, true)
      assert.has_error(function() s:request{ url = e.base_url .. "/echo" } end, "attempt to use a closed session")
    end
    if _VERSION == "Lua 5.4" then -- a <close> variable going out of scope inside the callback
      local s = core.session{ ca_file = e.ca_file }
      local chunk = assert(load([[
        local s = ...
        return function() local c <close> = s end
      ]]))
      local res = assert(s:request{ url = e.base_url .. "/trickle?bytes=10&interval=0.02", progress = chunk(s) })
      assert.are.equal(200, res.status)
      assert.matches("closed", tostring(s), 1, true)
    end
  end)

  describe("outputs (4: a symlink planted at the .part name)", function()
    it("never writes through a symlink or into a FIFO, and never resumes one", function()
      local s = core.session{ ca_file = e.ca_file }
      shell.write_file(dir .. "/victim", "precious")
      shell.run("ln -s victim " .. q(dir .. "/out.part") .. " && mkfifo " .. q(dir .. "/fifo.part"))
      local res, err = s:request{ url = e.base_url .. "/files/small.bin", output = dir .. "/out.part" }
      assert.is_nil(res)
      assert.are.same({ "io", "ELOOP" }, { err.kind, err.errno })
      res, err = s:request{ url = e.base_url .. "/files/small.bin", output = dir .. "/out.part", resume_from = 3 }
      assert.is_nil(res)
      assert.are.equal("io", err.kind)
      res, err = s:request{ url = e.base_url .. "/files/small.bin", output = dir .. "/fifo.part" }
      assert.is_nil(res)
      assert.are.equal("io", err.kind)
      assert.are.equal("precious", shell.read_file(dir .. "/victim"))
    end)

    it("creates new files 0600 unless asked for another mode", function()
      local s = core.session{ ca_file = e.ca_file }
      assert(s:request{ url = e.base_url .. "/files/small.bin", output = dir .. "/private" })
      assert.are.equal("600", octal_mode(dir .. "/private"))
      assert(s:request{ url = e.base_url .. "/files/small.bin", output = dir .. "/shared", mode = "0644" })
      assert.are.equal("644", octal_mode(dir .. "/shared"))
      assert.has_error(function()
        s:request{ url = e.base_url .. "/files/small.bin", output = dir .. "/x", mode = "rw-r--r--" }
      end)
    end)
  end)

  it("trusts only the ca_file it is given, not also the system CA path (5)", function()
    if select(2, shell.run("unshare -m true 2>/dev/null")) ~= 0 then
      pending("needs root for a private mount namespace (unshare -m)")
      return
    end
    -- a private mount namespace whose /etc/ssl/certs trusts the emulator's CA by hash
    local certs = dir .. "/certs"
    local hash = shell.run("openssl x509 -hash -noout -in " .. q(e.ca_file)):match("%x+")
    shell.run("mkdir " .. q(certs) .. " && cp " .. q(e.ca_file) .. " " .. q(certs .. "/" .. hash .. ".0")
      .. " && cp " .. q(e.ca_file) .. " " .. q(certs .. "/ca-certificates.crt"))
    local other = dir .. "/other.pem"
    assert.are.equal(0, select(2, shell.run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
      .. " -subj /CN=other -days 1 -keyout " .. q(dir .. "/other.key") .. " -out " .. q(other) .. " 2>/dev/null")))
    local script = dir .. "/tls.lua"
    shell.write_file(script, [[
      local core = require "loghaul.core"
      local ca = arg[1] ~= "" and arg[1] or nil
      local res, err = core.session{ ca_file = ca }:request{ url = arg[2] }
      io.write(res and "OK" or err.kind)
    ]])
    local function run(ca)
      return (shell.run("unshare -m sh -c " .. q("mount --bind " .. q(certs) .. " /etc/ssl/certs && exec "
        .. shell.lua_command() .. " " .. q(script) .. " " .. q(ca) .. " " .. q(e.base_url .. "/echo")) .. " 2>&1"))
    end
    assert.are.equal("OK", run(""))          -- the namespace's system trust does know the emulator
    assert.are.equal("tls", run(other))      -- but a given bundle is the only trust
    assert.are.equal("OK", run(e.ca_file))
  end)

  describe("redirects (6)", function()
    it("are not followed unless asked", function()
      local s = core.session{ ca_file = e.ca_file }
      local res = assert(s:request{ url = e.base_url .. "/redirect?to=/echo" })
      assert.are.equal(302, res.status)
    end)

    it("when followed, never downgrade to http and never carry headers to another origin", function()
      local s = core.session{ ca_file = e.ca_file, follow_redirects = true }
      local res = assert(s:request{ url = e.base_url .. "/redirect?to=/echo", headers = { ["X-Auth-Token"] = "t0k3n" } })
      assert.are.equal("t0k3n", cjson.decode(res.body).headers["x-auth-token"]) -- same origin keeps them
      local other = e.http_url:gsub("127%.0%.0%.1", "localhost") .. "/echo"
      res = assert(s:request{ url = e.http_url .. "/redirect?to=" .. other, headers = { ["X-Auth-Token"] = "t0k3n" } })
      local echo = cjson.decode(res.body)
      assert.matches("^localhost", echo.headers.host)
      assert.is_nil(echo.headers["x-auth-token"])
      local _, err = s:request{ url = e.base_url .. "/redirect?to=" .. e.http_url .. "/echo" }
      assert.are.same({ "http", "REDIRECT_REFUSED" }, { err.kind, err.code })
    end)
  end)

  it("refuses NUL bytes in URLs and paths instead of cutting them short (8)", function()
    local s = core.session{ ca_file = e.ca_file }
    local cases = {
      { url = e.base_url .. "/echo\0/other" },
      { url = e.base_url .. "/files/small.bin", output = dir .. "/a\0b" },
      { url = e.base_url .. "/echo", body_file = dir .. "/x\0y" },
      { url = e.base_url .. "/upload", form = { { name = "file", path = dir .. "/x\0y" } } },
    }
    for i, req in ipairs(cases) do
      assert.has_error(function() s:request(req) end, nil, "case " .. i)
    end
    assert.are.same({}, tu.ls(dir))
  end)

  it("refuses fractional offsets and negative times instead of guessing (9)", function()
    local s = core.session{ ca_file = e.ca_file }
    shell.write_file(dir .. "/p", "abc")
    assert.has_error(function()
      s:request{ url = e.base_url .. "/files/small.bin", output = dir .. "/p", resume_from = 0.9 }
    end)
    assert.are.equal("abc", shell.read_file(dir .. "/p"))
    assert.has_error(function() s:request{ url = e.base_url .. "/echo", timeout = -0.5 } end)
    assert.has_error(function() core.session{ timeout = -0.5 } end)
    assert.has_error(function() core.session{ max_redirects = 1.5 } end)
  end)

  describe("answers that lie (10)", function()
    local h
    setup(function() h = hostile.start() end)
    teardown(function() hostile.stop() end)

    it("an unasked-for 206 is never written as the whole file", function()
      local s = core.session{}
      hostile.mode("wire " .. hostile.hex("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-7/10\r\n"
        .. "Content-Length: 3\r\nConnection: close\r\n\r\nabc"))
      local res, err = s:request{ url = h.url .. "/file", output = dir .. "/f" }
      assert.is_nil(res)
      assert.are.same({ "http", "UNEXPECTED_PARTIAL" }, { err.kind, err.code })
      assert.is_nil(tu.size(dir .. "/f"))
    end)

    it("trailers never join the response headers", function()
      local s = core.session{}
      hostile.mode("wire " .. hostile.hex("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        .. "Content-Disposition: attachment; filename=\"good.bin\"\r\nTrailer: Content-Disposition\r\n"
        .. "Connection: close\r\n\r\n5\r\nhello\r\n0\r\nContent-Disposition: attachment; filename=\"evil.bin\"\r\n"
        .. "X-Late: 1\r\n\r\n"))
      local res = assert(s:request{ url = h.url .. "/file", output = dir .. "/f" })
      assert.are.equal('attachment; filename="good.bin"', res.headers["content-disposition"])
      assert.is_nil(res.headers["x-late"])
      assert.are.equal("hello", shell.read_file(dir .. "/f"))
    end)
  end)
end)
