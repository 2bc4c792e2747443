-- core file primitives (src/file.c): what a planted symlink, a non-directory parent or a
-- second process sees. Checked with the shell's own tools (ls, stat, flock), never with loghaul.
local core = require "loghaul.core"
local shell = require "helpers.shell"
local tu = require "helpers.util"

local q = shell.quote

local function octal_mode(path)
  return (shell.run("stat -c %a " .. q(path)):match("%d+"))
end

describe("core file primitives", function()
  local dir
  before_each(function() dir = tu.tmpdir() end)
  after_each(function() tu.rmdir(dir) end)

  it("stat describes files, directories and links without following them", function()
    shell.write_file(dir .. "/f", "12345")
    shell.run("ln -s f " .. q(dir .. "/l"))
    local f = assert(core.stat(dir .. "/f"))
    assert.are.same({ "file", 5 }, { f.type, f.size })
    assert.are.equal(core.getuid(), f.uid)
    assert.are.equal("link", core.stat(dir .. "/l").type)
    assert.are.equal("dir", core.stat(dir).type)
    local none, err = core.stat(dir .. "/missing")
    assert.is_nil(none)
    assert.are.same({ "io", "ENOENT" }, { err.kind, err.errno })
  end)

  it("mkdir_p creates parents and gives the OS reason when it cannot", function()
    assert.is_true(core.mkdir_p(dir .. "/a/b//c/"))
    assert.are.equal("dir", core.stat(dir .. "/a/b/c").type)
    assert.is_true(core.mkdir_p(dir .. "/a/b/c")) -- already there
    shell.write_file(dir .. "/file", "x")
    local ok, err = core.mkdir_p(dir .. "/file/logs/")
    assert.is_nil(ok)
    assert.are.equal("ENOTDIR", err.errno)
    assert.matches("cannot create directory .*/file/logs/: Not a directory", err.message)
  end)

  it("rename refuses a symlink at the source and a directory or symlink at the target", function()
    shell.write_file(dir .. "/victim", "precious")
    shell.run("ln -s victim " .. q(dir .. "/x.part"))
    local ok, err = core.rename(dir .. "/x.part", dir .. "/x")
    assert.is_nil(ok)
    assert.are.equal("ELOOP", err.errno)
    assert.is_nil(tu.size(dir .. "/x"))
    assert.are.equal("precious", shell.read_file(dir .. "/victim"))
    shell.write_file(dir .. "/y.part", "new")
    shell.run("mkdir " .. q(dir .. "/ydir") .. " && ln -s victim " .. q(dir .. "/ylink"))
    assert.are.equal("EISDIR", select(2, core.rename(dir .. "/y.part", dir .. "/ydir")).errno)
    assert.are.equal("ELOOP", select(2, core.rename(dir .. "/y.part", dir .. "/ylink")).errno)
    assert.are.equal("precious", shell.read_file(dir .. "/victim"))
    assert.is_true(core.rename(dir .. "/y.part", dir .. "/y"))
    assert.are.equal("new", shell.read_file(dir .. "/y"))
  end)

  it("takes a mode as octal digits or an integer, and nothing else", function()
    assert.is_true(core.write_file(dir .. "/m", "x", "640"))
    assert.are.equal("640", octal_mode(dir .. "/m"))
    assert.is_true(core.write_file(dir .. "/m", "x", 384))   -- 0600
    assert.are.equal("600", octal_mode(dir .. "/m"))
    for _, bad in ipairs{ " 0644", "+644", "-644", "0o644", "0x1a4", "0648", "", "644 ", "010000",
                          "00000000000000000000000644000", "64\0" .. "4", -1, 4096, 6.5 } do
      assert.has_error(function() core.write_file(dir .. "/m", "x", bad) end,
        'bad mode argument (an octal string like "0644" or an integer expected)')
    end
    assert.are.equal("600", octal_mode(dir .. "/m"))
  end)

  it("write_file is atomic, private by default, and never writes through a symlink", function()
    assert.is_true(core.write_file(dir .. "/s.json", "one"))
    assert.are.equal("600", octal_mode(dir .. "/s.json"))
    assert.is_true(core.write_file(dir .. "/s.json", "two", "0644"))
    assert.are.equal("two", shell.read_file(dir .. "/s.json"))
    assert.are.equal("644", octal_mode(dir .. "/s.json"))
    assert.are.same({ "s.json" }, tu.ls(dir)) -- no temporary file left
    shell.write_file(dir .. "/victim", "precious")
    shell.run("ln -s victim " .. q(dir .. "/l.json"))
    local ok, err = core.write_file(dir .. "/l.json", "evil")
    assert.is_nil(ok)
    assert.are.equal("ELOOP", err.errno)
    assert.are.equal("precious", shell.read_file(dir .. "/victim"))
  end)

  it("read_file reads, refuses symlinks and files over the limit", function()
    shell.write_file(dir .. "/f", "abc")
    assert.are.equal("abc", core.read_file(dir .. "/f"))
    shell.run("ln -s f " .. q(dir .. "/l"))
    assert.are.equal("ELOOP", select(2, core.read_file(dir .. "/l")).errno)
    assert.are.equal("EFBIG", select(2, core.read_file(dir .. "/f", 2)).errno)
  end)

  it("lock excludes another process until it is released", function()
    local path = dir .. "/cache.lock"
    local lock = assert(core.lock(path))
    assert.are.equal("600", octal_mode(path))
    local _, held = shell.run("flock -n " .. q(path) .. " true")
    assert.are_not.equal(0, held)
    lock:unlock()
    local _, free = shell.run("flock -n " .. q(path) .. " true")
    assert.are.equal(0, free)
  end)

  it("refuses paths with NUL bytes and bad modes", function()
    assert.has_error(function() core.stat(dir .. "/a\0b") end)
    assert.has_error(function() core.write_file(dir .. "/a", "x", "rw") end)
    assert.has_error(function() core.mkdir_p("") end)
  end)
end)
