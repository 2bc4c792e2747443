-- The per-client retry budget (gRPC retry throttling, lua/loghaul/retry.lua) against the
-- emulator: a long run on a flaky link does not starve, a dead server does not get a storm.
-- Requests are counted by the emulator, files judged by sha256sum.
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F
local SERVER = F.clouddc.server_id

describe("retry budget against the emulator", function()
  local tmp, restore_polls

  setup(function()
    T.start()
    restore_polls = T.vendors.fast_export_polls()
  end)
  teardown(function() restore_polls() end)
  before_each(function()
    T.reset()
    tmp = T.tmpdir()
  end)
  after_each(function()
    T.emu.reset()
    T.rmdir(tmp)
  end)

  local function client(extra)
    local o = T.opts{ project_id = F.clouddc.project_id,
                      auth = { access_key = F.clouddc.access_key, secret_key = F.clouddc.secret_key } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return loghaul.clouddc(o)
  end

  it("12 downloads on one client, each cut 3 times at random offsets, all complete with the right sha256", function()
    local size = 60000
    T.vendors.configure{ clouddc = { polls = 0, archive_size = size } }
    local dc = client()
    math.randomseed(11)
    local archive
    for i = 1, 12 do
      local task = assert(dc:export_server_logs(SERVER))
      local content = "/v1/" .. F.clouddc.project_id .. "/physicalservers/" .. SERVER .. "/logs/exports/"
        .. task.export_id .. "/content"
      -- three cuts, each before a quarter of the file: every answer ends early
      local cuts = {}
      for k = 1, 3 do cuts[k] = { path = content, cut_after = math.random(1, math.floor(size / 4)), count = 1 } end
      T.emu.fault(cuts)
      local dest = tmp .. "/" .. i .. "/"
      local file, err = dc:download_server_logs(SERVER, task.export_id, { dest = dest })
      assert.is_nil(err, err and tostring(err))
      archive = archive or (T.emu.info().dir .. "/www/_vfiles/clouddc-" .. size .. ".tar.gz")
      assert.equal(T.sha256sum(archive), T.sha256sum(file.path))
      assert.equal(file.sha256, T.sha256sum(file.path))
      assert.equal(4, T.path_requests(content))   -- 3 cut answers, then the rest
      assert.equal(1, #T.ls(dest))                  -- no .part left
    end
    assert.equal(36, T.emu.stats().faults_fired)
    dc:close()
  end)

  it("30 calls in a row against a 503-only server: the first gets all its attempts, the rest one each", function()
    local dc = client{ retry = { max_attempts = 5, base_delay = 0.001, max_delay = 0.002 } }
    T.emu.fault{ path = "/v1/", status = 503 }
    local attempts, why = {}, {}
    for i = 1, 30 do
      local v, err = dc:show_logs_export_status(SERVER, "e" .. i)
      assert.is_nil(v)
      assert.equal(503, err.status)
      attempts[i], why[i] = err.attempts, err.gave_up
    end
    assert.equal(5, attempts[1])
    assert.equal("max_attempts reached", why[1])
    assert.equal("client retry budget exhausted", why[30])
    local requests = T.path_requests("/v1/")
    -- gRPC throttling with 10 tokens and a threshold of 5: 5 + 29 x 1 requests, not 30 x 5
    assert.equal(34, requests)
    assert.is_true(requests < 30 * 5 / 4)
    dc:close()
  end)
end)
