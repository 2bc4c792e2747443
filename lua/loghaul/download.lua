--- Downloads as DESIGN.md "Downloads" says: `dest` as a directory or a file path, safe base
-- names from the server, bytes to `<path>.part`, resumed with Range after a broken
-- connection, renamed over the final name only when complete.
-- @module loghaul.download
local envelope = require "loghaul.envelope"
local errors = require "loghaul.errors"
local fs = require "loghaul.fs"
local json = require "loghaul.json"
local progress = require "loghaul.progress"
local runtime = require "loghaul.runtime"
local util = require "loghaul.util"

local M = {}

--- Reduces a server-supplied file name to a safe base name.
-- Directory parts (`../x`, `/etc/x`, `a\b`) are dropped; NUL, control characters, an empty
-- name, `.`/`..` and names over 255 bytes are refused.
-- @tparam string name
-- @treturn string|nil the base name, or nil, reason
function M.safe_name(name)
  if type(name) ~= "string" then return nil, "the server gave no file name" end
  if name:find("[%z\1-\31\127]") then return nil, "the server's file name contains control characters" end
  local base = name:match("([^/\\]*)$")
  if base == "" or base == "." or base == ".." then
    return nil, "the server's file name has no usable base name"
  end
  if #base > 255 then return nil, "the server's file name is longer than 255 bytes" end
  return base
end

