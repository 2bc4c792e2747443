-- write_logs killed for real: a child process (this runtime) writes JSON Lines from the
-- emulator with a state file and is killed with SIGKILL at random moments, 30 times, each
-- kill followed by the same run again. Never a partial file at the final name, never a file
-- the next run neither reuses nor removes, and the run that finally completes has every
-- record exactly once (compared with each_log's). Also output = "-" (standard output).
local loghaul = require "loghaul"
local shell = require "helpers.shell"
local T = require "vendors.emu_ctx"

local F = T.F
local DAY = 86400

local CHILD = [=[
local loghaul = require "loghaul"
local base_url, ca_file, s, e, output, state = ...
local zl = loghaul.zenlayer{ endpoint = base_url, ca_file = ca_file, log = false,
  access_key_id = arg[7], access_key_password = arg[8] }
local res, err = zl:write_logs{ start_time = s, end_time = e, page_size = 25, output = output,
                                state_file = state ~= "" and state or nil }
if not res then io.stderr:write(tostring(err), "\n") os.exit(1) end
if output ~= "-" then print(res.records) end
]=]

describe("write_logs killed with SIGKILL", function()
  local e, dir, script, expected, s_time, e_time

  setup(function()
    e = T.start()
    T.reset()
    T.vendors.configure{ zenlayer = { record_count = 300, span_days = 10 } }
    dir = T.tmpdir()
    script = dir .. "/child.lua"
    T.write(script, CHILD)
    local now = os.time()
    s_time, e_time = T.utc(now - 11 * DAY), T.utc(now)
    local zl = loghaul.zenlayer(T.opts{ access_key_id = F.zenlayer.access_key_id,
                                        access_key_password = F.zenlayer.access_key_password })
    expected = {}
    for r in zl:each_log{ start_time = s_time, end_time = e_time, page_size = 25, raw = true } do
      expected[#expected + 1] = r
    end
    expected = table.concat(expected, "\n") .. "\n"
  end)
  teardown(function()
    T.rmdir(dir)
    T.reset()
  end)

  local function command(output, state)
    local q = shell.quote
    return table.concat({ shell.lua_command(), q(script), q(e.base_url), q(e.ca_file), q(s_time), q(e_time),
                          q(output), q(state or ""), q(F.zenlayer.access_key_id),
                          q(F.zenlayer.access_key_password) }, " ")
  end

  -- starts the child in the background, returns its pid
  local function spawn(cmd)
    local p = io.popen("(" .. cmd .. " >/dev/null 2>&1 & echo $!)")
    local pid = tonumber(p:read("*l"))
    p:close()
    return pid
  end

  -- a killed child nobody reaps (PID 1 of a container may not) stays a zombie: it no longer
  -- writes, so it counts as gone
  local function alive(pid)
    local f = io.open("/proc/" .. pid .. "/stat", "r")
    if not f then return false end
    local stat = f:read("*a") or ""
    f:close()
    return stat:match("^%d+ %b() (%a)") ~= "Z"
  end

  it("never leaves a partial file, and the rerun completes every record exactly once", function()
    local out, state = dir .. "/audit.jsonl", dir .. "/audit.state"
    local allowed = { ["child.lua"] = true, ["audit.jsonl.part"] = true, ["audit.state"] = true,
                      ["audit.state.part"] = true, ["audit.jsonl"] = true }
    -- how long one whole run takes, to kill at moments spread over a run
    local t0 = T.clock()
    assert.equal(0, select(2, shell.run(command(out, state))))
    local full = T.clock() - t0
    assert.equal(expected, T.read(out))
    os.remove(out)
    math.randomseed(os.time())
    local completed, kills = 0, 0
    for _ = 1, 30 do
      local pid = spawn(command(out, state))
      T.sleep(math.random() * full * 0.9)
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      for _ = 1, 200 do
        if not alive(pid) then break end
        T.sleep(0.01)
      end
      kills = kills + 1
      for _, name in ipairs(T.ls(dir)) do assert.is_true(allowed[name], "stray file " .. name) end
      local final = shell.read_file(out)
      if final then -- the run finished before the kill: complete, or nothing
        assert.equal(expected, final)
        completed = completed + 1
        os.remove(out)
      end
    end
    assert.equal(30, kills)
    -- the same run again, to the end
    assert.equal(0, select(2, shell.run(command(out, state))))
    assert.equal(expected, T.read(out))
    assert.same({ "audit.jsonl", "child.lua" }, T.ls(dir))
    assert.is_true(completed < 30, "every child finished before its kill: the kills proved nothing")
  end)

  it('output = "-" writes the records to standard output', function()
    assert.equal(expected, shell.check(command("-", nil)))
  end)
end)
