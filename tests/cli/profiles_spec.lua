-- Settings from a profiles file: INI sections, parsed and never executed, refused when others
-- can read it (as ssh refuses a private key); --profile NAME wins over the environment,
-- the environment wins over [default].
local cli = require "cli.helper"
local shell = require "helpers.shell"
local vendors = require "helpers.vendors"

describe("loghaul profiles", function()
  local dir, close_suite, e, fx
  setup(function()
    e, dir, close_suite = vendors.open_suite()
    fx = vendors.fixtures
  end)
  teardown(function() close_suite() end)

  local function write_config(path, text, mode)
    shell.check("mkdir -p " .. shell.quote(path:match("^(.*)/")))
    shell.write_file(path, text)
    shell.check("chmod " .. mode .. " " .. shell.quote(path))
  end

  local function yeastar_section(name, secret)
    return ("[%s]\n# the PBX\nyeastar_url = %s\nyeastar_client_id = %s\nyeastar_client_secret = \"%s\"\nca_file = %s\n")
      :format(name, e.base_url, fx.yeastar.client_id, secret, e.ca_file)
  end

  it("a profiles file others can read is refused, exit 2, with the fix", function()
    for _, mode in ipairs{ "644", "640", "604" } do
      local path = dir .. "/open-" .. mode
      write_config(path, yeastar_section("default", fx.yeastar.client_secret), mode)
      local r = cli.run({ "yeastar", "list" }, { LOGHAUL_CONFIG = path })
      assert.are.equal(2, r.code, mode)
      assert.truthy(r.stderr:find("profiles file " .. path .. " is readable or writable by others (mode 0" .. mode,
        1, true), r.stderr)
      assert.truthy(r.stderr:find("chmod 600 " .. path, 1, true), r.stderr)
      assert.are.equal("", r.stdout)
    end
  end)

  it("a symbolic link in place of the profiles file is refused", function()
    local real = dir .. "/real-config"
    write_config(real, yeastar_section("default", fx.yeastar.client_secret), "600")
    shell.check("ln -sf " .. shell.quote(real) .. " " .. shell.quote(dir .. "/link-config"))
    local r = cli.run({ "yeastar", "list" }, { LOGHAUL_CONFIG = dir .. "/link-config" })
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("symbolic link", 1, true), r.stderr)
  end)

  it("~/.config/loghaul/config (0600) [default] gives the settings; the environment wins over it", function()
    local path = cli.home_dir() .. "/.config/loghaul/config"
    write_config(path, yeastar_section("default", fx.yeastar.client_secret), "600")
    local r = cli.run({ "yeastar", "list" })
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(os.date("!%Y%m%d"), cli.lines(r.stdout)[1])
    local w = cli.run({ "yeastar", "list" }, { LOGHAUL_YEASTAR_CLIENT_ID = "wrong-id" })
    assert.are.equal(1, w.code)
    assert.truthy(w.stderr:find("10005", 1, true), w.stderr)
    os.remove(path)
  end)

  it("--profile NAME: its values win over the environment; an unknown NAME is exit 2", function()
    local path = dir .. "/profiles"
    write_config(path, yeastar_section("default", "wrong-secret") .. "\n" .. yeastar_section("pbx2",
      fx.yeastar.client_secret), "600")
    local env = { LOGHAUL_CONFIG = path, LOGHAUL_YEASTAR_CLIENT_SECRET = "also-wrong" }
    local r = cli.run({ "yeastar", "list", "--profile", "pbx2" }, env)
    assert.are.equal(0, r.code, r.stderr)
    local lead = cli.run({ "--profile", "pbx2", "yeastar", "list" }, env)
    assert.are.equal(0, lead.code, lead.stderr)
    local bad = cli.run({ "yeastar", "list", "--profile", "nope" }, env)
    assert.are.equal(2, bad.code)
    assert.truthy(bad.stderr:find("--profile nope: no [nope] section in " .. path, 1, true), bad.stderr)
  end)

  it("the file is parsed, never executed; a malformed line names its line number", function()
    local path = dir .. "/hostile"
    local marker = dir .. "/pwned"
    write_config(path, ("[default]\nyeastar_url = %s\nyeastar_client_id = $(touch %s)\n"
      .. "yeastar_client_secret = `touch %s`\nca_file = %s\n"):format(e.base_url, marker, marker, e.ca_file), "600")
    local r = cli.run({ "yeastar", "list" }, { LOGHAUL_CONFIG = path })
    assert.are.equal(1, r.code, r.stderr)
    assert.is_nil(io.open(marker, "r"))
    write_config(path, "[default]\nyeastar_url = x\nthis is not ini\n", "600")
    local m = cli.run({ "yeastar", "list" }, { LOGHAUL_CONFIG = path })
    assert.are.equal(2, m.code)
    assert.truthy(m.stderr:find(path .. ":3: expected key = value", 1, true), m.stderr)
  end)

  it("IAM and Yeastar tokens go to ~/.cache/loghaul (0700, files 0600): a second run logs in no more", function()
    local core = require "loghaul.core"
    local env = cli.emulator_env()
    local function logins()
      local st = vendors.state()
      return st.iam.logins or 0, st.yeastar.logins or 0
    end
    vendors.configure{ clouddc = { polls = 1 } }
    local counts = {}
    for i = 1, 2 do
      local r = cli.run({ "yeastar", "list" }, env)
      assert.are.equal(0, r.code, r.stderr)
      r = cli.run({ "clouddc", "export", fx.clouddc.server_id, "--dest", dir .. "/dc", "--poll", "1s" }, env)
      assert.are.equal(0, r.code, r.stderr)
      counts[i] = { logins() }
    end
    assert.are.same(counts[1], counts[2])   -- the second runs took the tokens from the cache
    local cache = cli.home_dir() .. "/.cache/loghaul"
    assert.are.equal(448, core.stat(cache).mode)   -- 0700
    for _, f in ipairs{ "iam-tokens.json", "yeastar-tokens.json" } do
      assert.are.equal(384, core.stat(cache .. "/" .. f).mode, f)   -- 0600
    end
  end)
end)
