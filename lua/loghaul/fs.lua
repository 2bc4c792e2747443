--- Local file helpers for downloads and uploads (no LuaFileSystem needed).
-- @module loghaul.fs
local M = {}

--- Size of a regular file in bytes.
-- @tparam string path
-- @treturn number|nil size, or nil, message when it cannot be opened
function M.size(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local n, serr = f:seek("end")
  f:close()
  if not n then return nil, serr end
  return n
end

--- Whether a path is an existing directory.
-- @tparam string path
-- @treturn boolean
function M.is_dir(path)
  local f = io.open(path .. "/.", "rb")
  if f then f:close() return true end
  return false
end

--- Whether a path exists and can be opened for reading.
-- @tparam string path
-- @treturn boolean
function M.readable(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- Creates a directory and its parents when missing (`core.mkdir_p`: no shell, the OS's
-- reason when it cannot).
-- @tparam string path
-- @treturn boolean|nil true, or nil, message ("cannot create directory: Not a directory"; the
--   caller's error names the path), code (the errno name, "ENOTDIR")
function M.mkdir_p(path)
  if path:find("%z") then return nil, "path contains NUL", "EINVAL" end
  local ok, err = require("loghaul.core").mkdir_p(path)
  if ok then return true end
  local msg = tostring(type(err) == "table" and err.message or err or "failed")
  local prefix = "cannot create directory " .. path .. ": "
  if msg:sub(1, #prefix) == prefix then msg = msg:sub(#prefix + 1) end
  return nil, "cannot create directory: " .. msg, type(err) == "table" and err.code or nil
end

--- The last component of a path.
-- @tparam string path
-- @treturn string
function M.basename(path)
  return (path:match("([^/]*)/*$"))
end

--- The directory part of a path ("." when there is none).
-- @tparam string path
-- @treturn string
function M.dirname(path)
  local d = path:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end

--- Removes a file, ignoring a missing one.
-- @tparam string path
function M.remove(path)
  os.remove(path)
end

return M
