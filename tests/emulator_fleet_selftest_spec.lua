-- Self-test of the emulator's support for fleet runs (issue 10; tests/emulator/VENDORS.md
-- "Fleets", tests/emulator/README.md "Requests in flight"): requests in flight, CloudDC fleet
-- servers with their own archives, exports that take time, rate limits. Driven by the curl
-- command line only (curl --parallel for concurrency), never by loghaul.
local cjson = require "cjson"
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local vendors = require "helpers.vendors"

local F = vendors.fixtures
local q, sh = shell.quote, shell.run
local read_file, write_file = shell.read_file, shell.write_file

local e, tmp, seq = nil, nil, 0

local function now()
  return tonumber((sh("date +%s.%N"))) or os.time()
end

-- curl -K config text: one `key = "value"` line per option (values quoted for curl).
local function kv(k, v)
  return k .. ' = "' .. tostring(v):gsub("\\", "\\\\"):gsub('"', '\\"') .. '"\n'
end

-- Many requests at once: curl --parallel over `jobs` ({ url =, method =, headers = {} } each,
-- or one common `opts.method` / `opts.headers`). Returns, per job in order, { status, body, rc }.
local function parallel(jobs, opts)
  opts = opts or {}
  seq = seq + 1
  local dir = tmp .. "/p" .. seq
  sh("mkdir -p " .. q(dir))
  local cfg = {}
  for i, j in ipairs(jobs) do
    if i > 1 then cfg[#cfg + 1] = "next\n" end
    cfg[#cfg + 1] = kv("url", j.url)
    cfg[#cfg + 1] = kv("output", dir .. "/" .. i)
    cfg[#cfg + 1] = kv("write-out", i .. " %{http_code}\\n")
    cfg[#cfg + 1] = kv("cacert", e.ca_file)
    cfg[#cfg + 1] = kv("request", j.method or opts.method or "GET")
    for k, v in pairs(j.headers or opts.headers or {}) do cfg[#cfg + 1] = kv("header", k .. ": " .. v) end
  end
  write_file(dir .. "/cfg", table.concat(cfg))
  local out = sh("curl -sS --max-time 60 --parallel --parallel-immediate --parallel-max "
    .. (opts.max or 8) .. " -K " .. q(dir .. "/cfg") .. " 2>/dev/null")
  local res = {}
  for i = 1, #jobs do res[i] = { status = 0, body = read_file(dir .. "/" .. i) or "", file = dir .. "/" .. i } end
  for i, code in out:gmatch("(%d+) (%d+)") do res[tonumber(i)].status = tonumber(code) end
  return res
end

-- One request: { status, headers = { lower = value }, body }.
local function req(t)
  seq = seq + 1
  local hf, bf = tmp .. "/h" .. seq, tmp .. "/b" .. seq
  local cmd = { "curl -sS --max-time 60 --cacert", q(e.ca_file), "-X", t.method or "GET", "-D", q(hf), "-o", q(bf) }
  for k, v in pairs(t.headers or {}) do cmd[#cmd + 1] = "-H " .. q(k .. ": " .. v) end
  if t.range then cmd[#cmd + 1] = "-r " .. t.range end
  if t.body then cmd[#cmd + 1] = "--data-binary " .. q(t.body) end
  cmd[#cmd + 1] = q((t.base or e.base_url) .. t.path)
  local _, rc = sh(table.concat(cmd, " ") .. " 2>/dev/null")
  local r = { rc = rc, headers = {}, body = read_file(bf) or "", file = bf }
  local hs = read_file(hf) or ""
  r.status = tonumber(hs:match("^HTTP/%S+ (%d+)"))
  for k, v in hs:gmatch("\n([^:\r\n]+):%s*([^\r\n]*)") do r.headers[k:lower()] = v end
  return r
end

local function decode(r) return cjson.decode(r.body) end

-- Requests one after another in one curl process (one kept-alive connection, at most `rate`
-- a second), timed by curl's own --trace-time: per { path, method } { status, body, lo, hi }:
-- the server's clock (ngx.now) was between lo and hi while it answered. The first request
-- asks /_emu/ping for the server's time to place curl's clock (which adds a monotonic clock
-- to an offset from time(), so it is off by up to a second, differently in each process);
-- the bounds are as wide as that ping's round trip. One process also keeps the timing true
-- however slowly processes start on a loaded machine.
local function timed(steps, t)
  seq = seq + 1
  local dir = tmp .. "/t" .. seq
  sh("mkdir -p " .. q(dir))
  table.insert(steps, 1, { path = "/_emu/ping" })
  local cfg = {}
  for i, step in ipairs(steps) do
    if i > 1 then cfg[#cfg + 1] = "next\n" end
    cfg[#cfg + 1] = kv("request", step.method or "GET")
    for k, v in pairs(t.headers or {}) do cfg[#cfg + 1] = kv("header", k .. ": " .. v) end
    cfg[#cfg + 1] = kv("output", dir .. "/" .. i)
    cfg[#cfg + 1] = kv("url", e.http_url .. step.path)
  end
  write_file(dir .. "/cfg", table.concat(cfg))
  local trace = sh("curl -s -v --trace-time --max-time 60 --rate " .. (t.rate or 20) .. "/s -K "
    .. q(dir .. "/cfg") .. " 2>&1 >/dev/null")
  local res, nout, nin = {}, 0, 0
  local function secs(h, m, x) return tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(x) end
  for h, m, x, dir_, rest in trace:gmatch("(%d%d):(%d%d):([%d.]+) ([<>]) ([^\n]*)") do
    if dir_ == ">" and rest:match("^%u+ /") then
      nout = nout + 1
      res[nout] = { a = secs(h, m, x), body = read_file(dir .. "/" .. nout) or "" }
    elseif dir_ == "<" and rest:match("^HTTP/") then
      nin = nin + 1
      res[nin].b, res[nin].status = secs(h, m, x), tonumber(rest:match("^HTTP/%S+ (%d+)"))
    end
  end
  assert(nout == #steps and nin == #steps, "timed: " .. nout .. " requests, " .. nin .. " answers")
  local ping = table.remove(res, 1)
  table.remove(steps, 1)
  local server_now = cjson.decode(ping.body).now
  for _, r in ipairs(res) do
    r.lo, r.hi = r.a + (server_now - ping.b), r.b + (server_now - ping.a)
  end
  return res
end

-- An IAM token (vendors.reset() forgets tokens: one login per test).
local function login()
  local body = cjson.encode { auth = { identity = { methods = { "password" },
    password = { user = { name = F.iam.user, password = F.iam.password, domain = { name = F.iam.domain } } } },
    scope = { project = { name = F.iam.project } } } }
  local r = req { method = "POST", path = "/v3/auth/tokens?nocatalog=true", body = body,
                  headers = { ["Content-Type"] = "application/json" } }
  assert.equal(201, r.status)
  return r.headers["x-subject-token"]
end

local function exports(id)
  return "/v1/" .. F.clouddc.project_id .. "/physicalservers/" .. id .. "/logs/exports"
end

setup(function()
  e = emu.start()
  tmp = shell.tmpdir("loghaul-test")
end)

teardown(function()
  emu.reset()
  vendors.reset()
  shell.rmdir(tmp)
end)

before_each(function()
  emu.reset()
  vendors.reset()
end)

describe("emulator fleet: requests in flight", function()
  it("counts the highest number of requests in flight at once, exactly, across both workers", function()
    local jobs = {}
    for i = 1, 16 do jobs[i] = { url = e.http_url .. "/slow?delay=0.5" } end
    local res = parallel(jobs, { max = 8 })
    for _, r in ipairs(res) do assert.equal(200, r.status) end
    local s = emu.stats()
    assert.equal(8, s.max_inflight)
    assert.equal(0, s.inflight)
    assert.equal(16, s.requests)
    emu.reset()
    assert.equal(0, emu.stats().max_inflight)
    parallel({ jobs[1], jobs[2], jobs[3] }, { max = 3 })
    assert.equal(3, emu.stats().max_inflight)
  end)

  it("counts HTTP/2 streams on the H2 port: 16 requests multiplexed on one connection, 8 at once", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", e.h2_url)
    local urls = {}
    for i = 1, 16 do urls[i] = q(e.h2_url .. "/slow?delay=0.5") .. " -o /dev/null" end
    local out = sh("curl -sS --http2 --cacert " .. q(e.ca_file) .. " --parallel --parallel-max 8 "
      .. "-w '%{http_version}\\n' " .. table.concat(urls, " ") .. " 2>&1")
    local _, twos = out:gsub("2\n", "")
    assert.equal(16, twos, out)
    local s = emu.stats()
    assert.equal(8, s.max_inflight)
    assert.equal(1, s.connections)
    assert.equal(0, s.inflight)
    -- bodies too (nginx buffers them: no raw request socket under HTTP/2)
    local v = cjson.decode((sh("curl -sS --http2 --cacert " .. q(e.ca_file) .. " --data-binary hello "
      .. q(e.h2_url .. "/echo"))))
    assert.equal(2, v.http_version)
    assert.equal("hello", v.body)
  end)

  it("ends every request once: faults answered early, dropped connections, archives served by nginx", function()
    emu.fault { { path = "/echo", status = 503, count = 1 }, { path = "/echo", drop = true, count = 1 } }
    assert.equal(503, req { path = "/echo" }.status)
    assert.are_not.equal(0, req { path = "/echo" }.rc)
    assert.equal(200, req { path = "/echo" }.status)
    vendors.configure { clouddc = { polls = 0 } }
    local h = { ["X-Auth-Token"] = login() }
    local v = decode(req { method = "POST", path = exports("srv-0001"), headers = h })
    local d = req { path = exports("srv-0001") .. "/" .. v.export_id .. "/content", headers = h }
    assert.equal(200, d.status)
    local s = emu.stats()
    assert.equal(0, s.inflight)
    assert.equal(1, s.max_inflight)
    assert.same({ inflight = 0, max_inflight = 1 }, s.by_vendor.clouddc)
    assert.same({ inflight = 0, max_inflight = 1 }, s.by_vendor.iam)
  end)

  it("tells vendors apart: max_inflight per vendor", function()
    emu.fault { path = "/api/v2/zls", delay = 0.4 }
    emu.fault { path = "/openapi/", delay = 0.4 }
    local jobs = {}
    for i = 1, 6 do jobs[i] = { url = e.http_url .. "/api/v2/zls", method = "POST" } end
    for i = 7, 8 do jobs[i] = { url = e.http_url .. "/openapi/v1.0/x" } end
    parallel(jobs, { max = 8 })
    local s = emu.stats()
    assert.equal(8, s.max_inflight)
    assert.equal(6, s.by_vendor.zenlayer.max_inflight)
    assert.equal(2, s.by_vendor.yeastar.max_inflight)
    assert.equal(0, s.by_vendor.zenlayer.inflight)
  end)
end)

describe("emulator fleet: CloudDC fleet servers", function()
  it("knows srv-0001 .. srv-9999 and the fixture server, nothing else", function()
    local ids = vendors.server_ids(3)
    assert.same({ "srv-0001", "srv-0002", "srv-0003" }, ids)
    assert.equal(300, #vendors.server_ids(300))
    assert.equal("2102313LKN10S0000042", vendors.fleet.sn("srv-0042"))
    local h = { ["X-Auth-Token"] = login() }
    for _, id in ipairs { "srv-0001", "srv-9999", F.clouddc.server_id } do
      assert.equal(202, req { method = "POST", path = exports(id), headers = h }.status)
    end
    for _, id in ipairs { "srv-0000", "srv-10000", "srv-001", "srv-abcd", "server-0001" } do
      local r = req { method = "POST", path = exports(id), headers = h }
      assert.equal(404, r.status)
      assert.equal("CloudDC.0404", decode(r).error_code)
    end
  end)

  it("serves 300 servers each its own small archive (own SN, own sha256), with Range", function()
    vendors.configure { clouddc = { export_seconds = 0 } }
    local h = { ["X-Auth-Token"] = login() }
    local ids = vendors.server_ids(300)
    local jobs = {}
    for i, id in ipairs(ids) do jobs[i] = { url = e.base_url .. exports(id) } end
    local created = parallel(jobs, { method = "POST", headers = h, max = 16 })
    for i, id in ipairs(ids) do
      assert.equal(202, created[i].status)
      jobs[i] = { url = e.base_url .. exports(id) .. "/" .. decode(created[i]).export_id .. "/content" }
    end
    local t0 = now()
    local got = parallel(jobs, { headers = h, max = 16 })
    local took = now() - t0
    print(string.format("\n300 fleet archives, first download (built on demand) at concurrency 16: %.2f s", took))
    local sums = {}
    for line in sh("cd " .. q(tmp .. "/p" .. seq) .. " && sha256sum $(seq 1 300)"):gmatch("[^\n]+") do
      local sum, i = line:match("^(%x+)%s+(%d+)$")
      sums[tonumber(i)] = sum
    end
    local archives = vendors.state().clouddc.archives
    local seen = {}
    for i, id in ipairs(ids) do
      assert.equal(200, got[i].status)
      assert.is_true(#got[i].body > 4000 and #got[i].body < 32000)
      assert.equal(archives[id].sha256, sums[i])
      assert.equal(archives[id].size, #got[i].body)
      assert.is_nil(seen[sums[i]])
      seen[sums[i]] = id
    end
    local s = emu.stats()
    assert.is_true(s.max_inflight >= 1 and s.max_inflight <= 16, "max_inflight " .. s.max_inflight)
    assert.equal(0, s.inflight)
    -- the same bytes again (cached), whole or in part, with the server's own SN
    local one = jobs[42].url:sub(#e.base_url + 1)
    local again = req { path = one, headers = h }
    assert.equal(sums[42], (sh("sha256sum " .. q(again.file))):match("^(%x+)"))
    assert.equal("attachment; filename=" .. vendors.fleet.sn("srv-0042") .. "-dump.tar.gz",
                 again.headers["content-disposition"])
    local part = req { path = one, headers = h, range = "100-199" }
    assert.equal(206, part.status)
    assert.equal(got[42].body:sub(101, 200), part.body)
    local list, rc = sh("tar tzf " .. q(again.file))
    assert.equal(0, rc)
    assert.matches("logs/raid.log", list)
  end)
end)

describe("emulator fleet: exports that take time", function()
  it("completes each export when its own time has passed; the percentage grows meanwhile", function()
    local cfg = { export_seconds = 1.5, export_seconds_spread = 1.5 }
    vendors.configure { clouddc = cfg }
    -- the quickest and the slowest of 20 servers
    local fast, slow
    for _, id in ipairs(vendors.server_ids(20)) do
      local s = vendors.fleet.export_seconds(id, cfg)
      assert.is_true(s >= 1.5 and s < 3)
      if not fast or s < vendors.fleet.export_seconds(fast, cfg) then fast = id end
      if not slow or s > vendors.fleet.export_seconds(slow, cfg) then slow = id end
    end
    local tf, ts = vendors.fleet.export_seconds(fast, cfg), vendors.fleet.export_seconds(slow, cfg)
    assert.is_true(ts - tf > 0.9)
    local h = { ["X-Auth-Token"] = login() }
    -- Each observation is bracketed by curl's clock (request out, answer back), so the checks
    -- hold however loaded the machine is: Running only before created + duration, completed
    -- only after it, and the percentage never going down.
    local created = timed({ { path = exports(fast), method = "POST" }, { path = exports(slow), method = "POST" } },
                          { headers = h })
    local jobs = {}
    for i, id in ipairs { fast, slow } do
      local v = cjson.decode(created[i].body)
      assert.equal("Running", v.status)
      assert.equal("30%", v.percentage)
      -- created (server clock) lies in [lo, hi]: so its end does too, shifted by its duration
      local due = vendors.fleet.export_seconds(id, cfg)
      jobs[i] = { id = id, url = exports(id) .. "/" .. v.export_id, seen = {},
                  done_lo = created[i].lo + due, done_hi = created[i].hi + due }
    end
    local first_done = {}
    for _ = 1, 5 do
      local steps = {}
      for k = 1, 40 do steps[k] = { path = jobs[(k - 1) % 2 + 1].url } end
      for k, r in ipairs(timed(steps, { headers = h })) do
        local i = (k - 1) % 2 + 1
        local j, v = jobs[i], cjson.decode(r.body)
        local pct = tonumber(v.percentage:match("^(%d+)%%$"))
        if v.status == "completed" then
          assert.is_true(r.hi >= j.done_lo - 0.005, j.id .. " completed early")   -- ngx.now(): ms
          assert.equal(100, pct)
          first_done[i] = first_done[i] or k
        else
          assert.equal("Running", v.status)
          assert.is_true(r.lo < j.done_hi + 0.005, j.id .. " still running after its time")
          assert.is_true(pct >= 30 and pct < 100)
        end
        j.seen[#j.seen + 1] = { pct = pct, status = v.status }
      end
      if first_done[2] then break end
      first_done[1] = first_done[1] and -1   -- done in an earlier round: before any of the next
    end
    assert.is_truthy(first_done[1] and first_done[2])
    assert.is_true(first_done[1] < first_done[2])   -- the quick one finished first
    local grew = false
    for _, j in ipairs(jobs) do
      for k = 1, #j.seen do
        assert.is_true(k == 1 or j.seen[k].pct >= j.seen[k - 1].pct)
        if j.seen[k].status == "Running" and j.seen[k].pct > 30 then grew = true end
      end
      assert.equal(200, req { path = j.url .. "/content", headers = h }.status)
    end
    assert.is_true(grew, cjson.encode(jobs))
    -- time, not polls: content without a single poll once the time has passed
    local e2 = decode(req { method = "POST", path = exports(fast), headers = h })
    local u2 = exports(fast) .. "/" .. e2.export_id .. "/content"
    local r = req { path = u2, headers = h }
    if r.status == 400 then
      sh(string.format("sleep %.3f", tf + 0.05))
      r = req { path = u2, headers = h }
    end
    assert.equal(200, r.status)
  end)

  it("refuses bad settings with a clear error", function()
    assert.has_error(function() vendors.configure { clouddc = { export_seconds = -1 } } end)
    assert.has_error(function() vendors.configure { clouddc = { export_seconds = "2" } } end)
    assert.has_error(function() vendors.configure { clouddc = { export_seconds_spread = -1 } } end)
    assert.has_error(function() vendors.configure { clouddc = { fleet_archive_size = 10 } } end)
    local ok, err = pcall(vendors.configure, { zenlayer = { rate = { per_second = 0 } } })
    assert.is_false(ok)
    assert.matches("zenlayer.rate: per_second", err)
    assert.has_error(function() vendors.configure { yeastar = { rate = { per_second = 1, bust = 2 } } } end)
    assert.equal(false, vendors.state().settings.clouddc.export_seconds)
  end)
end)

describe("emulator fleet: rate limits", function()
  it("CloudDC: one token bucket across both workers; over it 429 APIG.0308, Retry-After: 1", function()
    vendors.configure { clouddc = { rate = { per_second = 10, burst = 5 } } }
    local jobs = {}
    for i = 1, 40 do jobs[i] = { url = e.http_url .. exports("srv-0001") } end   -- no auth: accepted = 401
    local res = parallel(jobs, { method = "POST", max = 8 })
    local n = { [401] = 0, [429] = 0 }
    for _, r in ipairs(res) do
      n[r.status] = n[r.status] + 1
      if r.status == 429 then
        assert.same({ error_code = "APIG.0308", error_msg = "The request is throttled." }, cjson.decode(r.body))
      end
    end
    assert.equal(40, n[401] + n[429])
    local s = vendors.state().clouddc
    assert.equal(n[429], s.throttled)
    assert.equal(n[401], #s.accepted_times)
    assert.is_true(n[429] > 0 and n[401] >= 5)
    -- what got through never beat the bucket: at most burst + rate * w in any w seconds
    local span = s.accepted_times[#s.accepted_times] - s.accepted_times[1]
    assert.is_true(n[401] <= 5 + 10 * span + 1)
    for _, w in ipairs { 0.25, 0.5, 1, 2 } do
      assert.is_true(vendors.max_in_window(s.accepted_times, w) <= 5 + 10 * w + 1)
    end
    -- an empty bucket that barely refills: the second request is throttled, with Retry-After
    vendors.configure { clouddc = { rate = { per_second = 0.001, burst = 1 } } }
    assert.equal(401, req { method = "POST", path = exports("srv-0001"), base = e.http_url }.status)
    local r = req { method = "POST", path = exports("srv-0001"), base = e.http_url }
    assert.equal(429, r.status)
    assert.equal("1", r.headers["retry-after"])
    assert.equal("application/json", r.headers["content-type"])
    vendors.configure { clouddc = { rate = false } }
    assert.equal(401, req { method = "POST", path = exports("srv-0001"), base = e.http_url }.status)
  end)

  it("Zenlayer answers 429 REQUEST_LIMIT_EXCEEDED, Yeastar HTTP 200 errcode 70082", function()
    vendors.configure { zenlayer = { rate = { per_second = 0.001, burst = 2 } },
                        yeastar = { rate = { per_second = 0.001, burst = 2 } } }
    local zl, ys = {}, {}
    for i = 1, 3 do
      zl[i] = req { method = "POST", path = "/api/v2/zls", base = e.http_url, body = "{}",
                    headers = { ["Content-Type"] = "application/json" } }
      ys[i] = req { path = "/openapi/v1.0/system_log/list", base = e.http_url }
    end
    assert.equal(401, zl[2].status)
    assert.equal(429, zl[3].status)
    local v = decode(zl[3])
    assert.equal("REQUEST_LIMIT_EXCEEDED", v.code)
    assert.is_string(v.requestId)
    assert.is_string(v.message)
    assert.equal(10004, decode(ys[2]).errcode)
    assert.equal(200, ys[3].status)
    assert.equal(70082, decode(ys[3]).errcode)
    local s = vendors.state()
    assert.equal(1, s.zenlayer.throttled)
    assert.equal(1, s.yeastar.throttled)
    assert.equal(2, #s.zenlayer.accepted_times)
    assert.equal(0, s.clouddc.throttled)
    assert.same({ 5, 2, 1 }, { vendors.max_in_window({ 0, 0.1, 0.2, 0.5, 0.9, 1.5, 2 }, 1),
                               vendors.max_in_window({ 0, 1, 1.5 }, 1), vendors.max_in_window({ 3 }, 1) })
  end)
end)
