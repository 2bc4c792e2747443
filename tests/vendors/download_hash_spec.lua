-- A download's sha256 comes from the core, which hashes the bytes as it writes them: the
-- file is read back only when the last answer was a resumed 206 (it saw just the tail).
local client_mod = require "loghaul.client"
local download = require "loghaul.download"
local envelope = require "loghaul.envelope"
local runtime = require "loghaul.runtime"
local emu = require "helpers.emulator"
local tu = require "helpers.util"

describe("download sha256", function()
  local e, dir, f

  setup(function()
    e = emu.start()
    dir = tu.tmpdir()
    f = emu.make_file("hashme.bin", 300 * 1024 + 7)
  end)
  teardown(function() emu.reset() tu.rmdir(dir) end)
  before_each(function() emu.reset() end)
  after_each(function() runtime.sha256_file:revert() end)

  local function fetch(name)
    local c = client_mod.new({ endpoint = e.base_url, ca_file = e.ca_file, log = false,
      retry = { max_attempts = 3, base_delay = 0.001, max_delay = 0.01 } }, { vendor = "test" })
    local res, err = download.fetch(c, { operation = "download", url = f.url, decode = envelope.huawei,
                                         dest = dir .. "/" .. name })
    c:close()
    return res, err
  end

  it("is the core's hash of what it wrote: the file is not read again", function()
    spy.on(runtime, "sha256_file")
    local res = assert(fetch("whole.bin"))
    assert.equal(f.sha256, res.sha256)
    assert.equal(f.sha256, tu.sha256sum(res.path))
    assert.spy(runtime.sha256_file).was_not_called()
  end)

  it("reads the file back once when the last answer was a resumed 206", function()
    spy.on(runtime, "sha256_file")
    emu.fault{ path = "/files/hashme.bin", cut_after = 100000, count = 1 }
    local res = assert(fetch("resumed.bin"))
    assert.equal(f.sha256, res.sha256)
    assert.equal(f.sha256, tu.sha256sum(res.path))
    assert.spy(runtime.sha256_file).was_called(1)
  end)
end)
