-- --shard K/N and --shard-from-env: disjoint parts that cover the whole id list, stable when
-- ids are added, the same under Lua 5.4 and LuaJIT, and a sharded run doing only its part.
local cli = require "cli.helper"
local shell = require "helpers.shell"
local vendors = require "helpers.vendors"

local function ids(n, prefix)
  local t = {}
  for i = 1, n do t[i] = ("%s%02d"):format(prefix or "srv-", i) end
  return t
end

local function shard(list, spec, extra_env)
  local argv = { "clouddc", "export", "--dest", "/nonexistent", "--dry-run" }
  for _, f in ipairs(spec) do argv[#argv + 1] = f end
  for _, id in ipairs(list) do argv[#argv + 1] = id end
  local r = cli.run(argv, extra_env)
  assert.are.equal(0, r.code, r.stderr)
  return cli.lines(r.stdout)
end

describe("loghaul --shard", function()
  it("three shards of 30 ids are disjoint and cover all 30", function()
    local all = ids(30)
    local seen, sizes = {}, {}
    for k = 0, 2 do
      local part = shard(all, { "--shard", k .. "/3" })
      sizes[#sizes + 1] = #part
      for _, id in ipairs(part) do
        assert.is_nil(seen[id], id .. " is in two shards")
        seen[id] = k
      end
    end
    for _, id in ipairs(all) do assert.is_not_nil(seen[id], id .. " is in no shard") end
    for _, n in ipairs(sizes) do assert.is_true(n > 0 and n < 30) end
  end)

  it("adding ids moves none of the others; the split is the same on both runtimes", function()
    local before, after = ids(30), ids(40)
    local other = cli.lua == "lua5.4" and "luajit" or "lua5.4"
    for k = 0, 2 do
      local a = shard(before, { "--shard", k .. "/3" })
      local b = shard(after, { "--shard", k .. "/3" })
      local inb = {}
      for _, id in ipairs(b) do inb[id] = true end
      for _, id in ipairs(a) do assert.is_true(inb[id], id .. " moved") end
      local saved = cli.lua
      cli.lua = other
      local c = shard(before, { "--shard", k .. "/3" })
      cli.lua = saved
      assert.are.same(a, c)
    end
  end)

  it("--shard-from-env reads K from the variable (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX)", function()
    local all = ids(30)
    assert.are.same(shard(all, { "--shard", "1/3" }),
      shard(all, { "--shard-from-env", "JOB_COMPLETION_INDEX/3" }, { JOB_COMPLETION_INDEX = "1" }))
    local r = cli.run({ "clouddc", "export", "a", "--dest", "d", "--shard-from-env", "JOB_COMPLETION_INDEX/3" })
    assert.are.equal(2, r.code)
    assert.truthy(r.stderr:find("JOB_COMPLETION_INDEX is not set", 1, true), r.stderr)
  end)

  it("a sharded run works only on its own ids (--servers-from and --shard)", function()
    local e, dir, close_suite = vendors.open_suite()
    vendors.configure{ clouddc = { polls = 1 } }
    local list = ids(6, "srv-missing-")
    list[#list + 1] = vendors.fixtures.clouddc.server_id
    shell.write_file(dir .. "/ids", table.concat(list, "\n") .. "\n")
    local k
    for i = 0, 2 do
      local part = shard({ vendors.fixtures.clouddc.server_id }, { "--shard", i .. "/3" })
      if #part == 1 then k = i end
    end
    local mine = shard(list, { "--shard", k .. "/3" })
    local r = cli.run({ "clouddc", "export", "--servers-from", dir .. "/ids", "--shard", k .. "/3", "--dest",
                        dir .. "/out", "--poll", "1s", "--json" }, cli.emulator_env())
    assert.is_true(r.code == 0 or r.code == 3, r.stderr)
    local got = {}
    for _, l in ipairs(cli.lines(r.stdout)) do got[#got + 1] = require("cjson").decode(l).id end
    table.sort(got)
    table.sort(mine)
    assert.are.same(mine, got)
    assert.is_truthy(e)
    close_suite()
  end)
end)
