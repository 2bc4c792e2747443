/* crypto.c: SHA-256, HMAC-SHA256, hex, base64 and random bytes from OpenSSL.
 *
 * Nothing here keeps mutable state between calls, so the module can be loaded in
 * several Lua states on several threads (OpenResty worker threads). Big outputs are
 * produced in fixed-size chunks through luaL_Buffer, so no intermediate C allocation
 * can leak when Lua raises (out of memory) half way through. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "loghaul.h"

#define RANDOM_MAX (1024 * 1024)   /* random(n): n is at most 1 MiB */
#define FILE_CHUNK (64 * 1024)     /* sha256_file: one read() at a time */
#define B64_IN_CHUNK (3 * 256)     /* base64_encode: whole 3-byte groups per EVP call */
#define B64_OUT_CHUNK (4 * 256)    /* base64_decode: whole 4-char groups per EVP call */

void lh_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int lh_sha256(const void *in, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(in, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return -1;
    return 0;
}

int lh_hmac_sha256(const void *key, size_t klen, const void *in, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    if (klen > INT_MAX) /* HMAC() takes the key length as an int */
        return -1;
    /* An empty Lua string still has a valid pointer, but keep OpenSSL away from NULL keys. */
    if (HMAC(EVP_sha256(), klen ? key : "", (int)klen, in, n, out, &len) == NULL || len != 32)
        return -1;
    return 0;
}

int lh_sha256_hex(const void *in, size_t n, char out[65])
{
    unsigned char md[32];
    if (lh_sha256(in, n, md) != 0)
        return -1;
    lh_hex(md, sizeof md, out);
    return 0;
}

/// SHA-256 of a string.
// @function sha256
// @tparam string s
// @treturn string the raw 32-byte digest (see `hex`)
static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char md[32];
    if (lh_sha256(s, n, md) != 0)
        return luaL_error(L, "sha256: OpenSSL digest failed");
    lua_pushlstring(L, (const char *)md, sizeof md);
    return 1;
}

/// HMAC-SHA256 of a string.
// @function hmac_sha256
// @tparam string key
// @tparam string s
// @treturn string the raw 32-byte MAC
static int l_hmac_sha256(lua_State *L)
{
    size_t klen, n;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *s = luaL_checklstring(L, 2, &n);
    unsigned char md[32];
    if (lh_hmac_sha256(key, klen, s, n, md) != 0)
        return luaL_error(L, "hmac_sha256: OpenSSL HMAC failed");
    lua_pushlstring(L, (const char *)md, sizeof md);
    return 1;
}

/// Lower-case hex of a byte string (built in small chunks, no 2n-byte scratch copy).
// @function hex
// @tparam string bytes
// @treturn string
static int l_hex(lua_State *L)
{
    size_t n, i;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    char out[2 * 256 + 1];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i += 256) {
        size_t k = n - i < 256 ? n - i : 256;
        lh_hex(s + i, k, out);
        luaL_addlstring(&b, out, 2 * k);
    }
    luaL_pushresult(&b);
    return 1;
}

/* The symbolic name of an errno value ("ENOENT"); the number when it is not one we list. */
const char *lh_errno_name(int e, char *tmp, size_t size)
{
    switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EIO: return "EIO";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ENXIO: return "ENXIO";
    case ENODEV: return "ENODEV";
    case EOVERFLOW: return "EOVERFLOW";
    case EFBIG: return "EFBIG";
    case ETXTBSY: return "ETXTBSY";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case ESTALE: return "ESTALE";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EROFS: return "EROFS";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENOTEMPTY: return "ENOTEMPTY";
    default:
        snprintf(tmp, size, "E%d", e);
        return tmp;
    }
}

/* strerror is not required to be thread-safe; strerror_r comes in a GNU and an XSI flavour. */
const char *lh_errno_text(int e, char *buf, size_t size)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, size);
#else
    if (strerror_r(e, buf, size) != 0)
        snprintf(buf, size, "error %d", e);
    return buf;
#endif
}

/* Pushes nil, { kind = "io", code = "ENOENT", message = "<path>: <strerror>" }. */
static int push_io_error(lua_State *L, const char *path, int e)
{
    char name[32], text[256];
    lua_pushnil(L);
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "io");
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, lh_errno_name(e, name, sizeof name));
    lua_setfield(L, -2, "code");
    lua_pushfstring(L, "%s: %s", path, lh_errno_text(e, text, sizeof text));
    lua_setfield(L, -2, "message");
    return 2;
}

lh_sha256_ctx *lh_sha256_begin(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

int lh_sha256_update(lh_sha256_ctx *ctx, const void *p, size_t n)
{
    return EVP_DigestUpdate(ctx, p, n) == 1 ? 0 : -1;
}

int lh_sha256_end(lh_sha256_ctx *ctx, char hex[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32)
        return -1;
    lh_hex(md, sizeof md, hex);
    return 0;
}

void lh_sha256_free(lh_sha256_ctx *ctx)
{
    EVP_MD_CTX_free(ctx);
}

/* Hashes the open file fd into hex (65 bytes). Returns 0, or an errno value (EIO when
 * OpenSSL itself fails). Owns no Lua state, so it can clean up on every path. */
static int hash_fd(int fd, char hex[65])
{
    int err = 0;
    unsigned char *buf = malloc(FILE_CHUNK);
    lh_sha256_ctx *ctx = lh_sha256_begin();

    if (buf == NULL || ctx == NULL) {
        err = ENOMEM;
        goto done;
    }
    for (;;) {
        ssize_t got = read(fd, buf, FILE_CHUNK);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            goto done;
        }
        if (got == 0)
            break;
        if (lh_sha256_update(ctx, buf, (size_t)got) != 0) {
            err = EIO;
            goto done;
        }
    }
    if (lh_sha256_end(ctx, hex) != 0)
        err = EIO;
done:
    lh_sha256_free(ctx);
    free(buf);
    return err;
}

