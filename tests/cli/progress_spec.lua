-- The progress line: drawn on stderr when it is a terminal (a pseudo-terminal from
-- util-linux `script`), never when it is not (unless --progress), never with --quiet; and
-- the renderer's text (bytes, rate, ETA, export percentage, pages, tasks) with a fake clock.
local cli = require "cli.helper"
local shell = require "helpers.shell"
local vendors = require "helpers.vendors"
local emu = require "helpers.emulator"

-- runs loghaul in a pseudo-terminal: stdout and stderr both arrive in `script`'s output
local function in_pty(argv, env, dir)
  local cmd = "cd " .. shell.quote(dir) .. " && " .. cli.command(argv, env)
  local out, rc = shell.run("script -qec " .. shell.quote(cmd) .. " /dev/null")
  return out, rc
end

describe("loghaul progress", function()
  local dir, close_suite, env
  setup(function()
    local _
    _, dir, close_suite = vendors.open_suite()
    env = cli.emulator_env()
  end)
  teardown(function() close_suite() end)
  before_each(function() emu.reset() vendors.reset() vendors.configure{ clouddc = { polls = 1 } } end)

  it("on a terminal: the export percentage while polling, then the download's bytes, one redrawn line", function()
    local out, rc = in_pty({ "clouddc", "export", vendors.fixtures.clouddc.server_id, "--dest", "d", "--poll", "1s" },
      env, dir)
    assert.are.equal(0, rc, out)
    local id = vendors.fixtures.clouddc.server_id
    assert.truthy(out:find("\r" .. id .. ": export  30%\27[K", 1, true), out)
    assert.truthy(out:find("\r" .. id .. ": export 100%\27[K", 1, true), out)
    assert.truthy(out:find("\r" .. id:gsub("%-", "%%-") .. ": download [%d.]+ KiB of [%d.]+ KiB 100%%"), out)
    -- the line is cleared before the result is printed
    assert.truthy(out:find("\r\27[K" .. id .. "\t", 1, true), out)
  end)

  it("many ids on a terminal: tasks done and failed in front of each", function()
    local today = os.date("!%Y%m%d")
    local out, rc = in_pty({ "yeastar", "download", "19990101", today, "--dest", "y" }, env, dir)
    assert.are.equal(3, rc, out)
    assert.truthy(out:find("[0/2 done, 0 failed] 19990101: ", 1, true), out)
    assert.truthy(out:find("[0/2 done, 1 failed] " .. today .. ": download", 1, true), out)
  end)

  it("pages and records while paging", function()
    -- slow pages, so the library's event rate limit (a few a second) lets several through
    emu.fault{ path = "/api/v2/zls", delay = 0.3, count = 3 }
    local out, rc = in_pty({ "zenlayer", "logs", "--since", "20d", "--page-size", "50", "--output", "z.jsonl",
                             "--resume", "z.state" }, env, dir)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("\rpages %d+\27%[K"), out)
    assert.truthy(out:find("\rpages %d+, records [1-9]%d*\27%[K"), out)
  end)

  it("no progress when stderr is not a terminal; --progress forces it; --quiet silences it", function()
    local today = os.date("!%Y%m%d")
    local plain = cli.run({ "yeastar", "download", today, "--dest", dir .. "/n" }, env)
    assert.are.equal(0, plain.code, plain.stderr)
    assert.are.equal("", plain.stderr)
    local forced = cli.run({ "yeastar", "download", today, "--dest", dir .. "/n", "--progress" }, env)
    assert.truthy(forced.stderr:find("\r" .. today .. ": download", 1, true), forced.stderr)
    local out = in_pty({ "yeastar", "download", today, "--dest", "q", "--quiet" }, env, dir)
    assert.is_nil(out:find("download", 1, true), out)
    assert.truthy(out:find("^" .. today .. "\t"), out)
  end)
end)

describe("loghaul progress renderer", function()
  local progress = require "loghaul.cli.progress"
  local function renderer()
    local buf, t = {}, 0
    local out = { write = function(_, ...) for _, s in ipairs{ ... } do buf[#buf + 1] = s end end,
                  flush = function() end }
    local r = progress.new{ enabled = true, out = out, clock = function() return t end }
    return r, function() local s = table.concat(buf) buf = {} return s end, function(dt) t = t + dt end
  end

  it("transfers: bytes, total, percentage, rate and ETA", function()
    local r, text, tick = renderer()
    r:task("srv-1", 0, 0, 1)
    text()
    r:event{ phase = "download", done = 0, total = 10 * 2 ^ 20 }
    tick(2)
    r:event{ phase = "download", done = 4 * 2 ^ 20, total = 10 * 2 ^ 20 }
    assert.are.equal("\rsrv-1: download 4.0 MiB of 10.0 MiB  40% 2.0 MiB/s ETA 3s\27[K", text():match("\r[^\r]*$"))
  end)

  it("an upload without a total shows bytes and rate only", function()
    local r, text, tick = renderer()
    r:event{ phase = "upload", done = 0 }
    tick(1)
    r:event{ phase = "upload", done = 1536 }
    assert.are.equal("\rupload 1.5 KiB 1.5 KiB/s\27[K", text():match("\r[^\r]*$"))
  end)

  it("export percentage, pages, task counts; a message clears the line first", function()
    local r, text = renderer()
    r:task("srv-2", 3, 1, 5)
    r:event{ phase = "export", done = 70, total = 100, percent = 70 }
    assert.are.equal("\r[3/5 done, 1 failed] srv-2: starting\27[K"
      .. "\r[3/5 done, 1 failed] srv-2: export  70%\27[K", text())
    r:task("", 0, 0, 1)
    r.prefix = ""
    r:event{ phase = "page", done = 12, records = 11500 }
    assert.are.equal("\rpages 12, records 11500\27[K", text():match("\r[^\r]*$"))
    r:message("hello")
    assert.are.equal("\r\27[Khello\n", text())
  end)

  it("disabled: writes nothing", function()
    local buf = {}
    local r = progress.new{ enabled = false, out = { write = function(_, s) buf[#buf + 1] = s end,
                                                      flush = function() end } }
    r:task("x", 0, 0, 2)
    r:event{ phase = "download", done = 5, total = 10 }
    r:clear()
    assert.are.same({}, buf)
  end)
end)
