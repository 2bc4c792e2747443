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

  it("tells the wall-clock time with sub-second resolution", function()
    local t = core.time()
    assert.is_true(math.abs(t - os.time()) <= 1)
    local seen = {}
    for _ = 1, 20 do seen[core.time() % 1] = true core.sleep(0.001) end
    local fractions = 0
    for _ in pairs(seen) do fractions = fractions + 1 end
    assert.is_true(fractions > 1)
  end)

  it("refuses bad durations", function()
    assert.has_error(function() core.sleep(-1) end)
    assert.has_error(function() core.sleep(1e9) end)
    assert.has_error(function() core.sleep("x") end)
  end)
end)
