-- Fault injection against the emulator: downloads cut at random offsets resume to the right
-- bytes, a changed file restarts, 429 storms end within the policy's bound, expired tokens
-- and URLs are renewed mid-run, yesterday's file is never handed back, disk-full and
-- read-only destinations fail as `io` errors naming the path.
local client_mod = require "loghaul.client"
local download = require "loghaul.download"
local envelope = require "loghaul.envelope"
local loghaul = require "loghaul"
local emu = require "helpers.emulator"
local vendors = require "helpers.vendors"
local shell = require "helpers.shell"
local tu = require "helpers.util"

local E, dir
local counts = { faults = 0, resumed = 0, downloads = 0 }

-- a real session, wrapped to count the body bytes each attempt moved
local function counting_session(opts)
  local s = require("loghaul.core").session(opts)
  local w = { moved = 0, requests = 0 }
  function w.request(_, req)
    w.requests = w.requests + 1
    local res, err = s:request(req)
    local b = (res and res.bytes) or (err and err.bytes) or 0
    w.moved = w.moved + b
    return res, err
  end
  function w.close() s:close() end
  return w
end

local function plain_client(extra)
  local opts = { endpoint = E.base_url, ca_file = E.ca_file, log = false, timeout = 10,
                 retry = { max_attempts = 5, base_delay = 0.001, max_delay = 0.01 } }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return client_mod.new(opts, { vendor = "test" })
end

local function fetch(c, url, dest)
  return download.fetch(c, { operation = "download", url = url, decode = envelope.huawei, dest = dest })
end

