-- Every vendor subcommand of bin/loghaul run as a child process against the emulator: what
-- lands on disk (sha256 by sha256sum), what the emulator received, stdout, exit codes.
local cjson = require "cjson"
local cli = require "cli.helper"
local shell = require "helpers.shell"
local util = require "helpers.util"
local vendors = require "helpers.vendors"

describe("loghaul commands against the emulator", function()
  local dir, close_suite, env
  setup(function()
    local _
    _, dir, close_suite = vendors.open_suite()
    env = cli.emulator_env()
  end)
  teardown(function() close_suite() end)
  before_each(function() vendors.reset() vendors.configure{ clouddc = { polls = 1 } } end)

  it("cms upload: the emulator receives each file with the same sha256; stdout names each", function()
    local a, b = dir .. "/OELOG_1_10.0.0.1_20250226162127.zip", dir .. "/OELOG_2_10.0.0.2_20250226162128.zip"
    util.write_random(a, 70000)
    util.write_random(b, 1234)
    local r = cli.run({ "cms", "upload", a, b }, env)
    assert.are.equal(0, r.code, r.stderr)
    -- one line per file, in the order the uploads finish (they run at once)
    local lines = cli.lines(r.stdout)
    table.sort(lines)
    assert.are.same({ a .. "\tuploaded\tstatus 200", b .. "\tuploaded\tstatus 200" }, lines)
    local got = {}
    for _, f in ipairs(vendors.state().cms.received) do got[f.name] = f.sha256 end
    assert.are.equal(util.sha256sum(a), got["OELOG_1_10.0.0.1_20250226162127.zip"])
    assert.are.equal(util.sha256sum(b), got["OELOG_2_10.0.0.2_20250226162128.zip"])
  end)

  it("cms upload: a missing file fails with exit 1 and names it", function()
    local r = cli.run({ "cms", "upload", dir .. "/nope.zip" }, env)
    assert.are.equal(1, r.code)
    assert.truthy(r.stderr:find("nope.zip failed", 1, true), r.stderr)
  end)

  it("clouddc export (IAM login): the archive on disk matches the sha256 printed", function()
    local dest = dir .. "/dc1"
    local r = cli.run({ "clouddc", "export", vendors.fixtures.clouddc.server_id, "--dest", dest, "--poll", "1s" }, env)
    assert.are.equal(0, r.code, r.stderr)
    local id, path, bytes, sum = r.stdout:match("^(%S+)\t(%S+)\t(%d+)\t(%x+)\n$")
    assert.are.equal(vendors.fixtures.clouddc.server_id, id)
    assert.are.equal(dest .. "/" .. vendors.fixtures.clouddc.sn .. "-dump.tar.gz", path)
    assert.are.equal(util.size(path), tonumber(bytes))
    assert.are.equal(util.sha256sum(path), sum)
    assert.are.same({ vendors.fixtures.clouddc.sn .. "-dump.tar.gz" }, util.ls(dest))
  end)

  it("clouddc export, some ids failing: exit 3, JSON Lines per id, each failure listed with the vendor's code",
    function()
      local ids = dir .. "/ids.txt"
      shell.write_file(ids, "# servers\nsrv-missing-1\n\n" .. vendors.fixtures.clouddc.server_id .. "\n")
      local r = cli.run({ "clouddc", "export", "srv-missing-2", "--servers-from", ids, "--dest", dir .. "/dc2",
                          "--poll", "1s", "--json" },
        cli.emulator_env{ LOGHAUL_CLOUDDC_AK = vendors.fixtures.clouddc.access_key,
                          LOGHAUL_CLOUDDC_SK = vendors.fixtures.clouddc.secret_key })
      assert.are.equal(3, r.code, r.stderr)
      local by = {}
      for _, l in ipairs(cli.lines(r.stdout)) do
        local t = cjson.decode(l)
        by[t.id] = t
      end
      assert.is_false(by["srv-missing-1"].ok)
      assert.are.equal("CloudDC.0404", by["srv-missing-2"].error.code)
      local good = by[vendors.fixtures.clouddc.server_id]
      assert.is_true(good.ok)
      assert.are.equal(util.sha256sum(good.path), good.sha256)
      assert.truthy(r.stderr:find("srv%-missing%-2 failed: .*CloudDC%.0404"), r.stderr)
      assert.truthy(r.stderr:find("1 of 3 done; failed: srv-missing-2 (CloudDC.0404), srv-missing-1 (CloudDC.0404)",
        1, true), r.stderr)
      assert.are.equal(0, vendors.state().clouddc.auth_token or 0)   -- AK/SK signing, no IAM login
    end)

  it("clouddc export of one id that fails: exit 1 with the id and the vendor's code", function()
    local r = cli.run({ "clouddc", "export", "srv-x", "--dest", dir .. "/dc3" }, env)
    assert.are.equal(1, r.code)
    assert.truthy(r.stderr:find("srv%-x failed: .*CloudDC%.0404"), r.stderr)
  end)

  it("Ctrl-C (SIGINT) stops the whole run: exit 130, the next ids are not started", function()
    vendors.configure{ clouddc = { polls = 20 } }
    local status, pidfile = dir .. "/int.rc", dir .. "/int.pid"
    shell.check("(" .. cli.command({ "clouddc", "export", vendors.fixtures.clouddc.server_id, "srv-next", "--dest",
      dir .. "/int", "--poll", "1s" }, env) .. " >/dev/null 2>" .. shell.quote(dir .. "/int.err") .. " & echo $! > "
      .. shell.quote(pidfile) .. "; wait $!; echo $? > " .. shell.quote(status) .. ") >/dev/null 2>&1 & :")
    for _ = 1, 100 do
      if (vendors.state().clouddc.polls or 0) >= 1 then break end
      shell.run("sleep 0.1")
    end
    shell.run("kill -INT " .. shell.read_file(pidfile):match("%d+"))
    for _ = 1, 100 do
      if shell.read_file(status) then break end
      shell.run("sleep 0.1")
    end
    assert.are.equal("130", (shell.read_file(status) or ""):match("%d+"))
    assert.truthy(shell.read_file(dir .. "/int.err"):find("loghaul: interrupted", 1, true))
    assert.are.equal(1, vendors.state().clouddc.exports_created)
  end)

  it("yeastar list: the PBX's days newest first; --order asc; --json", function()
    vendors.configure{ yeastar = { files = 12 } }
    local r = cli.run({ "yeastar", "list" }, env)
    assert.are.equal(0, r.code, r.stderr)
    local days = cli.lines(r.stdout)
    assert.are.equal(12, #days)
    assert.are.equal(os.date("!%Y%m%d"), days[1])
    local asc = cli.lines(cli.run({ "yeastar", "list", "--order", "asc" }, env).stdout)
    assert.are.equal(days[12], asc[1])
    local j = cjson.decode(cli.run({ "yeastar", "list", "--json" }, env).stdout)
    assert.are.equal(12, #j)
    assert.are.equal(days[1], j[1].file_name)
  end)

  it("yeastar download DAY and --last: one archive per day, sha256 as printed; an unknown day fails",
    function()
      local dest = dir .. "/ys"
      local today = os.date("!%Y%m%d")
      local r = cli.run({ "yeastar", "download", "--last", "2d", "--dest", dest }, env)
      assert.are.equal(0, r.code, r.stderr)
      local lines = cli.lines(r.stdout)
      table.sort(lines)             -- printed as each finishes; day names sort by date
      assert.are.equal(3, #lines)   -- the UTC date 2 days ago, yesterday, today
      for _, l in ipairs(lines) do
        local _, path, _, sum = l:match("^(%d+)\t(%S+)\t(%d+)\t(%x+)$")
        assert.are.equal(util.sha256sum(path), sum)
      end
      assert.truthy(lines[1]:find("^" .. os.date("!%Y%m%d", os.time() - 2 * 86400)))
      assert.truthy(lines[3]:find("^" .. today))
      local bad = cli.run({ "yeastar", "download", today, "19990101", "--dest", dest }, env)
      assert.are.equal(3, bad.code)
      assert.truthy(bad.stderr:find("19990101 failed: .*60001"), bad.stderr)
    end)

  it("emulator start prints settings that work; stop stops it", function()
    local run_env = { LOGHAUL_EMU_DIR = dir .. "/emu2" }
    local r = cli.run({ "emulator", "start" }, run_env)
    finally(function()   -- never leave it running, whatever fails below
      shell.run(shell.quote(shell.root .. "/tests/emulator/emulator") .. " stop " .. shell.quote(dir .. "/emu2")
        .. " >/dev/null 2>&1")
    end)
    assert.are.equal(0, r.code, r.stderr)
    local script = dir .. "/try.sh"
    shell.write_file(script, r.stdout .. "\n" .. cli.command({ "yeastar", "list" }):gsub("^env %-i ", "env ") .. "\n")
    local out, rc = shell.run("sh " .. shell.quote(script) .. " 2>&1")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find(os.date("!%Y%m%d"), 1, true))
    local s = cli.run({ "emulator", "stop" }, run_env)
    assert.are.equal(0, s.code, s.stderr)
    local _, st = shell.run(shell.quote(shell.root .. "/tests/emulator/emulator") .. " status "
      .. shell.quote(dir .. "/emu2") .. " >/dev/null 2>&1")
    assert.are_not.equal(0, st)
  end)
end)
