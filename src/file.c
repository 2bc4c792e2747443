/* file.c: the local file operations whose safety matters, done with the system calls
 * themselves: outputs opened without following a planted symlink, renames that refuse to
 * move anything but the regular file we wrote, directories created with the OS reason on
 * failure, small files written atomically, and advisory locks for files shared between
 * processes (token caches). Lua's io library can do none of these. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "loghaul.h"

#define LOCK_MT "loghaul.lock"
#define DEFAULT_MODE 0600
#define READ_MAX_DEFAULT (16L * 1024 * 1024)

/* ---- C helpers, shared with session.c and the JSON Lines writer ------------- */

int lh_open_output(const char *path, off_t keep, int mode)
{
    struct stat st;
    int fd, e = 0;
    do
        fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    /* O_NONBLOCK keeps a planted FIFO from hanging the open; a regular file ignores it,
     * but F_SETFL clears it anyway so writes stay plain. Only a file longer than keep is
     * cut: on ext4 any truncate, even of an empty new file, marks it to have its delayed
     * blocks allocated at close, and close() then waited 0.4 s on a GiB. */
    if (fstat(fd, &st) != 0)
        e = errno;
    else if (!S_ISREG(st.st_mode))
        e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    else if (st.st_size < keep)
        e = ERANGE;
    else if (fcntl(fd, F_SETFL, keep > 0 ? O_APPEND : 0) != 0 || (st.st_size > keep && ftruncate(fd, keep) != 0))
        e = errno;
    if (e != 0) {
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int lh_check_regular(int fd, const char *path)
{
    struct stat a, b;
    if (fstat(fd, &a) != 0)
        return errno;
    if (lstat(path, &b) != 0)
        return errno;
    if (!S_ISREG(b.st_mode))
        return S_ISLNK(b.st_mode) ? ELOOP : EINVAL;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? 0 : ESTALE;
}

/* nil, { kind = "io", code = "ENOENT", errno = "ENOENT", path =, message = "what path: reason" } */
int lh_push_io_error(lua_State *L, const char *what, const char *path, int e)
{
    char name[32], text[256];
    const char *n = lh_errno_name(e, name, sizeof name);
    lua_pushnil(L);
    lua_createtable(L, 0, 5);
    lua_pushliteral(L, "io");
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, n);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, n);
    lua_setfield(L, -2, "errno");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pushfstring(L, "%s%s%s: %s", what ? what : "", what ? " " : "", path, lh_errno_text(e, text, sizeof text));
    lua_setfield(L, -2, "message");
    return 2;
}

/* A path argument: a string without NUL bytes (a NUL would silently name another file). */
static const char *check_path(lua_State *L, int idx)
{
    size_t n;
    const char *p = luaL_checklstring(L, idx, &n);
    if (n == 0)
        luaL_argerror(L, idx, "empty path");
    if (strlen(p) != n)
        luaL_argerror(L, idx, "path contains a NUL byte");
    return p;
}

int lh_parse_mode(lua_State *L, int idx, const char *what)
{
    lua_Integer m = -1;
    if (lua_type(L, idx) == LUA_TSTRING) { /* octal digits only (strtol took a space or a sign) */
        size_t n, i;
        const char *s = lua_tolstring(L, idx, &n);
        m = n > 0 ? 0 : -1;
        for (i = 0; i < n && m >= 0 && m <= 07777; i++)
            m = s[i] >= '0' && s[i] <= '7' ? m * 8 + (s[i] - '0') : -1;
    } else if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Number v = lua_tonumber(L, idx);
        if (v >= 0 && v <= 07777 && v == (lua_Number)(lua_Integer)v)
            m = (lua_Integer)v;
    }
    if (m < 0 || m > 07777)
        luaL_error(L, "%s (an octal string like \"0644\" or an integer expected)", what);
    return (int)m;
}

/* Optional mode argument of the file functions: absent -> 0600. */
static int opt_mode(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? DEFAULT_MODE : lh_parse_mode(L, idx, "bad mode argument");
}

/* ---- Lua functions ---------------------------------------------------------- */

