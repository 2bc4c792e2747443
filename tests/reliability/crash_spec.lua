-- Crash safety, tried for real: a child process runs a chain against the emulator
-- (tests/reliability/crash_child.lua) and is killed with SIGKILL at a random moment (seeded:
-- the same moments every time), 30 times per chain, with a run to completion after every
-- tenth kill. After every kill: no corrupt or partial file at a final name (sha256sum against
-- the emulator's own file), and no stray file but the one temporary name that the next run
-- removes or reuses. After the completed runs: the chain succeeded and nothing stray is left.
local T = require "vendors.emu_ctx"

local q = T.shell.quote
local KILLS = 30

describe("crash safety (SIGKILL at random moments, then the same run again)", function()
  local e, tmp, restore_polls

  setup(function()
    e = T.start()
    T.reset()
    restore_polls = T.vendors.fast_export_polls()
  end)
  teardown(function() restore_polls() end)
  before_each(function()
    T.reset()
    tmp = T.tmpdir()
  end)
  after_each(function() T.rmdir(tmp) end)

  local function command(chain)
    return T.shell.lua_command() .. " " .. q(T.shell.root .. "/tests/reliability/crash_child.lua") .. " "
      .. q(chain) .. " " .. q(e.base_url) .. " " .. q(e.ca_file) .. " " .. q(tmp) .. " slow"
  end

  -- a whole run; returns its output, and how long it took
  local function full_run(chain)
    local t0 = T.clock()
    local out, rc = T.shell.capture(command(chain))
    assert(rc == 0 and out:match("^ok "), chain .. " run failed: " .. out)
    return out, T.clock() - t0
  end

  -- a run killed with SIGKILL after `after` seconds (if it has not ended by then)
  local function killed_run(chain, after)
    T.shell.capture("sh -c " .. q(command(chain) .. " >/dev/null 2>&1 & p=$!; sleep "
      .. ("%.3f"):format(after) .. "; kill -9 $p 2>/dev/null; wait $p"))
  end

  -- entries of a directory, dot files included
  local function entries(dir)
    local out = T.shell.capture("ls -A " .. q(dir) .. " 2>/dev/null")
    local t = {}
    for name in out:gmatch("[^\n]+") do t[#t + 1] = name end
    table.sort(t)
    return t
  end

  -- sha256 of the emulator's own files (they never change), by path
  local orig_sums = {}
  local function orig_sum(path)
    orig_sums[path] = orig_sums[path] or T.sha256sum(path)
    return orig_sums[path]
  end

  -- the download directory after a kill: every final file is the emulator's file, whole; the
  -- only other entry allowed is the download's one temporary name (the same in every run).
  -- One shell for the listing and the hashes: this runs 30 times per chain.
  local function check_downloads(dir, original_of, seen, after_full)
    local out = T.shell.capture("cd " .. q(dir) .. " 2>/dev/null && ls -A && echo '--' && "
      .. "find . -maxdepth 1 -type f ! -name '.*' -exec sha256sum {} +")
    local list, sums = out:match("^(.-)%-%-\n(.*)$")
    local got = {}
    for sum, name in (sums or ""):gmatch("(%x+)%s+%./([^\n]+)") do got[name] = sum end
    local finals = 0
    for name in (list or ""):gmatch("[^\n]+") do
      if name:match("^%.loghaul%-%x+%.part$") then
        assert.is_false(after_full, "a completed run left " .. name)
        seen.part = seen.part or name
        seen.parts = (seen.parts or 0) + 1
        assert.equal(seen.part, name, "the temporary name changed between runs")
      else
        local orig = original_of(name)
        assert(orig and T.util.exists(orig), "unexpected file " .. name .. " in " .. dir)
        assert.equal(orig_sum(orig), got[name], name .. " is corrupt or partial")
        finals = finals + 1
      end
    end
    return finals
  end

  local function play(chain, check)
    local _, took = full_run(chain)          -- how long a run takes on this machine
    check(true)
    math.randomseed(20261202)
    local completed = 1
    for i = 1, KILLS do
      killed_run(chain, 0.02 + math.random() * took)
      check(false)
      if i % 10 == 0 then
        full_run(chain)
        completed = completed + 1
        check(true)
      end
    end
    return completed
  end

  it("CloudDC export + download", function()
    T.vendors.configure{ clouddc = { polls = 1 } }
    local dir, seen = tmp .. "/dl", {}
    local name = T.F.clouddc.sn .. "-dump.tar.gz"
    local archive = e.dir .. "/www/_vfiles/clouddc-300000.tar.gz"
    play("clouddc", function(after_full)
      local n = check_downloads(dir, function(f) return f == name and archive or nil end, seen, after_full)
      if after_full then assert.equal(1, n) end
    end)
    assert.same({ name }, entries(dir))
    -- (whether a kill lands mid-download depends on the machine's speed: not asserted)
  end)

  it("Yeastar download (token cache shared by the runs)", function()
    local dir, seen, finals = tmp .. "/dl", {}, 0
    local completed = play("yeastar", function(after_full)
      finals = check_downloads(dir, function(f)
        return f:match("^PBX%-SystemLog%-[%d%-]+%.tar$") and (e.dir .. "/www/_vfiles/" .. f) or nil
      end, seen, after_full)
      -- the token cache: the file and its lock, nothing else
      for _, f in ipairs(entries(tmp .. "/state")) do
        assert.truthy(f == "tokens.json" or f == "tokens.json.lock", "stray " .. f)
      end
    end)
    assert.equal(4, completed)
    assert.is_true(finals >= completed)   -- each run's archive has its own name
    -- (no "a kill landed mid-download" check here: the download is a small share of a run
    -- that logs in and asks for a URL first, so random kills seldom leave a .part)
    -- the runs shared the cached token: no pile of tokens against the cap (a run killed
    -- between its login and the cache write costs one more login, nothing else)
    local c = T.counters("yeastar")
    assert.equal(0, c.capped_logins)
    assert.is_true(c.logins <= 3, c.logins .. " logins")
  end)

  it("CC-CMS upload", function()
    local src = tmp .. "/OELOG_1_10.0.0.1_20250101000000.zip"
    T.util.write_random(src, 200000)
    local sum = T.sha256sum(src)
    local completed = play("cms", function()
      -- whatever the server accepted is the whole file; the source is untouched, nothing added
      for _, r in ipairs(T.counters("cms").received or {}) do
        assert.equal(200000, r.size)
        assert.equal(sum, r.sha256)
      end
      assert.same({ "OELOG_1_10.0.0.1_20250101000000.zip" }, entries(tmp))
      assert.equal(sum, T.sha256sum(src))
    end)
    assert.is_true(T.counters("cms").uploads >= completed)
  end)
end)
