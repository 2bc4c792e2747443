-- An error raised by a Lua callback (on_progress inside a transfer or between phases, log)
-- reaches the caller as the same value, after the transfer ended and its `.part` is gone:
-- never `nil, err`, never retried. (The real Ctrl-C is in interrupt_spec.lua.)
local T = require "vendors.emu_ctx"
local loghaul = require "loghaul"

describe("errors raised by callbacks", function()
  local dir
  setup(function()
    T.start()
    T.reset()
    dir = T.util.tmpdir()
  end)
  teardown(function()
    T.reset()
    T.util.rmdir(dir)
  end)

  local function pbx(extra)
    return loghaul.yeastar(T.opts{ client_id = T.F.yeastar.client_id, client_secret = T.F.yeastar.client_secret,
                                   on_progress = extra.on_progress, log = extra.log })
  end

  it("on_progress raising inside a download: same value raised, no .part, no second attempt", function()
    T.emu.fault{ path = "/api/download/", status = 302, body = "",
                 headers = { Location = "/trickle?bytes=200000&interval=0.05&chunk=2000" } }
    local stop = { "stop!" }
    local p = pbx{ on_progress = function(ev) if ev.phase == "download" and ev.done > 0 then error(stop) end end }
    local page = assert(p:list_system_logs{ page_size = 1 })
    local before = T.path_requests("/trickle")
    local ok, err = pcall(p.download_system_logs, p, { page.data[1].file_name }, { dest = dir .. "/a/" })
    assert.is_false(ok)
    assert.equal(stop, err)
    assert.same({}, T.util.ls(dir .. "/a"))
    assert.equal(1, T.path_requests("/trickle") - before)
    T.emu.reset()
  end)

  it("on_progress raising between phases (export) stops export_and_download", function()
    local dc = loghaul.clouddc(T.opts{ project_id = T.F.clouddc.project_id,
      auth = { access_key = T.F.clouddc.access_key, secret_key = T.F.clouddc.secret_key },
      on_progress = function() error("from on_progress", 0) end })
    local ok, err = pcall(dc.export_and_download, dc, T.F.clouddc.server_id, { dest = dir .. "/b/" })
    assert.is_false(ok)
    assert.equal("from on_progress", err)
  end)

  it("a log function raising stops the call with its error", function()
    local p = pbx{ log = function(level) if level == "debug" then error("log broke", 0) end end }
    local ok, err = pcall(p.list_system_logs, p)
    assert.is_false(ok)
    assert.equal("log broke", err)
  end)
end)
