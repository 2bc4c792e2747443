/* jsonl.c: core.jsonl_writer, JSON Lines written from C. A page of JSON is validated whole,
 * then each element of the array at a path goes to `<output>.part` as its raw bytes and a
 * newline (every digit kept, no Lua string per record); commit makes the file durable and
 * renames it over the final name, abort removes it. Memory stays flat: elements are written
 * straight from the page's text with writev. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "json.h"
#include "loghaul.h"

#define WRITER_MT "loghaul.jsonl_writer"
#define BATCH 256 /* elements per writev (two iovecs each) */

typedef struct {
    int fd;
    int stdout_mode; /* output "-": writes to fd 1, nothing to rename or remove */
    int closed;      /* committed, aborted or closed: the fd is gone */
    long long bytes, records;
    char *path, *part;
} writer_t;

static writer_t *check_writer(lua_State *L)
{
    return luaL_checkudata(L, 1, WRITER_MT);
}

/* nil, an io error table: what the writer did, on which file */
static int io_error(lua_State *L, const char *what, const char *path, int e)
{
    return lh_push_io_error(L, what, path ? path : "standard output", e);
}

static void writer_close_fd(writer_t *w)
{
    if (w->fd >= 0 && !w->stdout_mode)
        close(w->fd);
    w->fd = -1;
    w->closed = 1;
}

/// Opens a JSON Lines writer on `<path>.part` (created 0600, never through a symlink), or
// on standard output when `path` is `"-"`.
// @function jsonl_writer
// @tparam string path the final name
// @tparam[opt] integer resume_at continue a `.part` a previous run left: it is truncated to
//   this many bytes (refused with code `BAD_RESUME` when it is shorter)
// @return the writer, or nil, err (`kind = "io"`)
static int l_jsonl_writer(lua_State *L)
{
    size_t plen;
    const char *path = luaL_checklstring(L, 1, &plen);
    lua_Integer resume = -1;
    writer_t *w;
    luaL_argcheck(L, plen > 0 && strlen(path) == plen, 1, "a file name without NUL bytes expected");
    if (!lua_isnoneornil(L, 2)) {
        resume = luaL_checkinteger(L, 2);
        luaL_argcheck(L, resume >= 0, 2, "resume_at must be >= 0");
    }
    w = lua_newuserdata(L, sizeof *w);
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->closed = 1;
    luaL_setmetatable(L, WRITER_MT);
    if (strcmp(path, "-") == 0) {
        w->stdout_mode = 1;
        w->fd = STDOUT_FILENO;
        w->closed = 0;
        return 1;
    }
    w->path = strdup(path);
    w->part = malloc(plen + 6);
    if (w->path == NULL || w->part == NULL)
        return luaL_error(L, "out of memory");
    memcpy(w->part, path, plen);
    memcpy(w->part + plen, ".part", 6);
    w->fd = lh_open_output(w->part, resume > 0 ? (off_t)resume : 0, 0600);
    if (w->fd < 0 && errno == ERANGE) {
        io_error(L, "cannot resume (shorter than the saved length)", w->part, ERANGE);
        lua_pushliteral(L, "BAD_RESUME"); /* as session:request's resume_from past the end */
        lua_setfield(L, -2, "code");
        return 2;
    }
    if (w->fd < 0)
        return io_error(L, "cannot open", w->part, errno);
    w->closed = 0;
    if (resume > 0)
        w->bytes = resume;
    return 1;
}

typedef struct {
    int fd, err;
    const char *text;
    struct iovec iov[2 * BATCH];
    int niov;
    long long bytes, records;
} batch_t;

