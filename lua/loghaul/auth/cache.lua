--- A token cache shared by processes (the `token_cache` option of IAM password auth and
-- Yeastar): one small JSON file holding what a next run needs (token, expiry, refresh
-- token), one entry per endpoint and user, never a password.
--
-- Safety, as ssh treats its keys: the file must be a regular file (never a symlink) owned by
-- this user and readable by nobody else (0600); its directory must be owned by this user and
-- writable by nobody else (created 0700 when missing). Anything else is refused with an
-- error that says what to fix. Writes are atomic (`core.write_file`: temp file, fsync,
-- rename), and every read-decide-write runs under an exclusive `flock` on `<file>.lock`, so
-- cron jobs sharing the file log in once between them, not once each.
-- @module loghaul.auth.cache
local errors = require "loghaul.errors"
local fs = require "loghaul.fs"
local json = require "loghaul.json"

local M = {}

local unpack = table.unpack or unpack -- luacheck: ignore 143
local function pack(...) return { n = select("#", ...), ... } end

local Cache = {}
Cache.__index = Cache

--- The largest cache file read (bytes).
M.max_bytes = 1024 * 1024

--- Creates the cache object (nothing is touched on disk until it is used).
-- @tparam table client the client whose token it keeps: its `core` (stat, mkdir_p, lock,
--   read_file, write_file, getuid) and its `sleep` (how a lock held elsewhere is waited for)
-- @tparam string path the cache file
-- @tparam string who for error messages: the option's place, e.g. "loghaul.yeastar: token_cache"
-- @treturn table the cache
function M.new(client, path, who)
  if type(path) ~= "string" or path == "" or path:find("%z") or path:sub(-1) == "/" then
    error(who .. " must be a file path (a non-empty string)", 4)
  end
  return setmetatable({ client = client, path = path, dir = fs.dirname(path) }, Cache)
end

--- How often a lock held elsewhere is tried again (seconds).
M.lock_poll = 0.05

-- The file's lock, tried and waited for with the client's sleep, never blocked on: a task on
-- the scheduler may hold it across a login (a transfer it yields for), and another task of the
-- same process blocking in flock would stop the very thread that must finish that login. The
-- sleep is a scheduler timer in a task, `ngx.sleep` in nginx, else a plain sleep.
local function take_lock(self)
  local path = self.path .. ".lock"
  while true do
    local lock, err = self.client.core.lock(path, true)
    if lock ~= false then return lock, err end
    self.client.sleep(M.lock_poll)
  end
end

local function refuse(self, message)
  return nil, errors.new{ kind = "invalid", code = "TOKEN_CACHE_UNSAFE", path = self.path, attempts = 0,
                          message = "token_cache " .. message }
end

local function octal(mode) return ("%04o"):format(mode) end

-- the file and its directory are ours and private (checked before every use: a run must not
-- read a token from, or write one to, a file someone else can read or swap)
local function check(self)
  local core = self.client.core
  local uid = core.getuid()
  local st = core.stat(self.dir)
  if not st then
    local ok, err = core.mkdir_p(self.dir, "0700")
    if not ok then return nil, errors.io(self.dir, err.message or tostring(err)) end
    st = core.stat(self.dir)
    if not st then return refuse(self, "directory " .. self.dir .. " could not be created") end
  end
  if st.type ~= "dir" then
    return refuse(self, self.dir .. " is not a directory (" .. st.type .. "); give a path in a directory you own")
  end
  if st.uid ~= uid then
    return refuse(self, "directory " .. self.dir .. " is owned by uid " .. st.uid .. ", not by you (uid " .. uid
      .. "): put the cache in a directory you own")
  end
  if math.floor(st.mode / 16) % 2 == 1 or math.floor(st.mode / 2) % 2 == 1 then -- g+w or o+w
    return refuse(self, "directory " .. self.dir .. " is writable by others (mode " .. octal(st.mode)
      .. "): chmod go-w it, or put the cache in a private directory")
  end
  local f = core.stat(self.path)
  if f then
    if f.type ~= "file" then
      return refuse(self, self.path .. " is not a regular file (" .. f.type .. "); refused")
    end
    if f.uid ~= uid then
      return refuse(self, self.path .. " is owned by uid " .. f.uid .. ", not by you (uid " .. uid .. "); refused")
    end
    if f.mode % 64 ~= 0 then -- any permission for group or others
      return refuse(self, self.path .. ": permissions " .. octal(f.mode) .. " are too open: others can read "
        .. "the tokens in it. It is refused (as ssh refuses such a key): chmod 600 " .. self.path)
    end
  end
  return true
end

local function load(self)
  local data = self.client.core.read_file(self.path, M.max_bytes)
  if not data then return { version = 1, entries = {} } end
  local v = json.decode(data)
  if type(v) ~= "table" or type(v.entries) ~= "table" then
    -- unreadable: start afresh (it only ever holds what a login can get again)
    return { version = 1, entries = {}, corrupt = true }
  end
  return v
end

--- Reads one entry without locking (writes are atomic renames: a reader sees the old or the
-- new file, never half of one).
-- @tparam string key
-- @treturn table|nil the entry (or false when there is none), or nil, err
function Cache:get(key)
  local ok, err = check(self)
  if not ok then return nil, err end
  return load(self).entries[key] or false
end

--- Runs `fn(entry)` under the file's lock, with the entry as stored now (or nil), and
-- stores what it returns: `fn` returns `new_entry, ...` (`new_entry` nil: leave it as it
-- is; false: delete it); the rest is returned. An error of `fn` releases the lock.
-- @tparam string key
-- @tparam function fn
-- @return what `fn` returned after its first value, or nil, err
function Cache:update(key, fn)
  local ok, err = check(self)
  if not ok then return nil, err end
  local lock, lerr = take_lock(self)
  if not lock then return nil, errors.io(self.path .. ".lock", lerr.message or tostring(lerr)) end
  local doc = load(self)
  local res = pack(pcall(fn, doc.entries[key]))
  if not res[1] then
    lock:unlock()
    error(res[2], 0)
  end
  local new = res[2]
  if new ~= nil then
    doc.entries[key] = new or nil
    doc.corrupt = nil
    local wok, werr = self.client.core.write_file(self.path, json.encode(doc), "0600")
    if not wok then
      lock:unlock()
      return nil, errors.io(self.path, werr.message or tostring(werr))
    end
  end
  lock:unlock()
  return unpack(res, 3, res.n)
end

return M
