--- Shell plumbing shared by the specs and the test helpers: quoting, running a command with
-- its exit status, the checkout's root, whole-file reads and writes, temporary folders.
-- Works the same under Lua 5.4 and LuaJIT, and needs nothing outside the standard library,
-- so plain `lua5.4` subprocesses (tests/reliability/hostile_server.lua) can load it too.
--
--   local shell = require "helpers.shell"
--   local out, rc = shell.run("sha256sum " .. shell.quote(path))
--   local fixtures = dofile(shell.root .. "/tests/emulator/lua/emu/fixtures.lua")
local M = {}

--- Quotes a value for sh: single quotes, an embedded `'` written as `'\''`.
-- @param s a string (or anything tostring accepts)
-- @treturn string
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs `cmd` with sh and returns its stdout and exit status. stderr is left alone (append
-- `2>&1` to the command to capture it, see capture). The status comes from an `echo "__rc=$?"`
-- after the command, since LuaJIT's `io.popen():close()` reports none.
-- @tparam string cmd
-- @treturn string stdout
-- @treturn number the exit status (-1 if it could not be read)
function M.run(cmd)
  local p = assert(io.popen(cmd .. "; echo \"__rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)__rc=(%d+)%s*$")
  return body or out, tonumber(rc) or -1
end

--- Like run, with stderr in the output too: `cmd 2>&1`.
-- @tparam string cmd
-- @treturn string stdout and stderr
-- @treturn number the exit status
function M.capture(cmd)
  return M.run(cmd .. " 2>&1")
end

--- Runs `cmd` and returns its stdout; raises (with the status) when it exits non-zero.
-- @tparam string cmd
-- @treturn string stdout
function M.check(cmd)
  local out, rc = M.run(cmd)
  if rc ~= 0 then error("command failed (" .. rc .. "): " .. cmd, 2) end
  return out
end

--- The whole content of a file, or nil when it cannot be opened.
-- @tparam string path
-- @treturn ?string
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Writes `data` to a file, replacing it, or appending when `append` is true. Raises on error.
-- @tparam string path
-- @tparam string data
-- @tparam[opt] boolean append
function M.write_file(path, data, append)
  local f = assert(io.open(path, append and "ab" or "wb"))
  assert(f:write(data))
  assert(f:close())
end

--- A fresh directory `/tmp/<prefix>.XXXXXX` (mktemp -d).
-- @tparam[opt="loghaul-test"] string prefix letters, digits, `-` and `_`
-- @treturn string its absolute path
function M.tmpdir(prefix)
  prefix = prefix or "loghaul-test"
  assert(prefix:match("^[%w_%-]+$"), "tmpdir: a plain prefix")
  local dir = M.check("mktemp -d /tmp/" .. prefix .. ".XXXXXX"):gsub("%s+$", "")
  return dir
end

--- Removes a directory made by tmpdir; anything not shaped `/tmp/<prefix>.XXXXXX` is left alone.
-- @tparam ?string dir
function M.rmdir(dir)
  if type(dir) == "string" and dir:match("^/tmp/[%w_%-]+%.%w+$") then M.run("rm -rf " .. M.quote(dir)) end
end

--- The checkout's root (an absolute path), found from this file's own path.
M.root = (function()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/[^/]*$") or "."
  return (M.check("cd " .. M.quote(dir .. "/../..") .. " && pwd"):gsub("%s+$", ""))
end)()

--- The shell words that start a Lua child process like this one: the same interpreter (lua5.4
-- or luajit), LUA_PATH/LUA_CPATH inherited, and under `make asan` the sanitizer runtime
-- preloaded again (the ASan core drops LD_PRELOAD once loaded; the Makefile passes the
-- runtime's path as LOGHAUL_ASAN_RT).
-- @treturn string e.g. "lua5.4" or "env LD_PRELOAD=/.../libclang_rt.asan-x86_64.so luajit"
function M.lua_command()
  local interp = rawget(_G, "jit") and "luajit" or "lua5.4"
  local rt = os.getenv("LOGHAUL_ASAN_RT")
  if rt and rt ~= "" then return "env LD_PRELOAD=" .. M.quote(rt) .. " " .. interp end
  return interp
end

return M
