--- Settings for the command line: credentials and endpoints from `LOGHAUL_*` environment
-- variables or from a profiles file (`~/.config/loghaul/config`, INI sections), never from
-- arguments (they show in `ps`). The file is parsed, never executed, and refused when
-- anyone but its owner can read it (as ssh refuses a private key). Also the per-user token
-- cache folder (`~/.cache/loghaul/`, 0700).
-- @module loghaul.cli.profiles
local args = require "loghaul.cli.args"

local M = {}

--- The settings a profile may hold: the environment variables without `LOGHAUL_`, lower-cased
-- in the file (`cms_url = https://…` is `LOGHAUL_CMS_URL`).
M.keys = {
  "CMS_URL", "CMS_AK", "CMS_SK",
  "CLOUDDC_URL", "CLOUDDC_PROJECT_ID", "CLOUDDC_AK", "CLOUDDC_SK", "CLOUDDC_TOKEN",
  "IAM_URL", "IAM_USER", "IAM_PASSWORD", "IAM_DOMAIN", "IAM_PROJECT",
  "YEASTAR_URL", "YEASTAR_CLIENT_ID", "YEASTAR_CLIENT_SECRET",
  "ZENLAYER_URL", "ZENLAYER_AK_ID", "ZENLAYER_AK_PASSWORD",
  "CA_FILE",
}
local known = {}
for _, k in ipairs(M.keys) do known[k:lower()] = true end

local function core()
  return require "loghaul.core"
end

--- The profiles file's path: `$LOGHAUL_CONFIG`, else `$XDG_CONFIG_HOME/loghaul/config`, else
-- `~/.config/loghaul/config`.
-- @tparam function getenv
-- @treturn string|nil
function M.default_path(getenv)
  local p = getenv("LOGHAUL_CONFIG")
  if p and p ~= "" then return p end
  local xdg = getenv("XDG_CONFIG_HOME")
  if xdg and xdg ~= "" then return xdg .. "/loghaul/config" end
  local home = getenv("HOME")
  if home and home ~= "" then return home .. "/.config/loghaul/config" end
  return nil
end

--- lstat of a path through the core (`core.stat`, from src/file.c), or through stat(1) on a
-- core that predates it. Returns `{ type =, mode =, uid = }`, or nil when the path is missing.
local function lstat(path)
  local c = core()
  if type(c.stat) == "function" then
    local st, err = c.stat(path)
    if not st and err and err.code ~= "ENOENT" and err.code ~= "ENOTDIR" then
      args.fail("cannot check %s: %s", path, tostring(err.message or err.code))
    end
    return st
  end
  local q = "'" .. path:gsub("'", "'\\''") .. "'"
  local p = io.popen("stat -c '%F|%a|%u' -- " .. q .. " 2>/dev/null; id -u")
  local out = p:read("*a")
  p:close()
  local kind, mode, uid = out:match("^([^|\n]+)|(%d+)|(%d+)\n")
  if not kind then return nil end
  local types = { ["regular file"] = "file", ["regular empty file"] = "file", directory = "dir",
                  ["symbolic link"] = "link" }
  return { type = types[kind] or "other", mode = tonumber(mode, 8), uid = tonumber(uid),
           _me = tonumber(out:match("\n(%d+)%s*$")) }
end

local function my_uid(st)
  local c = core()
  if type(c.getuid) == "function" then return c.getuid() end
  return st and st._me
end

--- Checks that only the owner can read a file of secrets (refused otherwise, as ssh does).
-- @tparam string path
-- @treturn table|nil the stat, or nil when the file does not exist; raises a usage error
--   when it exists but is not safe
function M.check_private(path)
  local st = lstat(path)
  if not st then return nil end
  if st.type == "link" then
    args.fail("profiles file %s is a symbolic link; loghaul reads only a regular file there (it holds secrets)", path)
  elseif st.type ~= "file" then
    args.fail("profiles file %s is not a regular file", path)
  end
  if st.mode % 64 ~= 0 then
    args.fail("profiles file %s is readable or writable by others (mode %04o); it holds secrets, "
      .. "so it is refused. Fix it with: chmod 600 %s", path, st.mode, path)
  end
  local me = my_uid(st)
  if me and st.uid ~= me then
    args.fail("profiles file %s belongs to uid %d, not to you (uid %d); refused", path, st.uid, me)
  end
  return st
end

