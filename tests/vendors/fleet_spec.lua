-- A fleet run (issue 10): export_and_download_many over 300 emulated CloudDC servers on the
-- curl multi scheduler, with exports of varied length and faults aimed at some servers. What
-- a user sees: every server's file with the emulator's sha256, or that server's own error;
-- never more requests in flight than the concurrency; connections reused across servers.
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F
local N = os.getenv("LOGHAUL_TEST_SMALL") == "1" and 60 or 300
local CONCURRENCY = 16

describe("export_and_download_many over a fleet", function()
  local dir, restore

  setup(function()
    T.start()
    restore = T.vendors.fast_export_polls()
  end)
  teardown(function() restore() end)
  before_each(function()
    T.reset()
    T.vendors.configure{ clouddc = { export_seconds = 0.2, export_seconds_spread = 0.6 } }
    dir = T.tmpdir()
  end)
  after_each(function() T.rmdir(dir) end)

  it(N .. " servers at concurrency 16: right files or their own errors, the cap kept, connections reused", function()
    local dc = loghaul.clouddc(T.opts{ project_id = F.clouddc.project_id,
      auth = { access_key = F.clouddc.access_key, secret_key = F.clouddc.secret_key },
      retry = { max_attempts = 4, base_delay = 0.05, max_delay = 0.2 } })
    local ids = T.vendors.server_ids(N)
    local base = "/v1/" .. F.clouddc.project_id .. "/physicalservers/"
    -- a 500 on one server's every status poll (its own error), a 429 throttle and a 503 once
    -- (retried), a download cut short once (resumed)
    T.emu.fault{ path = base .. "srv-0007/logs/exports/", status = 500,
                 body = '{"error_code":"CloudDC.0500","error_msg":"emulated"}' }
    T.emu.fault{ path = base .. "srv-0011/", status = 429, retry_after = 0, count = 1,
                 body = '{"error_code":"APIG.0308","error_msg":"The request is throttled."}' }
    T.emu.fault{ path = base .. "srv-0023/logs/exports/", status = 503, count = 1 }
    local ended = 0
    local t0 = require("loghaul.core").monotonic()
    local by_id = dc:export_and_download_many(ids, { dest = dir .. "/", concurrency = CONCURRENCY,
      poll_interval = 0.1, on_result = function() ended = ended + 1 end })
    local wall = require("loghaul.core").monotonic() - t0
    assert.are.equal(N, ended)
    -- one after another, the exports alone would take the sum of their lengths
    local settings, serial = T.vendors.state().settings.clouddc, 0
    for _, id in ipairs(ids) do serial = serial + T.vendors.fleet.export_seconds(id, settings) end
    assert.is_true(wall < serial / 2, ("%.1f s for exports that take %.1f s one after another"):format(wall, serial))
    local archives = T.vendors.state().clouddc.archives
    local ok = 0
    for _, id in ipairs(ids) do
      local r = by_id[id]
      if id == "srv-0007" then
        assert.is_nil(r.file)
        assert.are.same({ "api", "CloudDC.0500", "clouddc" }, { r.err.kind, r.err.code, r.err.vendor })
      else
        assert.is_table(r.file, id .. ": " .. tostring(r.err))
        assert.are.equal(dir .. "/" .. T.vendors.fleet.sn(id) .. "-dump.tar.gz", r.file.path)
        assert.are.equal(archives[id].sha256, r.file.sha256, id)
        assert.are.equal(archives[id].sha256, T.sha256sum(r.file.path), id)
        ok = ok + 1
      end
    end
    assert.are.equal(N - 1, ok)
    local st = T.emu.stats()
    local cdc = st.by_vendor and st.by_vendor.clouddc or st
    assert.is_true(cdc.max_inflight <= CONCURRENCY, "max in flight " .. cdc.max_inflight)
    assert.is_true(st.connections <= 2 * CONCURRENCY, st.connections .. " connections for " .. N .. " servers")
    dc:close()
  end)

  it("refuses ids listed twice and names the option it does not know", function()
    local dc = loghaul.clouddc(T.opts{ project_id = F.clouddc.project_id, auth = { token = "t0k3n" } })
    assert.has_error(function() dc:export_and_download_many({ "srv-0001", "srv-0001" }) end,
      'loghaul.clouddc: server id "srv-0001" is listed twice')
    assert.has_error(function() dc:export_and_download_many({ "srv-0001" }, { concurency = 2 }) end,
      "loghaul.clouddc: unknown option 'concurency'")
    dc:close()
  end)
end)
