-- core.monotonic and core.sleep: the clock the retry and poll loops wait with.
local core = require "loghaul.core"

describe("core clock", function()
  it("sleeps for the time asked, measured on the monotonic clock", function()
    local t0 = core.monotonic()
    core.sleep(0.2)
    local dt = core.monotonic() - t0
    assert.is_true(dt >= 0.2 and dt < 0.5, "slept " .. dt)
    core.sleep(0)
    assert.is_true(core.monotonic() >= t0 + dt)
  end)

  it("refuses bad durations", function()
    assert.has_error(function() core.sleep(-1) end)
    assert.has_error(function() core.sleep(1e9) end)
    assert.has_error(function() core.sleep("x") end)
  end)
end)