local function read_all(path)
  local c = core()
  if type(c.read_file) == "function" then
    local data, err = c.read_file(path, 1024 * 1024)
    if not data then args.fail("cannot read profiles file %s: %s", path, tostring(err and err.message or err)) end
    return data
  end
  local f, err = io.open(path, "rb")
  if not f then args.fail("cannot read profiles file %s: %s", path, err) end
  local data = f:read("*a")
  f:close()
  return data
end

--- Parses INI text: `[name]` sections, `key = value` lines, `#`/`;` comments. Nothing is
-- evaluated; quotes around a value are removed.
-- @tparam string text
-- @tparam string path for messages
-- @tparam[opt] function warn called with a message for an unknown key
-- @treturn table section name → { key = value }
function M.parse(text, path, warn)
  local sections, cur = {}, nil
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("\r$", ""):match("^%s*(.-)%s*$")
    if line == "" or line:match("^[#;]") then -- luacheck: ignore 542
    elseif line:match("^%[") then
      local name = line:match("^%[%s*([%w_.%-]+)%s*%]$")
      if not name then args.fail("%s:%d: a section is [name] (letters, digits, _ . -)", path, n) end
      sections[name] = sections[name] or {}
      cur = sections[name]
    else
      local k, v = line:match("^([%w_%-]+)%s*=%s*(.-)$")
      if not k then args.fail("%s:%d: expected key = value, [section] or a # comment", path, n) end
      if not cur then args.fail("%s:%d: %s is outside any [section]", path, n, k) end
      k = k:lower()
      if not known[k] and warn then warn(("%s:%d: unknown key %s (ignored)"):format(path, n, k)) end
      v = v:match('^"(.*)"$') or v:match("^'(.*)'$") or v
      cur[k] = v
    end
  end
  return sections
end

--- The settings of one run: a `get(NAME)` over the environment and the profiles file.
-- With `--profile NAME` the profile's values win and keys it lacks come from the environment;
-- without it, the environment wins over the `[default]` section (or `$LOGHAUL_PROFILE`'s).
-- @tparam table o `{ profile =, config =, getenv =, warn = }`
-- @treturn function get(NAME) → string|nil (NAME without `LOGHAUL_`, e.g. "CMS_URL")
-- @treturn string|nil the file's path when one was read
function M.open(o)
  local getenv = o.getenv or os.getenv
  local path = o.config or M.default_path(getenv)
  local name = o.profile or getenv("LOGHAUL_PROFILE")
  local explicit = o.profile ~= nil
  local section = {}
  local used
  if path then
    local st = M.check_private(path)
    if st then
      local sections = M.parse(read_all(path), path, o.warn)
      used = path
      local want = name or "default"
      if sections[want] then
        section = sections[want]
      elseif name then
        args.fail("--profile %s: no [%s] section in %s", name, name, path)
      end
    elseif o.config or name then
      args.fail("%s: profiles file %s does not exist", o.config and "--config" or "--profile", path)
    end
  elseif name then
    args.fail("--profile %s: no profiles file (set HOME or LOGHAUL_CONFIG)", name)
  end
  local function env(k)
    local v = getenv("LOGHAUL_" .. k)
    if v == "" then v = nil end
    return v
  end
  return function(k)
    local p = section[k:lower()]
    if p == "" then p = nil end
    if explicit then return p or env(k) end
    return env(k) or p
  end, used
end

--- The per-user token cache folder, created 0700 when missing. Returns nil and a reason when
-- it cannot be used safely (then tokens are not cached).
-- @tparam function getenv
-- @treturn string|nil
-- @treturn string|nil reason
function M.cache_dir(getenv)
  getenv = getenv or os.getenv
  local base = getenv("XDG_CACHE_HOME")
  if not base or base == "" then
    local home = getenv("HOME")
    if not home or home == "" then return nil, "HOME is not set" end
    base = home .. "/.cache"
  end
  local dir = base .. "/loghaul"
  local c = core()
  if type(c.mkdir_p) ~= "function" then return nil, "this loghaul core has no mkdir_p" end
  if not c.stat(dir) then
    local ok, err = c.mkdir_p(dir, 448) -- 0700
    if not ok then return nil, "cannot create " .. dir .. ": " .. tostring(err and err.message or err) end
  end
  local st = c.stat(dir)
  if not st or st.type ~= "dir" then return nil, dir .. " is not a directory" end
  if st.mode % 64 ~= 0 then return nil, ("%s is open to others (mode %04o)"):format(dir, st.mode) end
  if type(c.getuid) == "function" and st.uid ~= c.getuid() then return nil, dir .. " is not yours" end
  return dir
end

return M
