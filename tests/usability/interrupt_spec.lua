-- Ctrl-C during a download stops the script. A real SIGINT goes to a child interpreter
-- (lua5.4 or luajit, the runtime running this spec) whose script downloads three Yeastar
-- log files in a loop; the emulator redirects each download to /trickle, so the first one is
-- still receiving bytes (its `.part` exists) when the signal arrives. The interpreter's
-- `interrupted!` is raised inside the core's progress callback; loghaul must raise it again
-- once libcurl has returned and the `.part` is gone, not turn it into `nil, err` and go on.
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local tu = require "helpers.util"
local vendors = require "helpers.vendors"

local q = shell.quote
local RUNTIME = rawget(_G, "jit") and "luajit" or "lua5.4"
local ROOT = shell.root

local CHILD = [[
local loghaul = require "loghaul"
local dest = arg[1]
local pbx = loghaul.yeastar{ base_url = os.getenv("EMU_URL"), ca_file = os.getenv("EMU_CA"), log = false,
                             client_id = os.getenv("YS_ID"), client_secret = os.getenv("YS_SECRET"),
                             on_progress = function() end }
local page = assert(pbx:list_system_logs{ page_size = 3 })
for i, f in ipairs(page.data) do
  io.stdout:write("start ", i, "\n") io.stdout:flush()
  local file, err = pbx:download_system_logs({ f.file_name }, { dest = dest })
  io.stdout:write("after ", i, " ", tostring(file and file.path or err), "\n") io.stdout:flush()
end
io.stdout:write("loop finished\n")
]]

local function wait_for(pred, seconds)
  local deadline = os.time() + seconds
  while os.time() <= deadline do
    if pred() then return true end
    shell.run("sleep 0.1")
  end
  return pred()
end

describe("Ctrl-C (SIGINT) during a download loop (" .. RUNTIME .. ")", function()
  local e, dir
  setup(function()
    e = emu.start()
    emu.reset()
    vendors.reset()
    dir = tu.tmpdir()
  end)
  teardown(function()
    emu.reset()
    vendors.reset()
    tu.rmdir(dir)
  end)

  it("ends the process with the interrupt, goes no further, leaves no .part", function()
    -- every download answer becomes a same-origin redirect to a slow body (1000 bytes per 0.1 s)
    emu.fault{ path = "/api/download/", status = 302, body = "",
               headers = { Location = "/trickle?bytes=2000000&interval=0.1&chunk=1000" } }
    local script, dest = dir .. "/loop.lua", dir .. "/logs/"
    shell.write_file(script, CHILD)
    local F = vendors.fixtures.yeastar
    local env = table.concat({
      "LUA_PATH=" .. q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
      "LUA_CPATH=" .. q(package.cpath), -- this process's core (the ASan build under make asan)
      "EMU_URL=" .. q(e.base_url), "EMU_CA=" .. q(e.ca_file),
      "YS_ID=" .. q(F.client_id), "YS_SECRET=" .. q(F.client_secret) }, " ")
    local out, err, rcf = dir .. "/out", dir .. "/err", dir .. "/rc"
    -- in the background of a shell without job control SIGINT starts ignored; lua.c and
    -- luajit.c install their own handler, as in a terminal. A subshell `( )`, not a group
    -- `{ }`: a group's redirection would keep a copy of popen's pipe open (read never ends)
    local pid = shell.check(("( env %s %s %s %s >%s 2>%s; echo $? >%s ) >/dev/null 2>&1 </dev/null & echo $!"):format(
      env, shell.lua_command(), q(script), q(dest), q(out), q(err), q(rcf))):match("%d+")
    assert.is_truthy(pid)
    -- the subshell's child is the interpreter: find it, and wait until its first .part grows
    local child
    assert.is_true(wait_for(function()
      child = shell.run("pgrep -P " .. pid):match("%d+")
      return child ~= nil
    end, 10), "the interpreter did not start")
    finally(function() shell.run("kill -KILL " .. child .. " 2>/dev/null") end)
    assert.is_true(wait_for(function()
      return shell.run("ls -A " .. q(dest) .. " 2>/dev/null"):find("%.part") ~= nil
    end, 20), "no .part appeared: " .. tostring(shell.read_file(out)) .. tostring(shell.read_file(err)))
    shell.check("kill -INT " .. child)
    assert.is_true(wait_for(function() return shell.read_file(rcf) ~= nil end, 20), "the process did not end")
    local rc = tonumber(shell.read_file(rcf))
    local stdout, stderr = shell.read_file(out) or "", shell.read_file(err) or ""
    assert.are_not.equal(0, rc)
    assert.matches("interrupted!", stderr)
    assert.matches("start 1", stdout)
    assert.is_nil(stdout:find("after 1", 1, true), "the loop went on after the interrupt:\n" .. stdout)
    assert.is_nil(stdout:find("start 2", 1, true))
    assert.equal("", (shell.run("ls -A " .. q(dest))))
  end)
end)
