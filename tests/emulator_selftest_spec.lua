-- Self-test of the local emulator (tests/emulator), driven by the curl command line only.
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local util = require "helpers.util"
local cjson = require "cjson"

package.path = "tests/emulator/lua/?.lua;" .. package.path
local multipart = require "emu.multipart"

-- sh: stdout of a shell command and its exit status (stderr passes through unless redirected)
local q, sh = shell.quote, shell.run

local function json(cmd)
  local out, rc = sh(cmd)
  assert(rc == 0, "command failed (" .. tostring(rc) .. "): " .. cmd .. "\n" .. out)
  return cjson.decode(out)
end

local sha256_file = util.sha256sum

local function alive(pid)
  local _, rc = sh("kill -0 " .. pid .. " 2>/dev/null")
  if rc ~= 0 then return false end
  local st = sh("cat /proc/" .. pid .. "/stat 2>/dev/null")
  return st:match("^%d+ %(.-%) (%u)") ~= "Z"
end

describe("emulator", function()
  local e, C, tmp

  setup(function()
    e = emu.start()
    C = "curl -sS --max-time 60 --cacert " .. q(e.ca_file) .. " "
    tmp = shell.tmpdir("emu-selftest")
  end)

  teardown(function()
    shell.rmdir(tmp)
  end)

  before_each(function() emu.reset() end)

  it("start is idempotent and gives URLs on 127.0.0.1", function()
    assert.are.equal(e, emu.start())
    assert.matches("^https://127%.0%.0%.1:%d+$", e.base_url)
    assert.matches("^http://127%.0%.0%.1:%d+$", e.http_url)
    assert.is_true(alive(e.pid))
  end)

  it("speaks TLS with CA_FILE and refuses without it", function()
    local v = json(C .. q(e.base_url .. "/echo?x=1"))
    assert.are.equal("https", v.scheme)
    assert.are.equal("1", v.args.x)
    local port = e.base_url:match(":(%d+)$")
    assert.are.equal("GET", json(C .. q("https://localhost:" .. port .. "/echo")).method)
    local _, rc = sh("curl -sS -o /dev/null " .. q(e.base_url .. "/echo") .. " 2>/dev/null")
    assert.are.equal(60, rc)   -- CURLE_PEER_FAILED_VERIFICATION
  end)

  it("echoes a multi-MiB body, plain and chunked", function()
    local f = emu.make_file("echo.bin", 3 * 1024 * 1024 + 7)
    local v = json(C .. "--data-binary @" .. q(f.path) .. " " .. q(e.base_url .. "/echo"))
    assert.are.equal(f.size, v.body_bytes)
    assert.are.equal(f.sha256, v.body_sha256)
    assert.are.equal("POST", v.method)
    v = json(C .. "-H 'Transfer-Encoding: chunked' -H 'X-Thing: A' --data-binary @" .. q(f.path) .. " "
             .. q(e.http_url .. "/echo"))
    assert.are.equal(f.sha256, v.body_sha256)
    assert.are.equal("A", v.headers["x-thing"])
  end)

  it("receives a 5 MiB multipart upload", function()
    local f = emu.make_file("up.bin", 5 * 1024 * 1024)
    local v = json(C .. "-F " .. q("file=@" .. f.path .. ";filename=OELOG_1.zip;type=application/zip")
                   .. " -F FileType=0 " .. q(e.base_url .. "/upload"))
    assert.are.equal(2, #v.parts)
    local p = v.parts[1]
    assert.are.equal("file", p.name)
    assert.are.equal("OELOG_1.zip", p.filename)
    assert.are.equal("application/zip", p.content_type)
    assert.are.equal(f.size, p.size)
    assert.are.equal(f.sha256, p.sha256)
    assert.are.equal(f.sha256, sha256_file(p.path))
    assert.are.equal("FileType", v.parts[2].name)
    assert.are.equal("0", v.parts[2].value)
    assert.matches("^multipart/form%-data; boundary=", v.headers["content-type"])
  end)

  it("serves /files with Range", function()
    local f = emu.make_file("range.bin", 10000)
    local out = tmp .. "/range.part"
    local _, rc = sh(C .. "-r 100-1099 -o " .. q(out) .. " " .. q(f.url))
    assert.are.equal(0, rc)
    local want = sh("tail -c +101 " .. q(f.path) .. " | head -c 1000 | sha256sum"):match("^(%x+)")
    assert.are.equal(want, sha256_file(out))
    local hdr = sh(C .. "-r 100-1099 -o /dev/null -D - " .. q(f.url))
    assert.matches("206", hdr)
    assert.matches("[Cc]ontent%-[Rr]ange: bytes 100%-1099/10000", hdr)
    assert.are.equal("1024", (sh(C .. "-o /dev/null -w '%{size_download}' " .. q(e.base_url .. "/files/small.bin"))))
  end)

  it("/cut really cuts the connection, and a Range resume completes the file", function()
    local f = emu.make_file("cut.bin", 300000)
    local part = tmp .. "/cut.part"
    local err, rc = sh(C .. "-o " .. q(part) .. " " .. q(e.base_url .. "/cut/cut.bin?after=120000") .. " 2>&1")
    assert.are.equal(18, rc)   -- CURLE_PARTIAL_FILE
    assert.matches("transfer closed with 180000 bytes remaining", err)
    assert.are.equal("120000", (sh("stat -c %s " .. q(part))):gsub("%s", ""))
    -- resume through /cut itself: 206 + Content-Range, cut again, then the rest from /files
    err, rc = sh(C .. "-r 120000- -o " .. q(part .. "2") .. " " .. q(e.base_url .. "/cut/cut.bin?after=1000")
                 .. " 2>&1")
    assert.are.equal(18, rc)
    assert.matches("179000 bytes remaining", err)
    sh("cat " .. q(part .. "2") .. " >> " .. q(part))
    local _
    _, rc = sh(C .. "-C - -o " .. q(part) .. " " .. q(e.base_url .. "/cut/cut.bin?after=999999999"))
    assert.are.equal(0, rc)
    assert.are.equal(f.sha256, sha256_file(part))
  end)

  it("counts one connection for curl url url url and three for three curls", function()
    local u = q(e.base_url .. "/files/small.bin")
    sh(C .. "-o /dev/null -o /dev/null -o /dev/null " .. u .. " " .. u .. " " .. u)
    local s = emu.stats()
    assert.are.equal(1, s.connections)
    assert.are.equal(3, s.requests)
    emu.reset()
    for _ = 1, 3 do sh(C .. "-o /dev/null " .. u) end
    s = emu.stats()
    assert.are.equal(3, s.connections)
    assert.are.equal(3, s.requests)
    assert.are.equal(3, s.paths["/files/small.bin"])
  end)

  it("fires a fault exactly count times, then answers normally", function()
    emu.fault { path = "/echo", status = 429, retry_after = 1, count = 2 }
    local codes = {}
    for i = 1, 4 do
      codes[i] = (sh(C .. "-o /dev/null -w '%{http_code}' " .. q(e.base_url .. "/echo")))
    end
    assert.are.same({ "429", "429", "200", "200" }, codes)
    emu.fault { path = "/status/", status = 503, retry_after = 7, count = 1 }
    local hdr = sh(C .. "-D - -o /dev/null " .. q(e.base_url .. "/status/200"))
    assert.matches("503", hdr)
    assert.matches("[Rr]etry%-[Aa]fter: 7", hdr)
    local list = emu.faults()
    assert.are.equal(2, list[1].fired)
    assert.are.equal(0, list[1].left)
    assert.are.equal(3, emu.stats().faults_fired)
  end)

  it("injects cut_after, truncated bodies, drops and delays", function()
    emu.fault { { path = "/echo", cut_after = 10, count = 1 },
                { path = "/echo", body = 'truncated {"json', status = 200, count = 1 },
                { path = "/echo", drop = true, count = 1 },
                { path = "/slow", delay = 1, count = 1 } }
    local out, rc = sh(C .. q(e.base_url .. "/echo") .. " 2>/dev/null")
    assert.are.equal(18, rc)
    assert.are.equal(10, #out)
    out, rc = sh(C .. q(e.base_url .. "/echo"))
    assert.are.equal(0, rc)
    assert.are.equal('truncated {"json', out)
    local _, drop_rc = sh(C .. q(e.base_url .. "/echo") .. " 2>/dev/null")
    assert.are.equal(52, drop_rc)   -- CURLE_GOT_NOTHING
    local t = tonumber((sh(C .. "-o /dev/null -w '%{time_total}' " .. q(e.base_url .. "/slow?delay=0"))))
    assert.is_true(t >= 0.9, "delay fault: " .. t)
    assert.are.equal("GET", json(C .. q(e.base_url .. "/echo")).method)
  end)

  it("answers /status, /slow, /trickle and /redirect", function()
    local hdr = sh(C .. "-D - -o /dev/null " .. q(e.base_url .. "/status/429?retry_after=3"))
    assert.matches("^HTTP/1.1 429", hdr)
    assert.matches("[Rr]etry%-[Aa]fter: 3", hdr)
    assert.are.equal(0.2, json(C .. q(e.base_url .. "/slow?delay=0.2")).slept)
    local _, rc = sh(C .. "--speed-limit 10 --speed-time 1 -o /dev/null "
                     .. q(e.base_url .. "/trickle?bytes=20&interval=0.5") .. " 2>/dev/null")
    assert.are.equal(28, rc)   -- CURLE_OPERATION_TIMEDOUT: low-speed abort
    assert.are.equal("xxx", (sh(C .. q(e.base_url .. "/trickle?bytes=3&interval=0.05"))))
    local v = json(C .. "-L " .. q(e.base_url .. "/redirect?to=/echo%3Fr%3D1"))
    assert.are.equal("1", v.args.r)
    assert.are.equal("404", (sh(C .. "-o /dev/null -w '%{http_code}' " .. q(e.base_url .. "/nginx.conf"))))
  end)

  it("stop leaves no nginx behind, and the watchdog stops an orphan", function()
    local script = "tests/emulator/emulator"
    local function start(extra)
      local out, rc = sh(script .. " start " .. (extra or "") .. " 2>&1")
      assert.are.equal(0, rc, out)
      local kv = {}
      for k, v in out:gmatch("([%u_]+)=([^\n]*)") do kv[k] = v end
      local workers = {}
      for pid in sh("ps -o pid= --ppid " .. kv.PID):gmatch("%d+") do workers[#workers + 1] = pid end
      assert.is_true(#workers >= 1)
      return kv, workers
    end
    local function gone(kv, workers)
      assert.is_false(alive(kv.PID))
      for _, w in ipairs(workers) do assert.is_false(alive(w)) end
      local _, rc = sh("test -e " .. q(kv.DIR))
      assert.are_not.equal(0, rc)
    end

    local kv, workers = start("--parent " .. sh("echo $PPID"):match("%d+"))
    local _, rc = sh(script .. " status " .. q(kv.DIR) .. " >/dev/null")
    assert.are.equal(0, rc)
    _, rc = sh(script .. " stop " .. q(kv.DIR))
    assert.are.equal(0, rc)
    gone(kv, workers)
    _, rc = sh(script .. " status " .. q(kv.DIR) .. " 2>/dev/null")
    assert.are.equal(1, rc)

    local parent = sh("sleep 60 >/dev/null 2>&1 & echo $!"):match("%d+")
    kv, workers = start("--parent " .. parent)
    sh("kill " .. parent)
    for _ = 1, 50 do
      if not alive(kv.PID) then break end
      sh("sleep 0.1")
    end
    sh("sleep 0.3")
    gone(kv, workers)
  end)

  it("stops for good with emu.stop()", function()
    local pid, dir = e.pid, e.dir
    emu.stop()
    assert.is_false(alive(pid))
    local _, rc = sh("test -e " .. q(dir))
    assert.are_not.equal(0, rc)
    assert.is_nil(emu.info())
  end)
end)

describe("emu.multipart (the parser alone)", function()
  local function body(boundary, parts)
    local t = {}
    for _, p in ipairs(parts) do
      t[#t + 1] = "--" .. boundary .. "\r\n"
      t[#t + 1] = 'Content-Disposition: form-data; name="' .. p.name .. '"'
                  .. (p.filename and ('; filename="' .. p.filename .. '"') or "") .. "\r\n"
      if p.type then t[#t + 1] = "Content-Type: " .. p.type .. "\r\n" end
      t[#t + 1] = "\r\n" .. p.data .. "\r\n"
    end
    t[#t + 1] = "--" .. boundary .. "--\r\nepilogue"
    return table.concat(t)
  end

  local function parse(boundary, s, sizes)
    local got, cur = {}, nil
    local p = multipart.new(boundary, {
      part_begin = function(part) cur = { part = part, data = {} }; got[#got + 1] = cur end,
      part_data = function(_, d) cur.data[#cur.data + 1] = d end,
      part_end = function() cur.data = table.concat(cur.data) end,
    })
    local pos, i = 1, 0
    while pos <= #s do
      i = i + 1
      local n = sizes[(i - 1) % #sizes + 1]
      p:feed(s:sub(pos, pos + n - 1))
      pos = pos + n
    end
    assert(p:finish())
    return got
  end

  it("finds parts whatever the chunking, with boundary look-alikes in the data", function()
    local b = "----x7MA4YWxkTrZu0gW"
    math.randomseed(42)
    local rnd = {}
    for i = 1, 5000 do rnd[i] = string.char(math.random(0, 255)) end
    local tricky = "\r\n--" .. b:sub(1, 10) .. "\r\n-" .. table.concat(rnd) .. "\r\n--" .. b:sub(1, -2)
    local parts = {
      { name = "file", filename = "a b.zip", type = "application/zip", data = tricky },
      { name = "FileType", data = "0" },
      { name = "empty", filename = "e.txt", data = "" },
    }
    local s = "preamble\r\n" .. body(b, parts)
    for _, sizes in ipairs { { #s }, { 1 }, { 2, 3 }, { 7, 1, 64 }, { 4096 }, { #b + 3 } } do
      local got = parse(b, s, sizes)
      assert.are.equal(3, #got)
      for i, p in ipairs(parts) do
        assert.are.equal(p.name, got[i].part.name)
        assert.are.equal(p.filename, got[i].part.filename)
        assert.are.equal(p.type, got[i].part.content_type)
        assert.are.equal(#p.data, #got[i].data)
        assert.is_true(p.data == got[i].data)
      end
    end
  end)

  it("reads the boundary from Content-Type and reports a truncated body", function()
    assert.are.equal("abc", multipart.boundary("multipart/form-data; boundary=abc"))
    assert.are.equal("a b", multipart.boundary('multipart/form-data; boundary="a b"; charset=x'))
    assert.is_nil(multipart.boundary("application/json"))
    local p = multipart.new("abc", {})
    p:feed("--abc\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nhalf")
    local ok, err = p:finish()
    assert.is_nil(ok)
    assert.matches("no closing boundary", err)
  end)
end)