static void flush_batch(batch_t *b)
{
    struct iovec *v = b->iov;
    int n = b->niov;
    b->niov = 0;
    while (n > 0 && b->err == 0) {
        ssize_t w = writev(b->fd, v, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            b->err = errno;
            return;
        }
        b->bytes += w;
        while (n > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
}

static void add_element(void *ud, size_t a, size_t b, int keep)
{
    batch_t *bt = ud;
    if (!keep || bt->err)
        return;
    bt->iov[bt->niov].iov_base = (void *)(bt->text + a);
    bt->iov[bt->niov].iov_len = b - a;
    bt->iov[bt->niov + 1].iov_base = (void *)"\n";
    bt->iov[bt->niov + 1].iov_len = 1;
    bt->niov += 2;
    bt->records++;
    if (bt->niov == 2 * BATCH)
        flush_batch(bt);
}

/// Validates a whole page, then writes each element of the array at `path` as one line
// (its raw bytes and "\n").
// @function writer:write_page
// @tparam string text the page (JSON)
// @tparam {string,...} path of the array, e.g. `{ "response", "dataSet" }`
// @tparam[opt] table filter as for `json_array` (boundary records a cursor loop already wrote)
// @return records and bytes written for this page, and the array's element count before
//   filtering (0, 0, 0 when the path is absent or null), or nil and a message (malformed page, not an array) or an `io` error table
static int l_write_page(lua_State *L)
{
    writer_t *w = check_writer(L);
    size_t n, a, b, total;
    const char *text = luaL_checklstring(L, 2, &n);
    lh_json_filter_t f;
    batch_t *bt;
    int rc;
    lua_settop(L, 4);
    if (w->closed)
        return luaL_error(L, "write_page: the writer is closed");
    rc = lh_json_locate_array(L, text, n, 3, &a, &b);
    if (rc < 0)
        return 2;
    if (rc == 0) {
        lua_pushinteger(L, 0);
        lua_pushinteger(L, 0);
        lua_pushinteger(L, 0);
        return 3;
    }
    lh_json_read_filter(L, 4, &f);
    bt = lua_newuserdata(L, sizeof *bt); /* 8 KiB of iovecs: collected with the call */
    memset(bt, 0, sizeof *bt);
    bt->fd = w->fd;
    bt->text = text + a;
    total = lh_json_each_element(L, text, a, b, &f, add_element, bt);
    flush_batch(bt);
    w->bytes += bt->bytes;
    if (bt->err)
        return io_error(L, "cannot write", w->stdout_mode ? NULL : w->part, bt->err);
    w->records += bt->records;
    lua_pushinteger(L, (lua_Integer)bt->records);
    lua_pushinteger(L, (lua_Integer)bt->bytes);
    lua_pushinteger(L, (lua_Integer)total);
    return 3;
}

/// Makes what was written so far durable (fdatasync), without closing: a resumable run
// calls it before saving its state.
// @function writer:sync
// @return true, or nil, err
static int l_sync(lua_State *L)
{
    writer_t *w = check_writer(L);
    if (w->closed)
        return luaL_error(L, "sync: the writer is closed");
    if (!w->stdout_mode && fdatasync(w->fd) != 0)
        return io_error(L, "cannot sync", w->part, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/// Bytes in the output so far (the `.part`'s length), records written by this writer.
// @function writer:size
// @treturn integer bytes
// @treturn integer records
static int l_size(lua_State *L)
{
    writer_t *w = check_writer(L);
    lua_pushinteger(L, (lua_Integer)w->bytes);
    lua_pushinteger(L, (lua_Integer)w->records);
    return 2;
}

/// Finishes: fsync, close, and the `.part` renamed over the final name (refused when the
// `.part` is no longer the file written, or the final name is a directory or a symlink).
// Standard output is only flushed.
// @function writer:commit
// @return the final path, or nil, err
static int l_commit(lua_State *L)
{
    writer_t *w = check_writer(L);
    struct stat fst;
    int e;
    if (w->closed)
        return luaL_error(L, "commit: the writer is closed");
    if (w->stdout_mode) {
        w->closed = 1;
        w->fd = -1;
        lua_pushliteral(L, "-");
        return 1;
    }
    if (fsync(w->fd) != 0)
        return io_error(L, "cannot sync", w->part, errno);
    e = lh_check_regular(w->fd, w->part);
    if (e != 0) { /* replaced or moved since it was opened: rename nothing */
        writer_close_fd(w);
        return io_error(L, "refusing to rename (not the file written)", w->part, e);
    }
    if (lstat(w->path, &fst) == 0 && !S_ISREG(fst.st_mode)) {
        e = S_ISDIR(fst.st_mode) ? EISDIR : ELOOP;
        writer_close_fd(w);
        return io_error(L, "refusing to replace", w->path, e);
    }
    if (close(w->fd) != 0) {
        e = errno;
        w->fd = -1;
        w->closed = 1;
        return io_error(L, "cannot close", w->part, e);
    }
    w->fd = -1;
    w->closed = 1;
    if (rename(w->part, w->path) != 0)
        return io_error(L, "cannot rename to", w->path, errno);
    lua_pushstring(L, w->path);
    return 1;
}

/// Gives up: closes and removes the `.part` (also done by the garbage collector when
// neither commit nor close ran).
// @function writer:abort
static int l_abort(lua_State *L)
{
    writer_t *w = check_writer(L);
    if (!w->closed) {
        writer_close_fd(w);
        if (!w->stdout_mode)
            unlink(w->part);
    }
    return 0;
}

/// Closes and keeps the `.part` (a resumable run that stops on an error, to go on later).
// @function writer:close
static int l_close(lua_State *L)
{
    writer_t *w = check_writer(L);
    if (!w->closed)
        writer_close_fd(w);
    return 0;
}

static int l_gc(lua_State *L)
{
    writer_t *w = check_writer(L);
    if (!w->closed) {
        writer_close_fd(w);
        if (!w->stdout_mode)
            unlink(w->part);
    }
    free(w->path);
    free(w->part);
    w->path = w->part = NULL;
    return 0;
}

void lh_open_jsonl(lua_State *L)
{
    static const luaL_Reg methods[] = {{"write_page", l_write_page}, {"sync", l_sync},   {"size", l_size},
                                       {"commit", l_commit},         {"abort", l_abort}, {"close", l_close},
                                       {NULL, NULL}};
    if (luaL_newmetatable(L, WRITER_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_jsonl_writer);
    lua_setfield(L, -2, "jsonl_writer");
}
