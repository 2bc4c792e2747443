/* loghaul.h: what the core's C files share. Each file registers its own functions. */
#ifndef LOGHAUL_H
#define LOGHAUL_H

#include <stddef.h>
#include <sys/types.h>
#include "compat.h"

#define LOGHAUL_VERSION "0.1.0"

/* Each adds its functions to the module table at the top of the stack. */
void lh_open_session(lua_State *L); /* session.c: core.session */
void lh_open_multi(lua_State *L);   /* multi.c: core.multi, many transfers at once */
void lh_open_crypto(lua_State *L);  /* crypto.c: sha256, hmac_sha256, hex, base64, random, sha256_file */
void lh_open_sign(lua_State *L);    /* sign.c: the three vendor request signers */
void lh_open_clock(lua_State *L);   /* clock.c: time, monotonic, sleep */
void lh_open_file(lua_State *L);    /* file.c: stat, mkdir_p, rename, remove, write_file, read_file, lock, getuid */
void lh_open_json(lua_State *L);    /* json.c: json_at, json_array, json_valid, json_normalize; jsonl.c: jsonl_writer */
void lh_open_jsonl(lua_State *L);

/* crypto.c, for the signers: lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void lh_hex(const unsigned char *in, size_t n, char *out);
/* crypto.c: SHA-256 and HMAC-SHA256 into out[32]; lower-case hex SHA-256 into out[65] (NUL-terminated).
 * Each returns 0, or -1 when OpenSSL fails (the caller raises or returns the error). */
int lh_sha256(const void *in, size_t n, unsigned char out[32]);
int lh_hmac_sha256(const void *key, size_t klen, const void *in, size_t n, unsigned char out[32]);
int lh_sha256_hex(const void *in, size_t n, char out[65]);

/* crypto.c: incremental SHA-256, for sha256_file and for a download hashed as it is written.
 * begin returns NULL when out of memory; update and end return 0, or -1 when OpenSSL fails. */
typedef struct evp_md_ctx_st lh_sha256_ctx;
lh_sha256_ctx *lh_sha256_begin(void);
int lh_sha256_update(lh_sha256_ctx *ctx, const void *p, size_t n);
int lh_sha256_end(lh_sha256_ctx *ctx, char hex[65]);
void lh_sha256_free(lh_sha256_ctx *ctx);

/* crypto.c: errno as its symbolic name ("ENOSPC") and as text, both thread-safe;
 * tmp/buf are the caller's scratch space. */
const char *lh_errno_name(int e, char *tmp, size_t size);
const char *lh_errno_text(int e, char *buf, size_t size);

/* file.c: opens path for writing without following a symlink at its last component and refuses
 * anything but a regular file (a planted FIFO, device or directory). Its first keep bytes stay
 * (a resume: what lies past them is cut, writes append), keep 0: it starts empty. A new file
 * gets mode (before the umask). Returns the descriptor, or -1 with errno set (ELOOP: a symlink;
 * ERANGE: fewer than keep bytes). */
int lh_open_output(const char *path, off_t keep, int mode);
/* file.c: 0 when path (lstat) is the very regular file fd is open on, else an errno value
 * (ELOOP: a symlink now; ESTALE: another file). Checked before renaming a .part. */
int lh_check_regular(int fd, const char *path);
/* file.c: pushes nil and { kind = "io", code = errno name, errno, path, message = "what path: reason" }. */
int lh_push_io_error(lua_State *L, const char *what, const char *path, int e);
/* file.c: a file mode at idx, an integer or an octal string ("0644"); raises "<what> (...)". */
int lh_parse_mode(lua_State *L, int idx, const char *what);

#endif