/// SHA-256 of a file, streamed through a fixed buffer (constant memory).
// @function sha256_file
// @tparam string path
// @treturn string lower-case hex
// @return or `nil, { kind = "io", code = "ENOENT", message = "<path>: <reason>" }`
static int l_sha256_file(lua_State *L)
{
    size_t n;
    const char *path = luaL_checklstring(L, 1, &n);
    char hex[65];
    int fd, err;

    if (strlen(path) != n) /* open() would hash the file the text before the NUL names */
        return luaL_argerror(L, 1, "path contains a NUL byte");

    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return push_io_error(L, path, errno);
    err = hash_fd(fd, hex);
    close(fd); /* read-only: nothing to lose on close */
    if (err != 0)
        return push_io_error(L, path, err);
    lua_pushlstring(L, hex, 64);
    return 1;
}

/// Random bytes from OpenSSL's CSPRNG.
// @function random
// @tparam int n from 0 to 1 MiB
// @treturn string n bytes
static int l_random(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    unsigned char *buf;
    luaL_argcheck(L, n >= 0 && n <= RANDOM_MAX, 1, "must be between 0 and 1048576");
    if (n == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    /* Scratch space owned by Lua's GC: nothing leaks if a later push raises. */
    buf = lua_newuserdata(L, (size_t)n);
    if (RAND_bytes(buf, (int)n) != 1)
        return luaL_error(L, "random: OpenSSL RAND_bytes failed");
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return 1;
}

/// Base64 with the standard alphabet and '=' padding (RFC 4648 section 4).
// @function base64_encode
// @tparam string s
// @treturn string
static int l_base64_encode(lua_State *L)
{
    size_t n, i;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    unsigned char out[B64_IN_CHUNK / 3 * 4 + 1];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    /* Whole 3-byte groups per call, so padding can only appear in the last chunk. */
    for (i = 0; i < n; i += B64_IN_CHUNK) {
        size_t k = n - i < B64_IN_CHUNK ? n - i : B64_IN_CHUNK;
        int w = EVP_EncodeBlock(out, s + i, (int)k);
        if (w < 0)
            return luaL_error(L, "base64_encode: OpenSSL EVP_EncodeBlock failed");
        luaL_addlstring(&b, (const char *)out, (size_t)w);
    }
    luaL_pushresult(&b);
    return 1;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int push_invalid(lua_State *L, const char *message, size_t at)
{
    lua_pushnil(L);
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "invalid");
    lua_setfield(L, -2, "kind");
    lua_pushliteral(L, "BAD_BASE64");
    lua_setfield(L, -2, "code");
    lua_pushfstring(L, "base64_decode: %s at offset %d", message, (int)at);
    lua_setfield(L, -2, "message");
    return 2;
}

/* Strict RFC 4648 section 4: the standard alphabet only, length a multiple of 4, one or two
 * '=' only at the very end, zero pad bits (one canonical text per byte string), no
 * whitespace or line breaks. EVP_DecodeBlock alone is laxer (it skips surrounding
 * whitespace and ignores pad bits), so the text is checked first. */
static size_t b64_check(const unsigned char *s, size_t n, const char **why)
{
    size_t i, pad = 0;
    if (n % 4 != 0) {
        *why = "length is not a multiple of 4";
        return n;
    }
    if (n > 0 && s[n - 1] == '=')
        pad = s[n - 2] == '=' ? 2 : 1;
    for (i = 0; i < n - pad; i++) {
        if (b64_value(s[i]) < 0) {
            *why = s[i] == '=' ? "misplaced padding" : "invalid character";
            return i;
        }
    }
    /* The bits the padding stands for must be zero. */
    if ((pad == 2 && (b64_value(s[n - 3]) & 0x0f) != 0) || (pad == 1 && (b64_value(s[n - 2]) & 0x03) != 0)) {
        *why = "non-zero padding bits";
        return n - pad - 1;
    }
    *why = NULL;
    return pad;
}

/// Strict RFC 4648 base64 decoding: padding required, no whitespace.
// @function base64_decode
// @tparam string s
// @treturn string the bytes
// @return or `nil, { kind = "invalid", code = "BAD_BASE64", message = }`
static int l_base64_decode(lua_State *L)
{
    size_t n, i, pad;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    unsigned char out[B64_OUT_CHUNK / 4 * 3];
    const char *why;
    luaL_Buffer b;

    pad = b64_check(s, n, &why);
    if (why != NULL)
        return push_invalid(L, why, pad);
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i += B64_OUT_CHUNK) {
        size_t k = n - i < B64_OUT_CHUNK ? n - i : B64_OUT_CHUNK;
        int w = EVP_DecodeBlock(out, s + i, (int)k);
        if (w < 0 || (size_t)w != k / 4 * 3)
            return luaL_error(L, "base64_decode: OpenSSL EVP_DecodeBlock failed");
        /* DecodeBlock counts the bytes the '=' stand for as zeros: drop them (last chunk only). */
        if (i + k == n)
            w -= (int)pad;
        luaL_addlstring(&b, (const char *)out, (size_t)w);
    }
    luaL_pushresult(&b);
    return 1;
}

void lh_open_crypto(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sha256", l_sha256},
        {"hmac_sha256", l_hmac_sha256},
        {"hex", l_hex},
        {"sha256_file", l_sha256_file},
        {"random", l_random},
        {"base64_encode", l_base64_encode},
        {"base64_decode", l_base64_decode},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}
