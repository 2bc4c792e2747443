-- One small, distinct .tar.gz per CloudDC fleet server, built in memory in a few ms (no shell):
-- log text drawn from SHA-256 of the id (so the same id always gets the same bytes and every
-- id gets its own sha256), packed as ustar, deflated by zlib (already mapped by nginx), written
-- once under <dir>/www/_vfiles/ and served from there by nginx (Range, sendfile).
local common = require "emu.vendors.common"
local bit = require "bit"
local crypto = require "emu.crypto"
local ffi = require "ffi"
local json = require "emu.json"

-- One declaration per pcall: another module may have declared some of these already.
for _, decl in ipairs {
  "unsigned long compressBound(unsigned long sourceLen);",
  "int compress2(unsigned char *dest, unsigned long *destLen, const unsigned char *source, "
    .. "unsigned long sourceLen, int level);",
  "unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned int len);",
} do pcall(ffi.cdef, decl) end

local Z
do
  local ok = pcall(function() return ffi.C.compress2 end)
  Z = ok and ffi.C or ffi.load("libz.so.1")
end

local M = {}

M.MAX_SIZE = 64 * 1024 * 1024    -- built in memory: keep fleet archives small
local MTIME = 1704164645          -- fixed (2024-01-02T03:04:05Z) so the bytes depend on the id only

local function octal(n, width)   -- width-1 octal digits and a NUL
  return string.format("%0" .. (width - 1) .. "o", n) .. "\0"
end

local function field(s, width)
  return s .. string.rep("\0", width - #s)
end

-- A ustar member: 512-byte header, data, padding to 512.
local function member(name, data)
  local head = field(name, 100) .. octal(420, 8) .. octal(0, 8) .. octal(0, 8)
    .. octal(#data, 12) .. octal(MTIME, 12)
  local tail = "0" .. field("", 100) .. "ustar\0" .. "00" .. field("root", 32) .. field("root", 32)
    .. octal(0, 8) .. octal(0, 8) .. field("", 155) .. field("", 12)
  local sum = 8 * 32                                   -- the checksum field counts as spaces
  for _, s in ipairs { head, tail } do
    for i = 1, #s do sum = sum + s:byte(i) end
  end
  local hdr = head .. string.format("%06o", sum) .. "\0 " .. tail
  assert(#hdr == 512)
  return hdr .. data .. string.rep("\0", (512 - #data % 512) % 512)
end

-- About `size` bytes of log lines: base64 (in C) of a xorshift128 stream seeded by SHA-256
-- of `seed`, 90 bytes a line, so the text is as incompressible as base64 gets (~75%), never
-- repeats, and costs well under a millisecond per 100 KB.
local function log_text(seed, label, size)
  local words = math.ceil(size * 3 / 4 / 4) + 23
  local buf = ffi.new("int32_t[?]", words)
  local s4 = ffi.new("int32_t[4]")
  ffi.copy(s4, crypto.digest(seed), 16)
  local x, y, z, w = s4[0], s4[1], s4[2], bit.bor(s4[3], 1)   -- never all zero
  for i = 0, words - 1 do
    local t = bit.bxor(x, bit.lshift(x, 11))
    x, y, z = y, z, w
    w = bit.bxor(w, bit.rshift(w, 19), t, bit.rshift(t, 8))
    buf[i] = w
  end
  local bytes = ffi.cast("const char *", buf)
  local out = { "# " .. label .. "\n" }
  local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ", MTIME) .. " INFO [main] "
  local off, n = 0, 0
  while n < size do
    local line = stamp .. ngx.encode_base64(ffi.string(bytes + off, 90)) .. "\n"
    out[#out + 1] = line
    n, off = n + #line, off + 90
  end
  return table.concat(out)
end

local function u32le(n)
  return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256,
                     math.floor(n / 16777216) % 256)
end

-- gzip (RFC 1952) of `data`: compress2's zlib stream without its 2-byte header and Adler-32.
local function gzip(data)
  local cap = Z.compressBound(#data)
  local buf = ffi.new("unsigned char[?]", cap)
  local len = ffi.new("unsigned long[1]", cap)
  if Z.compress2(buf, len, data, #data, 1) ~= 0 then error("compress2 failed") end
  local deflated = ffi.string(buf + 2, tonumber(len[0]) - 6)
  local crc = tonumber(Z.crc32(0, data, #data))
  return "\31\139\8\0\0\0\0\0\0\3" .. deflated .. u32le(crc) .. u32le(#data % 4294967296)
end

--- The .tar.gz bytes of server `id` with serial number `sn`, about `size` bytes.
function M.build(id, sn, size)
  local files = { "bmc.log", "os-messages.log", "raid.log" }
  local parts = {}
  for i, f in ipairs(files) do
    local text = log_text(id .. "/" .. f, sn .. " " .. id .. " " .. f, size / 0.76 / #files)
    parts[i] = member("logs/" .. f, text)
  end
  parts[#parts + 1] = string.rep("\0", 1024)
  return gzip(table.concat(parts))
end

local known = {}   -- this worker: file name -> { sha256 =, size = }

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- The name under /_vfiles/ of server `id`'s archive, made on first use; records its sha256
-- and size for state() (clouddc.archives).
function M.ensure(id, sn, size)
  size = math.max(math.min(math.floor(tonumber(size) or 16384), M.MAX_SIZE), 1024)
  local name = string.format("clouddc-%s-%d.tar.gz", id, size)
  local info = known[name]
  if not info then
    local path = common.files_dir() .. "/" .. name
    local data = read(path)
    if not data then
      data = M.build(id, sn, size)
      local tmp = string.format("%s.%d.tmp", path, ngx.worker.pid())
      local f = assert(io.open(tmp, "wb"))
      assert(f:write(data))
      assert(f:close())
      assert(os.rename(tmp, path))
    end
    info = { sha256 = crypto.sha256_hex(data), size = #data }
    known[name] = info
  end
  ngx.shared.vendors:set("dc_arch:" .. id, json.encode(info))
  return name
end

--- state(): clouddc.archives = { [server id] = { sha256 =, size = } } of the archives
-- downloaded since the last reset.
function M.into(s)
  local d = ngx.shared.vendors
  local out = {}
  for _, k in ipairs(d:get_keys(0)) do
    local id = k:match("^dc_arch:(.+)$")
    if id then out[id] = json.decode(d:get(k) or "null") end
  end
  s.clouddc = s.clouddc or {}
  s.clouddc.archives = out
  return s
end

return M
