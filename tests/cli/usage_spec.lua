-- loghaul as a user types it: --help and --version everywhere, and every mistake on the
-- command line gives exit code 2 and a message that names the flag (no emulator needed).
local cli = require "cli.helper"

describe("loghaul usage", function()
  it("--version prints the version and exits 0", function()
    local r = cli.run{ "--version" }
    assert.are.equal(0, r.code)
    assert.matches("^loghaul 0%.1%.0 %(", r.stdout)
  end)

  it("runs through a symbolic link from another folder (finds the checkout beside its real path)", function()
    local shell = require "helpers.shell"
    local dir = shell.tmpdir("loghaul-test")
    shell.check("ln -s " .. shell.quote(cli.bin) .. " " .. shell.quote(dir .. "/loghaul"))
    for _, lua in ipairs{ "lua5.4", "luajit" } do
      local out, rc = shell.run("cd / && env -i PATH=" .. shell.quote(os.getenv("PATH")) .. " LOGHAUL_LUA=" .. lua
        .. " " .. shell.quote(dir .. "/loghaul") .. " --version")
      assert.are.equal(0, rc, out)
      assert.matches(lua == "luajit" and "^loghaul 0%.1%.0 %(LuaJIT" or "^loghaul 0%.1%.0 %(Lua 5%.4", out)
    end
    shell.rmdir(dir)
  end)

  it("--help works on the command and on every action, exit 0, usage on stdout", function()
    local r = cli.run{ "--help" }
    assert.are.equal(0, r.code)
    for _, w in ipairs{ "cms upload", "clouddc export", "yeastar list", "yeastar download", "zenlayer logs",
                        "emulator start", "emulator stop" } do
      assert.truthy(r.stdout:find("loghaul " .. w, 1, true), w)
    end
    for _, argv in ipairs{ { "cms", "upload" }, { "clouddc", "export" }, { "yeastar", "list" },
                           { "yeastar", "download" }, { "zenlayer", "logs" }, { "emulator", "start" },
                           { "emulator", "stop" } } do
      local h = cli.run{ argv[1], argv[2], "--help" }
      assert.are.equal(0, h.code, table.concat(argv, " "))
      assert.matches("^usage: loghaul " .. argv[1] .. " " .. argv[2], h.stdout)
      assert.truthy(h.stdout:find("--help", 1, true))
    end
    local g = cli.run{ "clouddc", "--help" }
    assert.are.equal(0, g.code)
    assert.truthy(g.stdout:find("loghaul clouddc export", 1, true))
  end)

  it("no arguments: the usage on stderr, exit 2", function()
    local r = cli.run{}
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("usage: loghaul", 1, true))
    assert.are.equal("", r.stdout)
  end)

  local cases = {
    { { "clouddc", "export", "s1", "--dset", "x" }, "--dset", "did you mean --dest" },
    { { "clouddc", "export", "s1", "--dest" }, "--dest", "needs a value" },
    { { "clouddc", "export", "s1", "--dest", "d", "--poll", "fast" }, "--poll", "not a duration" },
    { { "clouddc", "export", "s1", "--dest", "d", "--concurrency", "0" }, "--concurrency", "positive whole number" },
    { { "clouddc", "export", "s1", "--dest", "d", "--shard", "3/3" }, "--shard", "K from 0 to N-1" },
    { { "clouddc", "export", "s1", "--dest", "d", "--shard", "a/b" }, "--shard", "K/N" },
    { { "clouddc", "export", "--dest", "d" }, "--servers-from", "SERVER_ID" },
    { { "clouddc", "export", "s1", "--servers-from", "/nonexistent/ids" }, "--servers-from", "cannot read" },
    { { "clouddc", "export", "s1" }, "--dest", "required" },
    { { "zenlayer", "logs" }, "--since", "required" },
    { { "zenlayer", "logs", "--since", "yesterday" }, "--since", "not a time" },
    { { "zenlayer", "logs", "--since", "2026-02-30T00:00:00Z" }, "--since", "not a time" },
    { { "zenlayer", "logs", "--since", "7d", "--until", "2026-13-01" }, "--until", "not a time" },
    { { "zenlayer", "logs", "--since", "1d", "--until", "2d" }, "--since", "must be before --until" },
    { { "zenlayer", "logs", "--since", "1d", "--page-size", "5000" }, "--page-size", "over 1000" },
    { { "zenlayer", "logs", "--since", "1d", "--json" }, "--json", "--output FILE" },
    { { "yeastar", "list", "--order", "up" }, "--order", "asc or desc" },
    { { "yeastar", "download", "2024-06-XX", "--dest", "d" }, "2024-06-XX", "not a day" },
    { { "yeastar", "download", "--last", "week", "--dest", "d" }, "--last", "not a duration" },
    { { "yeastar", "list", "extra" }, "extra", "unexpected argument" },
    { { "cms", "upload", "--file-type", "x", "f" }, "--file-type", "not a whole number" },
    { { "--nope", "cms", "upload" }, "--nope", "unknown flag" },
    { { "vendorx", "go" }, "vendorx", "unknown vendor" },
    { { "cms", "download" }, "download", "unknown action" },
  }
  for _, c in ipairs(cases) do
    it("exit 2 naming " .. c[2] .. ": loghaul " .. table.concat(c[1], " "), function()
      local r = cli.run(c[1], { LOGHAUL_CMS_URL = "https://127.0.0.1:9" })
      assert.are.equal(2, r.code, r.stderr)
      assert.truthy(r.stderr:find(c[2], 1, true), r.stderr)
      assert.truthy(r.stderr:find(c[3], 1, true), r.stderr)
      assert.are.equal("", r.stdout)
    end)
  end

  it("a missing setting is exit 2 naming the variable and the profile key", function()
    local r = cli.run({ "cms", "upload", "x.zip" }, { LOGHAUL_CMS_URL = "https://127.0.0.1:9" })
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("LOGHAUL_CMS_AK is not set", 1, true), r.stderr)
    assert.truthy(r.stderr:find("cms_ak", 1, true), r.stderr)
  end)

  it("a bad endpoint setting is exit 2 with the library's reason", function()
    local r = cli.run({ "cms", "upload", "x.zip" },
      { LOGHAUL_CMS_URL = "ftp://x", LOGHAUL_CMS_AK = "ak", LOGHAUL_CMS_SK = "sk-secret" })
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("http(s) URL", 1, true), r.stderr)
  end)
end)