local function unquote(s, i)
  -- s:sub(i, i) is the opening quote; returns the unescaped text up to the closing quote
  local out, j = {}, i + 1
  while j <= #s do
    local c = s:sub(j, j)
    if c == "\\" then
      out[#out + 1] = s:sub(j + 1, j + 1)
      j = j + 2
    elseif c == '"' then
      return table.concat(out)
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
  return nil
end

--- The file name of a Content-Disposition header (`filename*=UTF-8''…` first, then
-- `filename="…"` or a bare token). Not yet made safe: see `safe_name`.
-- @tparam string value the header
-- @treturn string|nil
function M.content_disposition_name(value)
  if type(value) ~= "string" then return nil end
  local lower = value:lower()
  local s = lower:find("filename%*%s*=")
  if s then
    local e = select(2, lower:find("filename%*%s*=%s*", s))
    local enc = value:sub(e + 1):match("^[^']*'[^']*'([^;%s]+)")
    if enc then
      return (enc:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end
  end
  local p = 1
  while true do
    local a, b = lower:find("filename%s*=%s*", p)
    if not a then return nil end
    local before = a > 1 and lower:sub(a - 1, a - 1) or ";"
    if before:find("[;%s]") then
      if value:sub(b + 1, b + 1) == '"' then return unquote(value, b + 1) end
      -- a bare value runs to the next `;`: a TAB or control byte inside stays in the name
      -- (and safe_name refuses it) instead of silently cutting the name short
      local bare = value:sub(b + 1):match("^([^;]*)"):gsub("[ \t]+$", "")
      if bare == "" then return nil end
      return bare
    end
    p = b + 1
  end
end

--- Resolves the `dest` option: a directory (ends with `/` or already is one; created when
-- missing) or the file's own path (its directory created when missing).
-- @tparam string|nil dest
-- @treturn table|nil `{ dir = }` or `{ final = }`, or nil, err (`io`)
function M.resolve(dest)
  if dest == nil then dest = "./" end
  if type(dest) ~= "string" or dest == "" then error("loghaul: dest must be a non-empty string", 4) end
  if dest:find("%z") then return nil, errors.invalid("dest contains a NUL byte") end
  if dest:sub(-1) == "/" or fs.is_dir(dest) then
    local dir = dest:gsub("/+$", "")
    if dir == "" then dir = "/" end
    local ok, err = fs.mkdir_p(dir)
    if not ok then return nil, errors.io(dir, err) end
    return { dir = dir }
  end
  local parent = fs.dirname(dest)
  local ok, err = fs.mkdir_p(parent)
  if not ok then return nil, errors.io(parent, err) end
  return { final = dest }
end

local function join(dir, base)
  if dir == "/" then return "/" .. base end
  return dir .. "/" .. base
end

-- The temporary name beside `final`: `<final>.part`, or a short stand-in when the base name is
-- too long for the suffix (a 251-255 byte name is legal, its `.part` name is not).
local function part_of(client, final)
  local base = fs.basename(final)
  if #base + 5 <= 255 then return final .. ".part" end
  return join(fs.dirname(final), ".loghaul-" .. client.core.hex(client.core.sha256(base)):sub(1, 16) .. ".part")
end

local function read_head(path, n)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read(n)
  f:close()
  return s
end

-- An error when a 2xx answer written to `part` is a JSON error envelope instead of the file.
local function not_the_file(res, part)
  local ctype = (res.headers and res.headers["content-type"] or ""):lower()
  local size = fs.size(part) or 0
  local looks_json = ctype:find("json", 1, true) ~= nil
  if not looks_json and size > 65536 then return nil end
  local head = read_head(part, 65536) or ""
  if not looks_json and not head:find("^%s*{") then return nil end
  local v = json.decode(head)
  local code, message
  if type(v) == "table" then
    code = v.errcode or v.error_code or v.code
    message = v.errmsg or v.error_msg or v.message
  end
  if code == nil and not looks_json then return nil end
  code = util.code(code)
  if code == "0" then code = nil end
  local kind = (code == "10004" or code == "10005") and "auth" or (code and "api" or "http")
  return envelope.http_error(res, {
    kind = kind, code = code, retryable = false,
    message = "expected the file, got a JSON answer" .. (message and (": " .. tostring(message)) or ""),
  })
end

local function range_total(res)
  local cr = res.headers and res.headers["content-range"]
  return cr and tonumber(cr:match("/(%d+)%s*$"))
end

-- What identifies the file an answer (complete or cut) is sending: a strong ETag, else
-- Last-Modified (both usable in If-Range), and its full size.
local function identity(res)
  local h = res.headers or {}
  local validator = h.etag
  if type(validator) ~= "string" or validator == "" or validator:find("^W/") then validator = h["last-modified"] end
  if type(validator) ~= "string" or validator == "" or validator:find("[%c]") then validator = nil end
  local total
  if res.status == 206 then total = range_total(res) else total = tonumber(h["content-length"]) end
  return validator, total
end

--- Downloads one file through the client's pipeline. With a directory `dest`, the name is
-- the Content-Disposition of the latest answer that had one (a resumed 206 may omit it),
-- else `spec.default_name`.
-- @tparam table client
-- @tparam table spec `{ operation, url, headers, auth, decode (the vendor's envelope, for
--   non-2xx answers), dest, mode (of the new file, default "0600"), name (the server's name when
--   known before), default_name }`
-- @treturn table|nil `{ path =, bytes =, sha256 = }`, or nil, err
function M.fetch(client, spec)
  local target, terr = M.resolve(spec.dest)
  if not target then return nil, terr end
  local final = target.final
  local part
  if not final and spec.name ~= nil then
    local base, why = M.safe_name(spec.name)
    if not base then
      return nil, errors.new{ kind = "http", code = "UNSAFE_FILE_NAME", message = why .. ": " ..
        string.format("%q", spec.name), vendor = client.vendor, operation = spec.operation }
    end
    final = join(target.dir, base)
  end
  if final then
    part = part_of(client, final)
  else
    part = join(target.dir, ".loghaul-" .. client.core.hex(client.core.random(8)) .. ".part")
  end
  fs.remove(part) -- never splice a leftover of an earlier run into this file
  local last_res, expected_total, validator
  -- the server's file name from the latest answer that gave one: a resumed 206 often omits
  -- Content-Disposition, and the name must not fall back to the default then
  local server_name
  local function note_name(res)
    server_name = M.content_disposition_name(res.headers and res.headers["content-disposition"]) or server_name
  end
  -- A resumed answer (206) must be the same file as the bytes already in `part`: same
  -- validator (sent as If-Range, so a changed file comes back whole as a 200) and same size.
  -- Otherwise `part` is dropped and the download starts over instead of splicing.
  local function same_file(res)
    local v, total = identity(res)
    if res.status == 206 then
      if (validator and v and v ~= validator) or (expected_total and total and total ~= expected_total) then
        return false
      end
    end
    validator, expected_total = v or (res.status == 206 and validator or nil), total or expected_total
    return true
  end
  local report = progress.reporter(client, "download")
  local op = {
    operation = spec.operation, method = "GET", url = spec.url, headers = spec.headers, auth = spec.auth,
    prepare = function(req)
      local have = fs.size(part) or 0
      if have > 0 and not validator and not expected_total then
        fs.remove(part) -- nothing to check a resumed answer against: start over
        have = 0
      end
      req.output = part
      req.mode = spec.mode -- new files are 0600 unless the caller asked for another mode
      req.sha256 = true -- the core hashes what it writes: no second read of the file after
      -- a big file may take longer than the API calls' default total limit: no limit but
      -- the session's low-speed abort, unless the user set `timeout` (then it applies)
      req.timeout = client.timeout or 0
      if have > 0 then
        req.resume_from = have
        if validator then req.headers["If-Range"] = validator end
      end
      -- the expected size is learnt only from a 2xx answer's headers (same_file): the
      -- progress callback also counts a 4xx/5xx error page, which is not the file
      req.progress = function(dltotal, dlnow)
        if report then
          report(have + (dlnow or 0), expected_total or (dltotal and dltotal > 0 and have + dltotal or nil))
        end
        return true
      end
      return true
    end,
    on_error = function(err)
      local pr = err.partial
      if not pr or (pr.status ~= 200 and pr.status ~= 206) then return end
      note_name(pr)
      if not same_file(pr) then fs.remove(part) validator, expected_total = nil, nil end
    end,
    decode = function(res, o, secrets)
      if res.status == 200 or res.status == 206 then
        local nf = not_the_file(res, part)
        if nf then fs.remove(part) return nil, nf end
        if not same_file(res) then
          fs.remove(part) -- the file changed on the server: start over rather than splice
          validator, expected_total = nil, nil
          return nil, envelope.http_error(res, { kind = "http", code = "FILE_CHANGED", retryable = true,
            message = "the file changed on the server during the download; starting over" })
        end
        -- a 206 may end before the file does (`bytes 5-9/20`): curl sees a complete answer,
        -- but `part` is not the whole file yet; resume from where it stops (or start over).
        -- Without a total in Content-Range (`bytes 5-9/*`) the size learnt before is the check.
        local rtotal, size = res.status == 206 and (range_total(res) or expected_total), fs.size(part)
        if rtotal and size ~= rtotal then
          if not size or size > rtotal then fs.remove(part) validator, expected_total = nil, nil end
          return nil, envelope.http_error(res, { kind = "http", code = "INCOMPLETE_RANGE", retryable = true,
            message = ("the ranged answer ended at byte %s of %s"):format(tostring(size), tostring(rtotal)) })
        end
        last_res = res
        note_name(res)
        return true
      end
      if res.status == 416 then
        fs.remove(part)
        return nil, envelope.http_error(res, { kind = "http", code = "RANGE_NOT_SATISFIABLE", retryable = true,
                                               message = "resume refused; starting over" })
      end
      local _, e = spec.decode(res, o, secrets)
      if not e then
        e = envelope.http_error(res, { kind = "http", message = "expected the file, got HTTP " .. res.status })
      end
      return nil, e
    end,
  }
  local ok, err = client:call(op)
  if not ok then
    fs.remove(part)
    if err.kind == "io" and not err.message:find(part, 1, true) then
      err.message = part .. ": " .. err.message
    end
    return nil, err
  end
  if not final then
    local name = server_name or spec.default_name
    local base, why = M.safe_name(name)
    if not base then
      fs.remove(part)
      return nil, errors.new{ kind = "http", code = "UNSAFE_FILE_NAME", status = last_res.status,
        message = why .. (name and (": " .. string.format("%q", name)) or ""),
        vendor = client.vendor, operation = spec.operation }
    end
    final = join(target.dir, base)
  end
  local bytes = fs.size(part)
  -- the core's hash covers the whole file unless the last answer was a resumed 206
  local sha, serr = last_res.sha256, nil
  if not sha then sha, serr = runtime.sha256_file(client.core, part, client.transfer_ctx) end
  if not bytes or not sha then
    fs.remove(part)
    -- the core's error is a table { kind, code, message } whose message already names the path
    local why = type(serr) == "table" and tostring(serr.message or serr.code) or serr
    if type(why) == "string" and why:sub(1, #part + 2) == part .. ": " then why = why:sub(#part + 3) end
    local e = errors.io(part, why or "cannot read the downloaded file")
    if type(serr) == "table" then e.code = serr.code end
    return nil, e
  end
  if fs.is_dir(final) then
    fs.remove(part)
    return nil, errors.io(final, "is a directory; not replaced")
  end
  -- core.rename moves only the regular file written here: never a symlink planted at the
  -- .part name, never over a directory or a symlink at the final name
  local renamed, rerr = client.core.rename(part, final)
  if not renamed then
    fs.remove(part)
    return nil, errors.new{ kind = "io", code = rerr.code, message = rerr.message, path = final }
  end
  if report then report(bytes, bytes, true) end
  return { path = final, bytes = bytes, sha256 = sha }
end

return M
