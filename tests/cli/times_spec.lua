-- Times and durations as the command line reads them (in process: pure functions).
local times = require "loghaul.cli.times"

describe("loghaul.cli.times", function()
  local now = 1780000000   -- 2026-05-28T20:26:40Z

  it("relative times count back from now; now is now", function()
    assert.are.equal(now, times.point("now", now))
    assert.are.equal(now - 7 * 86400, times.point("7d", now))
    assert.are.equal(now - 12 * 3600, times.point("12h", now))
    assert.are.equal(now - 30 * 60, times.point("30m", now))
    assert.are.equal(now - 45, times.point("45s", now))
    assert.are.equal(now - 14 * 86400, times.point("2w", now))
  end)

  it("ISO 8601: dates, times, fractions, Z and offsets", function()
    assert.are.equal(1777593600, times.point("2026-05-01", now))
    assert.are.equal(1777593600, times.point("2026-05-01T00:00:00Z", now))
    assert.are.equal(1777593600, times.point("2026-05-01T00:00Z", now))
    assert.are.equal(1777593600, times.point("2026-05-01T00:00:00.999Z", now))
    assert.are.equal(1777593600, times.point("2026-05-01T08:00:00+08:00", now))
    assert.are.equal(1777593600, times.point("2026-04-30T19:00:00-0500", now))
    assert.are.equal(1777593600, times.point("2026-05-01 00:00:00", now))
    assert.are.equal(951782400, times.point("2000-02-29", now))
    assert.are.equal("2026-05-01T00:00:00Z", times.format(1777593600))
  end)

  it("refuses what is not a time", function()
    for _, bad in ipairs{ "yesterday", "2026-02-29", "2026-13-01", "2026-05-01T24:00:00Z", "2026-05-01T00:00:00+25:00",
                          "2026-5-1", "7 d", "-7d", "", "2026-05-01T00:00:00ZZ" } do
      assert.is_nil(times.point(bad, now), bad)
    end
  end)

  it("durations and their short human form", function()
    assert.are.equal(5, times.duration("5s"))
    assert.are.equal(5, times.duration("5"))
    assert.are.equal(1.5, times.duration("1.5s"))
    assert.are.equal(1800, times.duration("30m"))
    assert.is_nil(times.duration("fast"))
    assert.are.equal("3h25m", times.human(3 * 3600 + 25 * 60 + 10))
    assert.are.equal("2m05s", times.human(125))
    assert.are.equal("9s", times.human(9.4))
  end)
end)
