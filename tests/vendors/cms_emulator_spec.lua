-- CC-CMS uploadClientLog end to end: the real core, the emulator over TLS (auth-v2 checked
-- by the emulator's own code), bytes and sha256 as the emulator received them.
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F

describe("cms against the emulator", function()
  local tmp

  setup(function() T.start() end)
  before_each(function()
    T.reset()
    tmp = T.tmpdir()
  end)
  after_each(function() T.rmdir(tmp) end)

  local function client(extra)
    return loghaul.cms(T.opts(extra or { access_key = F.cms.access_key, secret_key = F.cms.secret_key }))
  end

  local function last_received()
    local r = T.counters("cms").received
    return r and r[#r]
  end

  it("uploads the file: the emulator receives its bytes and sha256 under its own name", function()
    local path = tmp .. "/OELOG_99991093_10.1.2.3_20250226162127.zip"
    T.util.write_random(path, 70000)
    local events, cb = T.progress_log()
    local cms = loghaul.cms(T.opts{ access_key = F.cms.access_key, secret_key = F.cms.secret_key,
                                    on_progress = cb })
    local res, err = cms:upload_client_log(path)
    assert.is_nil(err)
    assert.same("200", res.status)
    local got = last_received()
    assert.equal("OELOG_99991093_10.1.2.3_20250226162127.zip", got.name)
    assert.equal(70000, got.size)
    assert.equal(T.sha256sum(path), got.sha256)
    assert.equal(T.sha256sum(path), T.sha256sum(got.path))   -- the bytes the emulator stored
    local c = T.counters("cms")
    assert.equal(1, c.uploads)
    assert.equal(0, c.rejected)
    assert.is_true(#events >= 1)
    assert.equal("upload", events[#events].phase)
  end)

  it("sends FileType 0 by default, and the emulator refuses another FileType (400, not retried)", function()
    local path = tmp .. "/a.zip"
    T.util.write_random(path, 100)
    local cms = client()
    local res, err = cms:upload_client_log(path, { file_type = 3 })
    assert.is_nil(res)
    assert.equal(400, err.status)
    assert.equal(1, err.attempts)
    assert.equal("cms", err.vendor)
    assert.equal(0, T.counters("cms").uploads)
    assert.truthy(cms:upload_client_log(path))   -- default FileType: accepted
    assert.equal(1, T.counters("cms").uploads)
  end)

  it("uses the filename option as the part's file name", function()
    local path = tmp .. "/local-name.bin"
    T.util.write_random(path, 4096)
    local res, err = client():upload_client_log(path, { filename = "OELOG_1_10.0.0.1_20250101000000.zip" })
    assert.is_nil(err)
    assert.equal("200", res.status)
    local got = last_received()
    assert.equal("OELOG_1_10.0.0.1_20250101000000.zip", got.name)
    assert.equal(T.sha256sum(path), got.sha256)
  end)

  it("refuses a missing file or a directory before sending anything", function()
    local cms = client()
    for _, p in ipairs{ tmp .. "/nope.zip", tmp } do
      local res, err = cms:upload_client_log(p)
      assert.is_nil(res)
      assert.is_true(err.kind == "io" or err.kind == "invalid")
      assert.truthy(tostring(err):find(p, 1, true))
    end
    assert.equal(0, T.emu.stats().requests)
    assert.equal(0, T.counters("cms").requests)
  end)

  it("a wrong secret key is kind auth, HTTP 401, sent once, nothing stored", function()
    local path = tmp .. "/a.zip"
    T.util.write_random(path, 1000)
    local cms = client{ access_key = F.cms.access_key, secret_key = "wrong-secret-key-0000" }
    local res, err = cms:upload_client_log(path)
    assert.is_nil(res)
    assert.equal("auth", err.kind)
    assert.equal(401, err.status)
    assert.equal(1, err.attempts)
    assert.is_false(err.retryable)
    assert.equal("401", err.code) -- from CC-CMS's own {status, message} body
    assert.is_nil(tostring(err):find("wrong-secret-key-0000", 1, true))
    local c = T.counters("cms")
    assert.equal(0, c.uploads)
    assert.equal(1, c.rejected)
  end)

  it("does not retry an upload that timed out: it may have arrived", function()
    local path = tmp .. "/slow.zip"
    T.util.write_random(path, 1000)
    T.emu.fault{ path = "/rest/cmsapp/", delay = 3, count = 5 }
    local res, err = client{ access_key = F.cms.access_key, secret_key = F.cms.secret_key, timeout = 0.5 }
      :upload_client_log(path)
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.equal(1, err.attempts)
  end)

  it("retries a 503 and uploads the whole file again", function()
    local path = tmp .. "/b.zip"
    T.util.write_random(path, 20000)
    T.emu.fault{ path = "/rest/cmsapp/", status = 503, count = 1 }
    local res, err = client():upload_client_log(path)
    assert.is_nil(err)
    assert.equal("200", res.status)
    assert.equal(2, T.path_requests("/rest/cmsapp/"))
    -- by name: the timed-out upload of the test before may still land after this one
    local got
    for _, r in ipairs(T.counters("cms").received or {}) do if r.name == "b.zip" then got = r end end
    assert.equal(T.sha256sum(path), got and got.sha256)
  end)
end)
