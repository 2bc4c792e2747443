--- Small test utilities: temporary folders and independent checks of files.
-- Digests come from the `sha256sum` command, never from loghaul itself, so a
-- broken core cannot vouch for its own output.
local shell = require "helpers.shell"

local M = {}

local sh, q = shell.check, shell.quote

M.shell_quote = q

--- A fresh temporary directory.
function M.tmpdir()
  return shell.tmpdir("loghaul-test")
end

--- Removes a directory made by tmpdir, or one inside it.
function M.rmdir(dir)
  if dir and dir:match("^/tmp/loghaul%-test%.") then sh("rm -rf " .. q(dir)) end
end

--- Lower-case hex SHA-256 of a file, by sha256sum.
function M.sha256sum(path)
  return (sh("sha256sum " .. q(path)):match("^(%x+)"))
end

--- Lower-case hex SHA-256 of a string, by sha256sum.
function M.sha256_hex(s)
  local path = os.tmpname()
  shell.write_file(path, s)
  local hex = M.sha256sum(path)
  os.remove(path)
  return hex
end

--- Writes n random bytes to path.
function M.write_random(path, n)
  sh(("head -c %d /dev/urandom > %s"):format(n, q(path)))
end

--- Copies the first n bytes of src to dst.
function M.copy_prefix(src, dst, n)
  sh(("head -c %d %s > %s"):format(n, q(src), q(dst)))
end

--- Size of a file in bytes, or nil when it does not exist.
function M.size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

function M.exists(path)
  return M.size(path) ~= nil
end

--- Names in a directory (no dot entries), sorted.
function M.ls(dir)
  local names = {}
  for name in sh("ls -A " .. q(dir)):gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

return M