/// Facts about a path, without following a symlink at its end (lstat).
// @function stat
// @tparam string path
// @treturn table `{ type = "file"|"dir"|"link"|"other", size, mode (permission bits), uid, dev, ino, mtime }`,
// or nil, err (`kind = "io"`, `code`/`errno` such as "ENOENT", `message`)
static int l_stat(lua_State *L)
{
    const char *path = check_path(L, 1);
    struct stat st;
    const char *type;
    if (lstat(path, &st) != 0)
        return lh_push_io_error(L, "cannot stat", path, errno);
    type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "link" : "other";
    lua_createtable(L, 0, 7);
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)st.st_uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, (lua_Integer)st.st_dev);
    lua_setfield(L, -2, "dev");
    lua_pushinteger(L, (lua_Integer)st.st_ino);
    lua_setfield(L, -2, "ino");
    lua_pushinteger(L, (lua_Integer)st.st_mtime);
    lua_setfield(L, -2, "mtime");
    return 1;
}

/// Creates a directory and its missing parents.
// @function mkdir_p
// @tparam string path
// @tparam[opt] int|string mode for the directories it creates (default 0755; the umask applies)
// @return true, or nil, err whose message gives the OS reason ("cannot create directory
// /etc/passwd/logs: Not a directory")
static int l_mkdir_p(lua_State *L)
{
    size_t n;
    const char *path = check_path(L, 1);
    int mode = lua_isnoneornil(L, 2) ? 0755 : opt_mode(L, 2);
    char *p;
    size_t i;
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            lua_pushboolean(L, 1);
            return 1;
        }
        return lh_push_io_error(L, "cannot create directory", path, EEXIST);
    }
    n = strlen(path);
    p = lua_newuserdata(L, n + 1); /* scratch owned by the GC: nothing leaks on a raise */
    memcpy(p, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        if (p[i - 1] == '/')
            continue; /* "a//b" */
        p[i] = '\0';
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
            int e = errno;
            return lh_push_io_error(L, "cannot create directory", path, e);
        }
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            return lh_push_io_error(L, "cannot create directory", path, ENOTDIR);
        p[i] = i < n ? '/' : '\0';
    }
    lua_pushboolean(L, 1);
    return 1;
}

/// Renames a file we wrote over its final name, refusing to move anything else: `from` must be
// a regular file (a symlink planted at a `.part` name is refused, never moved), and `to` must not
// be a directory or a symlink.
// @function rename
// @tparam string from
// @tparam string to
// @return true, or nil, err
static int l_rename(lua_State *L)
{
    const char *from = check_path(L, 1), *to = check_path(L, 2);
    struct stat st;
    if (lstat(from, &st) != 0)
        return lh_push_io_error(L, "cannot rename", from, errno);
    if (!S_ISREG(st.st_mode))
        return lh_push_io_error(L, "refusing to rename (not a regular file)", from, S_ISLNK(st.st_mode) ? ELOOP : EINVAL);
    if (lstat(to, &st) == 0 && !S_ISREG(st.st_mode))
        return lh_push_io_error(L, "refusing to replace (not a regular file)", to, S_ISDIR(st.st_mode) ? EISDIR : ELOOP);
    if (rename(from, to) != 0)
        return lh_push_io_error(L, "cannot rename to", to, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/// Removes a file (never a directory); a missing file is not an error.
// @function remove
// @tparam string path
// @return true, or nil, err
static int l_remove(lua_State *L)
{
    const char *path = check_path(L, 1);
    if (unlink(path) != 0 && errno != ENOENT)
        return lh_push_io_error(L, "cannot remove", path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : ENOSPC;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void dir_of(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(out, size, ".");
    else if (slash == path)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)(slash - path), path);
}

/// Writes a small file atomically: a temporary file beside it (created exclusively, never through a
// symlink), fsync, rename over `path`, fsync of the directory. A crash leaves the old file or the new
// one, never a mix.
// @function write_file
// @tparam string path
// @tparam string data
// @tparam[opt] int|string mode of the new file (default 0600)
// @return true, or nil, err
static int l_write_file(lua_State *L)
{
    const char *path = check_path(L, 1);
    size_t n, plen = strlen(path);
    const char *data = luaL_checklstring(L, 2, &n);
    int mode = opt_mode(L, 3), fd = -1, e = 0, dfd;
    char *tmp, dir[PATH_MAX];
    unsigned char rnd[6];
    char hex[13];
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return lh_push_io_error(L, "refusing to replace (not a regular file)", path, S_ISDIR(st.st_mode) ? EISDIR : ELOOP);
    tmp = lua_newuserdata(L, plen + 32);
    if (RAND_bytes(rnd, (int)sizeof rnd) != 1)
        return luaL_error(L, "write_file: no random bytes");
    lh_hex(rnd, sizeof rnd, hex);
    snprintf(tmp, plen + 32, "%s.%s.tmp", path, hex);
    do
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return lh_push_io_error(L, "cannot create", tmp, errno);
    if ((e = write_all(fd, data, n)) == 0 && fchmod(fd, (mode_t)mode) != 0)
        e = errno;
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e == 0 && rename(tmp, path) != 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        return lh_push_io_error(L, "cannot write", path, e);
    }
    dir_of(path, dir, sizeof dir);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename itself must survive a crash too */
        fsync(dfd);
        close(dfd);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/// Reads a whole (small) file, never through a symlink at its last component.
// @function read_file
// @tparam string path
// @tparam[opt] int max_bytes refuse a larger file (default 16 MiB)
// @return the contents, or nil, err
static int l_read_file(lua_State *L)
{
    const char *path = check_path(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, READ_MAX_DEFAULT);
    struct stat st;
    luaL_Buffer b;
    int fd;
    luaL_argcheck(L, max >= 0, 2, "must be >= 0");
    do
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return lh_push_io_error(L, "cannot read", path, errno);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lh_push_io_error(L, "cannot read", path, S_ISDIR(st.st_mode) ? EISDIR : EINVAL);
    }
    if (st.st_size > max) {
        close(fd);
        return lh_push_io_error(L, "cannot read", path, EFBIG);
    }
    luaL_buffinit(L, &b);
    for (;;) {
        char *p = luaL_prepbuffer(&b);
        ssize_t r = read(fd, p, LUAL_BUFFERSIZE);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return lh_push_io_error(L, "cannot read", path, e);
        }
        if (r == 0)
            break;
        luaL_addsize(&b, (size_t)r);
    }
    close(fd);
    luaL_pushresult(&b);
    return 1;
}

