-- The README's ```lua code blocks, kept true (as lua-cjson's and LPeg's doc tests keep theirs).
--
-- The convention, for whoever edits README.md:
--   * A block whose first line is `-- examples/<name>.lua` is a complete script. It must be
--     that example file (the file's leading comment block aside), and it is RUN: a child
--     interpreter of this runtime runs the README's text against the emulator, with the
--     environment variables the examples read (LOGHAUL_*_URL, credentials, LOGHAUL_DEST, ...,
--     as `make demo` sets them), and must exit 0 and print what it did.
--   * Any other ```lua block is a fragment (undefined names such as AK or server_id stand for
--     the user's values): it is COMPILED with `load`, so its syntax stays valid Lua.
--   * A block that is not meant to be Lua at all for the compiler (pseudo-code) carries the
--     line `-- doc: not compiled`, and is skipped. Use it sparingly; none needs it today.
-- Blocks fenced as ```sh, ```nginx or plain ``` are not Lua and are not looked at.
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local tu = require "helpers.util"
local vendors = require "helpers.vendors"

local q, ROOT = shell.quote, shell.root
local RUNTIME = rawget(_G, "jit") and "luajit" or "lua5.4"

-- every ```lua block: { text =, line = (of the fence), example = "examples/x.lua" | nil }
local function lua_blocks(readme)
  local blocks, n, cur = {}, 0, nil
  for raw in (readme .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if cur then
      if raw:match("^" .. cur.indent .. "```%s*$") then
        cur.text = table.concat(cur.lines, "\n") .. "\n"
        cur.example = cur.lines[1] and cur.lines[1]:match("^%-%- (examples/[%w_%-]+%.lua)%s*$")
        blocks[#blocks + 1] = cur
        cur = nil
      else
        cur.lines[#cur.lines + 1] = raw:sub(#cur.indent + 1)
      end
    else
      local indent = raw:match("^([ \t]*)```lua%s*$")
      if indent then cur = { indent = indent, lines = {}, line = n } end
    end
  end
  assert(cur == nil, "README.md: a ```lua block is not closed")
  return blocks
end

-- an example file without its leading comment block (the usage notes)
local function without_header(text)
  local i = 1
  while text:sub(i, i + 1) == "--" do i = (text:find("\n", i, true) or #text) + 1 end
  return text:sub(i)
end

local README = assert(shell.read_file(ROOT .. "/README.md"))
local BLOCKS = lua_blocks(README)

describe("README.md ```lua blocks (" .. RUNTIME .. ")", function()
  it("are found: the four example scripts and the fragments", function()
    local examples = 0
    for _, b in ipairs(BLOCKS) do if b.example then examples = examples + 1 end end
    assert.equal(4, examples)
    assert.is_true(#BLOCKS >= 8)
  end)

  it("every fragment compiles", function()
    local compiled = 0
    for _, b in ipairs(BLOCKS) do
      if not b.text:find("%-%- doc: not compiled") then
        local f, err = load(b.text, "=README.md:" .. b.line)
        assert(f, "README.md block at line " .. b.line .. " does not compile: " .. tostring(err))
        compiled = compiled + 1
      end
    end
    assert.is_true(compiled >= 8)
  end)

  it("every example block is its file in examples/ (the usage comment aside)", function()
    for _, b in ipairs(BLOCKS) do
      if b.example then
        local file = assert(shell.read_file(ROOT .. "/" .. b.example), b.example .. " is missing")
        local body = b.text:gsub("^[^\n]*\n", "", 1)
        local want = without_header(file)
        assert(body == want, ("README.md line %d: the block differs from %s (apart from its first comment lines)")
          :format(b.line, b.example))
      end
    end
  end)

  it("names the code describe_logs gives for a size outside 1..1000", function()
    local code = README:match("`size` outside 1%.%.1000 is refused%s*%(`invalid`, `([%w_]+)`%)")
    assert.is_string(code, "README.md no longer says which code a bad size gets")
    local util = require "loghaul.util"
    local now = util.parse_utc("2023-08-10T00:00:00Z")
    local zl = require("loghaul").zenlayer{ access_key_id = "AKID", access_key_password = "pw-123456", log = false,
                                            now = function() return now end, _session = {} }
    local page, err = zl:describe_logs{ startTime = "2023-08-01T00:00:00Z", endTime = "2023-08-02T00:00:00Z",
                                        size = 1001 }
    assert.is_nil(page)
    assert.equal(code, err.code)
  end)

  describe("the example scripts, run as written in the README against the emulator", function()
    local e, dir
    setup(function()
      e = emu.start()
      emu.reset()
      vendors.reset()
      vendors.configure{ clouddc = { polls = 1 } }   -- the export completes at the first poll (1 s)
      dir = tu.tmpdir()
    end)
    teardown(function()
      emu.reset()
      vendors.reset()
      tu.rmdir(dir)
    end)

    -- the environment each example reads (examples/run_demo.lua gives the same)
    local function env_for(example)
      local F = vendors.fixtures
      local v = { LOGHAUL_CA_FILE = e.ca_file }
      if example == "examples/cms_upload.lua" then
        local zip = dir .. "/OELOG_99991093_10.1.2.3_20250226162127.zip"
        tu.write_random(zip, 4096)
        v.LOGHAUL_CMS_URL, v.LOGHAUL_CMS_AK, v.LOGHAUL_CMS_SK = e.base_url, F.cms.access_key, F.cms.secret_key
        v.LOGHAUL_CMS_FILE = zip
      elseif example == "examples/clouddc_export_download.lua" then
        v.LOGHAUL_CLOUDDC_URL, v.LOGHAUL_CLOUDDC_PROJECT_ID = e.base_url, F.clouddc.project_id
        v.LOGHAUL_CLOUDDC_SERVER_ID, v.LOGHAUL_IAM_URL = F.clouddc.server_id, e.base_url
        v.LOGHAUL_IAM_USER, v.LOGHAUL_IAM_PASSWORD = F.iam.user, F.iam.password
        v.LOGHAUL_IAM_DOMAIN, v.LOGHAUL_IAM_PROJECT = F.iam.domain, F.iam.project
        v.LOGHAUL_DEST, v.LOGHAUL_POLL_INTERVAL = dir .. "/clouddc/", "1"
      elseif example == "examples/yeastar_system_logs.lua" then
        v.LOGHAUL_YEASTAR_URL, v.LOGHAUL_YEASTAR_CLIENT_ID = e.base_url, F.yeastar.client_id
        v.LOGHAUL_YEASTAR_CLIENT_SECRET, v.LOGHAUL_DEST = F.yeastar.client_secret, dir .. "/yeastar/"
      elseif example == "examples/zenlayer_audit_jsonl.lua" then
        v.LOGHAUL_ZENLAYER_URL, v.LOGHAUL_ZENLAYER_AK_ID = e.base_url, F.zenlayer.access_key_id
        v.LOGHAUL_ZENLAYER_AK_PASSWORD, v.LOGHAUL_ZENLAYER_DAYS = F.zenlayer.access_key_password, "3"
        v.LOGHAUL_OUT = dir .. "/audit.jsonl"
      else
        error("README.md runs " .. example .. ": give it its environment here")
      end
      local parts = {}
      for k, val in pairs(v) do parts[#parts + 1] = k .. "=" .. q(val) end
      table.sort(parts)
      return table.concat(parts, " ")
    end

    -- what each prints when it worked
    local says = {
      ["examples/cms_upload.lua"] = "uploaded .*OELOG_99991093_10%.1%.2%.3_20250226162127%.zip: status 200",
      ["examples/clouddc_export_download.lua"] = "downloaded .*%-dump%.tar%.gz %(%d+ bytes, sha256 %x+%)",
      ["examples/yeastar_system_logs.lua"] = "downloaded %d+: .*PBX%-SystemLog%-.*%.tar %(%d+ bytes, sha256 %x+%)",
      ["examples/zenlayer_audit_jsonl.lua"] =
        "wrote [1-9]%d* records %(%d+ bytes, %d+ pages%) of the last 3 days into .*audit%.jsonl",
    }

    for _, b in ipairs(BLOCKS) do
      if b.example then
        it(b.example .. " (README.md line " .. b.line .. ")", function()
          local script = dir .. "/readme_" .. b.line .. ".lua"
          shell.write_file(script, b.text)
          local cmd = ("env LUA_PATH=%s LUA_CPATH=%s %s %s %s"):format(
            q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"), q(package.cpath), env_for(b.example),
            shell.lua_command(), q(script))
          local out, rc = shell.capture(cmd)
          assert(rc == 0, b.example .. " exited " .. rc .. ":\n" .. out)
          assert.matches(says[b.example], out)
        end)
      end
    end
  end)
end)