describe("fault injection", function()
  local close_suite
  setup(function() E, dir, close_suite = vendors.open_suite() end)
  teardown(function()
    close_suite()
    print(("\nfaults injected: %d, downloads: %d, resumed: %d"):format(counts.faults, counts.downloads, counts.resumed))
  end)

  it("100 downloads each cut at a random offset complete with the right bytes, <= 1.1x moved", function()
    local size = 256 * 1024
    local f = emu.make_file("cutme.bin", size)
    math.randomseed(20240422)
    local total_moved, max_ratio = 0, 0
    for i = 1, 100 do
      local after = math.random(0, size - 1)
      emu.fault{ path = "/files/cutme.bin", cut_after = after, count = 1 }
      counts.faults = counts.faults + 1
      local sess = counting_session{ ca_file = E.ca_file, timeout = 10 }
      local c = plain_client{ _session = sess }
      local dest = dir .. "/cut/" .. i .. ".bin"
      local res, err = fetch(c, f.url, dest)
      assert(res, "download " .. i .. " (cut after " .. after .. "): " .. tostring(err))
      assert.equal(size, res.bytes)
      assert.equal(f.sha256, tu.sha256sum(dest))
      assert.equal(f.sha256, res.sha256)
      assert.equal(2, sess.requests, "download " .. i .. " took " .. sess.requests .. " requests")
      assert.is_true(sess.moved <= 1.1 * size, ("download %d moved %d bytes"):format(i, sess.moved))
      total_moved = total_moved + sess.moved
      max_ratio = math.max(max_ratio, sess.moved / size)
      assert.same({ i .. ".bin" }, tu.ls(dir .. "/cut")) -- no .part left behind
      counts.downloads, counts.resumed = counts.downloads + 1, counts.resumed + 1
      os.remove(dest)
    end
    assert.same({}, tu.ls(dir .. "/cut"))
    print(("\n100 cut downloads: %.3fx moved on average, %.3fx at most"):format(total_moved / (100 * size), max_ratio))
  end)

  it("a file that changed between the cut and the resume is restarted, not spliced", function()
    local size = 256 * 1024
    local f = emu.make_file("changing.bin", size)
    emu.fault{ path = "/files/changing.bin", cut_after = math.floor(size / 2), count = 1 }
    counts.faults = counts.faults + 1
    local sess = counting_session{ ca_file = E.ca_file, timeout = 10 }
    local inner = sess.request
    local changed
    sess.request = function(self, req)
      local res, err = inner(self, req)
      if not res and not changed then
        -- same size, new bytes, another mtime: a new ETag
        changed = emu.make_file("changing.bin", size)
        os.execute("touch -d '2001-02-03 04:05:06' " .. tu.shell_quote(changed.path))
      end
      return res, err
    end
    local c = plain_client{ _session = sess }
    local res = assert(fetch(c, f.url, dir .. "/changing.bin"))
    assert.is_truthy(changed)
    assert.are_not.equal(f.sha256, changed.sha256)
    assert.equal(changed.sha256, tu.sha256sum(dir .. "/changing.bin"))
    assert.equal(changed.sha256, res.sha256)
    assert.is_true(sess.moved <= size * 1.6)
    os.remove(dir .. "/changing.bin")
  end)

  it("429 storms finish within the policy's bound, retrying or giving up", function()
    local policy = { max_attempts = 4, base_delay = 0.05, max_delay = 0.2, max_retry_after = 0.3 }
    emu.fault{ path = "/echo", status = 429, retry_after = 1, count = 3 }
    counts.faults = counts.faults + 3
    -- the retry policy's bound alone: no adaptive rate limiter pacing the retries
    local c = plain_client{ retry = policy, rate = false }
    local t0 = require("loghaul.runtime").now()
    local v, err = c:call{ operation = "echo", url = E.base_url .. "/echo", decode = envelope.huawei }
    assert(v, tostring(err))
    local took = require("loghaul.runtime").now() - t0
    assert.is_true(took >= 0.9 and took <= 3 * policy.max_retry_after + 1.5, "took " .. took)
    -- an endless storm: max_attempts requests, then the error says why (on a fresh client:
    -- the first one's retry budget is down to 7.1 of 10 tokens, and throttles from 5). Again
    -- the policy alone: the adaptive limiter would pace these retries at its floor, 0.5/s
    -- ("a throttle before any rate was measured drops to the floor" in tests/vendors/rate_spec.lua)
    c = plain_client{ retry = policy, rate = false }
    emu.fault{ path = "/echo", status = 429, retry_after = 100 }
    counts.faults = counts.faults + 4
    t0 = require("loghaul.runtime").now()
    local _, err2 = c:call{ operation = "echo", url = E.base_url .. "/echo", decode = envelope.huawei }
    took = require("loghaul.runtime").now() - t0
    assert.equal(4, err2.attempts)
    assert.equal(429, err2.status)
    assert.is_true(err2.retryable)
    assert.matches("after 4 attempts", tostring(err2), 1, true)
    assert.is_true(took <= 3 * policy.max_retry_after + 1.5, "took " .. took)
    emu.reset()
  end)

  it("yesterday's {SN}-dump.tar.gz is never handed back; replaced only by a complete new one", function()
    local fx = vendors.fixtures.clouddc
    vendors.configure{ clouddc = { polls = 1 } }
    local dest = dir .. "/dc/"
    os.execute("mkdir -p " .. dest)
    local old = dest .. fx.sn .. "-dump.tar.gz"
    shell.write_file(old, "yesterday")
    local dc = loghaul.clouddc{ endpoint = E.base_url, ca_file = E.ca_file, project_id = fx.project_id, log = false,
      auth = { access_key = fx.access_key, secret_key = fx.secret_key },
      retry = { max_attempts = 3, base_delay = 0.001, max_delay = 0.01 } }
    emu.fault{ path = "/v1/" .. fx.project_id .. "/physicalservers/" .. fx.server_id .. "/logs/exports/",
               method = "GET", drop = true }
    counts.faults = counts.faults + 10
    local res, err = dc:export_and_download(fx.server_id, { dest = dest, poll_interval = 0 })
    assert.is_nil(res)
    assert.equal("network", err.kind)
    assert.same({ fx.sn .. "-dump.tar.gz" }, tu.ls(dest))
    assert.equal(9, tu.size(old))
    emu.reset()
    -- cut mid-file, then complete: the new file replaces yesterday's
    emu.fault{ path = "/v1/" .. fx.project_id .. "/physicalservers/" .. fx.server_id .. "/logs/exports/",
               method = "GET", cut_after = 1000, count = 1 }
    local got = assert(dc:export_and_download(fx.server_id, { dest = dest, poll_interval = 0 }))
    assert.equal(old, got.path)
    local archive = E.dir .. "/www/_vfiles/clouddc-300000.tar.gz"   -- the emulator's own archive
    assert.equal(tu.sha256sum(archive), tu.sha256sum(old))
    assert.equal(tu.sha256sum(old), got.sha256)
    assert.is_true(got.bytes > 1000)
    assert.same({ fx.sn .. "-dump.tar.gz" }, tu.ls(dest))
    counts.downloads = counts.downloads + 1
    emu.reset()
    vendors.reset()
  end)

  it("expired Yeastar tokens and download URLs are renewed mid-run", function()
    local fx = vendors.fixtures.yeastar
    vendors.configure{ yeastar = { access_token_ttl = 1, download_url_ttl = 1 } }
    local frozen = os.time()
    -- a clock that does not move: the client trusts its token, the server has expired it
    local pbx = loghaul.yeastar{ base_url = E.base_url, ca_file = E.ca_file, client_id = fx.client_id,
      client_secret = fx.client_secret, log = false, now = function() return frozen end,
      retry = { max_attempts = 3, base_delay = 0.001, max_delay = 0.01 } }
    assert(pbx:list_system_logs{ page = 1, page_size = 5 })
    os.execute("sleep 1.3")
    local page = assert(pbx:list_system_logs{ page = 1, page_size = 5 })
    local st = vendors.state().yeastar
    assert.is_true(st.refreshes + st.logins >= 2)
    local file = assert(pbx:download_system_logs({ page.data[1].file_name }, { dest = dir .. "/ys/" }))
    -- the tar as the emulator built it for the last download URL it issued
    local function served_file(f) return E.dir .. "/www/_vfiles/" .. f.path:match("([^/]+)$") end
    assert.equal(tu.sha256sum(served_file(file)), tu.sha256sum(file.path))
    assert.equal(tu.sha256sum(file.path), file.sha256)
    -- the URL expires between getting it and using it: the download is held back past its 1 s life
    local link = assert(pbx:system_log_download_url{ page.data[1].file_name })
    os.execute("sleep 1.3")
    local before = vendors.state().yeastar
    emu.fault{ path = "/api/download/", delay = 1.2, count = 1 }
    local file2 = assert(pbx:download_system_logs({ page.data[1].file_name }, { dest = dir .. "/ys2/" }))
    local after = vendors.state().yeastar
    assert.equal(tu.sha256sum(served_file(file2)), tu.sha256sum(file2.path))
    assert.equal(tu.sha256sum(file2.path), file2.sha256)
    assert.is_string(link.download_resource_url)
    assert.equal(1, after.stale_downloads - before.stale_downloads)   -- the stale URL was met once,
    assert.equal(2, after.download_urls - before.download_urls)       -- renewed,
    assert.equal(1, after.downloads - before.downloads)               -- and the download then completed
    counts.faults = counts.faults + 2
    vendors.reset()
  end)

  it("expired IAM tokens are renewed mid-run", function()
    local fx, iamfx = vendors.fixtures.clouddc, vendors.fixtures.iam
    vendors.configure{ iam = { token_ttl = 1 }, clouddc = { polls = 1 } }
    local frozen = os.time()
    local dc = loghaul.clouddc{ endpoint = E.base_url, ca_file = E.ca_file, project_id = fx.project_id, log = false,
      now = function() return frozen end,
      auth = { iam_endpoint = E.base_url, user = iamfx.user, password = iamfx.password, domain = iamfx.domain,
               project = iamfx.project } }
    local task = assert(dc:export_server_logs(fx.server_id))
    os.execute("sleep 1.3")
    assert(dc:show_logs_export_status(fx.server_id, task.export_id))
    assert.is_true(vendors.state().iam.logins >= 2)
    counts.faults = counts.faults + 1
    vendors.reset()
  end)

  describe("full and read-only destinations", function()
    local mnt
    local function mount(opts)
      mnt = tu.tmpdir()
      local ok = os.execute("mount -t tmpfs -o " .. opts .. " tmpfs " .. tu.shell_quote(mnt) .. " 2>/dev/null")
      if ok ~= true and ok ~= 0 then
        tu.rmdir(mnt)
        mnt = nil
        return false
      end
      return true
    end
    after_each(function()
      if mnt then
        os.execute("umount " .. tu.shell_quote(mnt) .. " 2>/dev/null")
        tu.rmdir(mnt)
        mnt = nil
      end
    end)

    it("disk full: an io error with the path, no half file under the final name", function()
      if not mount("size=1m") then pending("mount -t tmpfs is not permitted here: disk-full case skipped") return end
      local f = emu.make_file("big2m.bin", 2 * 1024 * 1024)
      local c = plain_client()
      for _, dest in ipairs{ mnt .. "/big.bin", mnt .. "/sub/" } do
        local res, err = fetch(c, f.url, dest)
        assert.is_nil(res)
        assert.equal("io", err.kind)
        assert.matches(mnt, err.message, 1, true)
        assert.matches("space", err.message)
        assert.is_false(tu.exists(mnt .. "/big.bin"))
        assert.same({}, (dest:sub(-1) == "/") and tu.ls(dest) or {})
        assert.equal(1, err.attempts)
      end
      assert.same({ "sub" }, tu.ls(mnt))
    end)

    it("read-only: an io error with the path, nothing written", function()
      if not mount("size=1m,ro") then pending("mount -t tmpfs is not permitted here: read-only case skipped") return end
      local f = emu.make_file("small2.bin", 1000)
      local c = plain_client()
      for _, dest in ipairs{ mnt .. "/x.bin", mnt .. "/sub/", mnt .. "/" } do
        local res, err = fetch(c, f.url, dest)
        assert.is_nil(res)
        assert.equal("io", err.kind)
        assert.matches(mnt, err.message, 1, true)
      end
      assert.same({}, tu.ls(mnt))
    end)
  end)
end)
