-- SHA-256 / HMAC through LuaJIT FFI to OpenSSL's libcrypto.
-- The emulator must never trust loghaul to check loghaul, so it hashes with its own code.
local ffi = require "ffi"

ffi.cdef [[
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
const EVP_MD *EVP_get_digestbyname(const char *name);
int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl);
int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt);
int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]]

-- nginx already maps libcrypto; load it by name so the symbols resolve either way.
local ok, C = pcall(ffi.load, "libcrypto.so.3")
if not ok then C = ffi.load("crypto") end

local M = {}

local outbuf = ffi.new("unsigned char[64]")
local outlen = ffi.new("unsigned int[1]")

local function md(name)
  local m = C.EVP_get_digestbyname(name)
  if m == nil then error("unknown digest " .. tostring(name), 3) end
  return m
end

--- Lower-case hex of a byte string.
function M.hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- Incremental digest: local h = crypto.new("sha256"); h:update(s) ...; h:final() -> raw bytes.
-- Used by the upload and echo handlers so 1 GiB bodies hash in constant memory.
local Hash = {}
Hash.__index = Hash

function M.new(name)
  local ctx = ffi.gc(C.EVP_MD_CTX_new(), C.EVP_MD_CTX_free)
  if ctx == nil or C.EVP_DigestInit_ex(ctx, md(name or "sha256"), nil) ~= 1 then
    error("EVP_DigestInit_ex failed", 2)
  end
  return setmetatable({ ctx = ctx, size = 0 }, Hash)
end

function Hash:update(s)
  if #s > 0 then
    if C.EVP_DigestUpdate(self.ctx, s, #s) ~= 1 then error("EVP_DigestUpdate failed", 2) end
    self.size = self.size + #s
  end
  return self
end

function Hash:final()
  if C.EVP_DigestFinal_ex(self.ctx, outbuf, outlen) ~= 1 then error("EVP_DigestFinal_ex failed", 2) end
  return ffi.string(outbuf, outlen[0])
end

function Hash:hexdigest()
  return M.hex(self:final())
end

--- One-shot digest (raw bytes), default SHA-256.
function M.digest(s, name)
  return M.new(name):update(s):final()
end

function M.sha256_hex(s) return M.hex(M.digest(s, "sha256")) end

--- HMAC (raw bytes), default SHA-256.
function M.hmac(key, s, name)
  local r = C.HMAC(md(name or "sha256"), key, #key, s, #s, outbuf, outlen)
  if r == nil then error("HMAC failed", 2) end
  return ffi.string(outbuf, outlen[0])
end

function M.hmac_sha256_hex(key, s) return M.hex(M.hmac(key, s, "sha256")) end

return M