/* ---- locks ------------------------------------------------------------------ */

typedef struct {
    int fd;
} lock_t;

/// Takes an exclusive advisory lock (flock) on a lock file, created 0600 when missing and never
// opened through a symlink. Blocks until the lock is free, unless `try` is true: then a lock
// held elsewhere returns false at once (a scheduler task waits with a timer instead, so that
// it never blocks the thread that runs the task holding the lock).
// @function lock
// @tparam string path
// @tparam[opt] boolean try
// @return a lock, released by `:unlock()`, garbage collection or a Lua 5.4 `<close>` variable;
// false when `try` and the lock is held; or nil, err
static int l_lock(lua_State *L)
{
    const char *path = check_path(L, 1);
    int op = lua_toboolean(L, 2) ? LOCK_EX | LOCK_NB : LOCK_EX;
    lock_t *k = lua_newuserdata(L, sizeof *k);
    struct stat st;
    k->fd = -1;
    luaL_setmetatable(L, LOCK_MT);
    do
        k->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    while (k->fd < 0 && errno == EINTR);
    if (k->fd < 0)
        return lh_push_io_error(L, "cannot open lock file", path, errno);
    if (fstat(k->fd, &st) != 0 || !S_ISREG(st.st_mode))
        return lh_push_io_error(L, "cannot open lock file", path, EINVAL);
    while (flock(k->fd, op) != 0) {
        if (errno == EWOULDBLOCK && (op & LOCK_NB)) {
            close(k->fd);
            k->fd = -1;
            lua_pushboolean(L, 0);
            return 1;
        }
        if (errno != EINTR)
            return lh_push_io_error(L, "cannot lock", path, errno);
    }
    return 1;
}

static int l_unlock(lua_State *L)
{
    lock_t *k = luaL_checkudata(L, 1, LOCK_MT);
    if (k->fd >= 0) {
        close(k->fd); /* closing the only descriptor releases the flock */
        k->fd = -1;
    }
    return 0;
}

/// The real user id of this process (for checking who owns a file).
// @function getuid
// @treturn int
static int l_getuid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getuid());
    return 1;
}

void lh_open_file(lua_State *L)
{
    static const luaL_Reg fns[] = {{"stat", l_stat},       {"mkdir_p", l_mkdir_p},       {"rename", l_rename},
                                   {"remove", l_remove},   {"write_file", l_write_file}, {"read_file", l_read_file},
                                   {"lock", l_lock},       {"getuid", l_getuid},         {NULL, NULL}};
    static const luaL_Reg lock_methods[] = {{"unlock", l_unlock}, {NULL, NULL}};
    if (luaL_newmetatable(L, LOCK_MT)) {
        lua_pushcfunction(L, l_unlock);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_unlock);
        lua_setfield(L, -2, "__close");
        luaL_newlib(L, lock_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, fns, 0);
}
