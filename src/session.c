/* session.c: core.session, one curl easy handle reused across requests so that
 * connections (and TLS sessions) stay alive, and session:request, one transfer.
 *
 * The rule that shapes this file: no Lua error may unwind through libcurl's frames.
 * Callbacks only touch C buffers, except the progress callback, which calls Lua
 * under lua_pcall and parks any error in a stack slot reserved beforehand. Errors
 * are turned into Lua values only after curl_easy_perform has returned. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "curlerr.h"
#include "headers.h"
#include "loghaul.h"

#define SESSION_MT "loghaul.session"
#define XFER_MT "loghaul.transfer"
#define DEFAULT_MAX_BODY (64L * 1024 * 1024)
#define MAX_HEADER_BYTES (1024 * 1024) /* a header flood is an error, not a memory hog */
#define PROGRESS_INTERVAL 0.1          /* seconds between two calls of a Lua progress function */
#define RECV_BUFFER (256L * 1024)
#define SEND_BUFFER (512L * 1024)

typedef struct {
    CURL *easy;
    int busy;
    /* options, applied again after each curl_easy_reset */
    long timeout_ms, connect_timeout_ms, low_speed_limit, low_speed_time, max_redirects;
    curl_off_t max_body;
    int insecure, follow_redirects;
    char *ca_file, *proxy, *user_agent;
    char errbuf[CURL_ERROR_SIZE]; /* lives as long as the handle that writes into it */
} session_t;

typedef struct {
    char *data;
    size_t len, cap, max;
} buf_t;

/* What failed inside a callback, reported once curl_easy_perform returns. */
enum { FAIL_NONE, FAIL_CALLBACK_ERROR, FAIL_CALLBACK_FALSE, FAIL_OUTPUT, FAIL_BODY_TOO_LARGE,
       FAIL_HEADERS_TOO_LARGE, FAIL_NO_MEMORY, FAIL_RANGE_MISMATCH };

/* One transfer. A userdata with __gc, so that whatever it holds is released even
 * when building the request raises halfway. */
typedef struct {
    lua_State *L;
    CURL *easy;
    buf_t body, head;
    struct curl_slist *headers;
    curl_mime *mime;
    FILE *body_file;
    /* streaming to a file, opened only when a 2xx answer starts */
    const char *output;
    int fd;
    curl_off_t resume_from, file_bytes;
    int sink_chosen, to_file, restarted;
    /* SHA-256 of the whole output as it is written (request sha256 = true), so the caller
     * need not read the file back; dropped when the output only gets the tail (a 206) */
    lh_sha256_ctx *md;
    /* progress */
    int progress_idx, error_slot;
    double last_progress;
    /* failures */
    int fail, fail_errno;
} xfer_t;

/* ---- small helpers ---------------------------------------------------------- */

/* strerror is not thread-safe; this returns the text in a struct the caller keeps. */
typedef struct {
    char s[256];
} errtext_t;

static errtext_t errno_text(int e)
{
    errtext_t t;
    const char *m = lh_errno_text(e, t.s, sizeof t.s);
    if (m != t.s)
        snprintf(t.s, sizeof t.s, "%s", m);
    return t;
}

/* Sets err.errno = "ENOSPC" (or the like) on the error table at the top. */
static void push_errno(lua_State *L, int e)
{
    char tmp[32];
    lua_pushstring(L, lh_errno_name(e, tmp, sizeof tmp));
    lua_setfield(L, -2, "errno");
}

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Appends n bytes; 0 when the cap is passed or memory runs out (fail says which). */
static int buf_append(buf_t *b, const char *p, size_t n, int *fail, int over_cap)
{
    if (n > b->max - b->len) {
        *fail = over_cap;
        return 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        char *d;
        while (cap < b->len + n)
            cap = cap > b->max / 2 ? b->max : cap * 2;
        d = realloc(b->data, cap);
        if (d == NULL) {
            *fail = FAIL_NO_MEMORY;
            return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 1;
}

static char *dup_opt(lua_State *L, int idx, const char *name)
{
    const char *s = lh_optfield(L, idx, name, NULL);
    char *d;
    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        luaL_error(L, "out of memory");
    return d;
}

static double opt_number(lua_State *L, int idx, const char *name, double dflt, double min)
{
    double v = dflt;
    int t = lh_getfield(L, idx, name);
    if (t == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "bad option '%s' (number expected, got %s)", name, lua_typename(L, t));
    lua_pop(L, 1);
    if (!(v >= min) || v > 9.0e15)
        luaL_error(L, "bad option '%s' (%f is out of range)", name, v);
    return v;
}

static int opt_boolean(lua_State *L, int idx, const char *name, int dflt)
{
    int v = dflt;
    int t = lh_getfield(L, idx, name);
    if (t == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "bad option '%s' (boolean expected, got %s)", name, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}

/* Raises on a key that is not in allowed: a typo like "timout" should not pass silently. */
static void check_keys(lua_State *L, int idx, const char *what, const char *const allowed[])
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int i, ok = 0;
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            for (i = 0; allowed[i] != NULL && !ok; i++)
                ok = strcmp(k, allowed[i]) == 0;
            if (!ok)
                luaL_error(L, "%s: unknown option '%s'", what, k);
        } else {
            luaL_error(L, "%s: option names must be strings", what);
        }
        lua_pop(L, 1);
    }
}

static session_t *check_session(lua_State *L)
{
    session_t *s = luaL_checkudata(L, 1, SESSION_MT);
    if (s->easy == NULL)
        luaL_error(L, "attempt to use a closed session");
    return s;
}

/* ---- core.session ----------------------------------------------------------- */

static const char *const session_keys[] = {"timeout", "connect_timeout", "low_speed_limit", "low_speed_time",
                                           "ca_file", "insecure", "proxy", "user_agent", "max_body",
                                           "follow_redirects", "max_redirects", NULL};

/// Creates a session: one connection cache, reused by every request made on it.
// @function session
// @tparam[opt] table opts `timeout` (seconds for a whole request, 0 = none), `connect_timeout`
// (seconds, default 30), `low_speed_limit` (bytes/s) and `low_speed_time` (s): abort a transfer slower
// than that for that long (default 1 byte/s for 60 s), `ca_file`, `insecure` (skip TLS verification),
// `proxy`, `user_agent`, `max_body` (cap on in-memory bodies, default 64 MiB), `follow_redirects`
// (default true), `max_redirects` (default 5)
// @return a session, closed by `:close()`, by garbage collection, or by a Lua 5.4 `<close>` variable
static int l_session(lua_State *L)
{
    session_t *s;
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    check_keys(L, 1, "session", session_keys);
    s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SESSION_MT); /* from here on __gc frees whatever was set */
    s->timeout_ms = (long)(opt_number(L, 1, "timeout", 0, 0) * 1000);
    s->connect_timeout_ms = (long)(opt_number(L, 1, "connect_timeout", 30, 0) * 1000);
    s->low_speed_limit = (long)opt_number(L, 1, "low_speed_limit", 1, 0);
    s->low_speed_time = (long)opt_number(L, 1, "low_speed_time", 60, 0);
    s->max_body = (curl_off_t)opt_number(L, 1, "max_body", (double)DEFAULT_MAX_BODY, 0);
    s->max_redirects = (long)opt_number(L, 1, "max_redirects", 5, 0);
    s->insecure = opt_boolean(L, 1, "insecure", 0);
    s->follow_redirects = opt_boolean(L, 1, "follow_redirects", 1);
    s->ca_file = dup_opt(L, 1, "ca_file");
    s->proxy = dup_opt(L, 1, "proxy");
    s->user_agent = dup_opt(L, 1, "user_agent");
    s->easy = curl_easy_init();
    if (s->easy == NULL)
        return luaL_error(L, "session: curl_easy_init failed");
    return 1;
}

static void session_free(session_t *s)
{
    if (s->easy != NULL)
        curl_easy_cleanup(s->easy);
    s->easy = NULL;
    free(s->ca_file);
    free(s->proxy);
    free(s->user_agent);
    s->ca_file = s->proxy = s->user_agent = NULL;
}

/// Closes the session and its connections; later requests on it raise an error.
// @function session:close
static int l_close(lua_State *L)
{
    session_t *s = luaL_checkudata(L, 1, SESSION_MT);
    if (s->busy)
        return luaL_error(L, "attempt to close a session during its own request");
    session_free(s);
    return 0;
}

static int l_gc(lua_State *L)
{
    session_free(luaL_checkudata(L, 1, SESSION_MT));
    return 0;
}

static int l_tostring(lua_State *L)
{
    session_t *s = luaL_checkudata(L, 1, SESSION_MT);
    lua_pushfstring(L, "loghaul.session (%s%p)", s->easy ? "" : "closed, ", (void *)s);
    return 1;
}

/* ---- libcurl callbacks: C only, except progress, which is under lua_pcall --- */

static void drop_hash(xfer_t *x)
{
    lh_sha256_free(x->md);
    x->md = NULL;
}

/* Finds "content-range: bytes START-..." and checks START. */
typedef struct {
    curl_off_t start;
    int found;
} range_check_t;

static void on_range_header(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
    range_check_t *rc = ud;
    char tmp[64];
    if (nlen != 13 || memcmp(name, "content-range", 13) != 0 || vlen >= sizeof tmp)
        return;
    memcpy(tmp, value, vlen);
    tmp[vlen] = '\0';
    if (strncmp(tmp, "bytes ", 6) == 0) {
        char *end;
        long long v = strtoll(tmp + 6, &end, 10);
        if (end != tmp + 6 && *end == '-') {
            rc->start = (curl_off_t)v;
            rc->found = 1;
        }
    }
}

/* Before sending: a resumed output must exist and hold at least resume_from bytes. */
static int check_resume(const xfer_t *x)
{
    struct stat st;
    if (stat(x->output, &st) != 0)
        return errno;
    return st.st_size < x->resume_from ? ERANGE : 0;
}

/* Opens the output when a 2xx answer starts: cut to resume_from and appended to, or truncated. */
static int open_output(xfer_t *x)
{
    x->fd = open(x->output, O_WRONLY | O_CREAT | O_CLOEXEC | (x->resume_from > 0 ? O_APPEND : O_TRUNC), 0666);
    if (x->fd < 0)
        return errno;
    if (x->resume_from > 0 && ftruncate(x->fd, x->resume_from) != 0)
        return errno;
    return 0;
}

/* At the first body byte: does this answer go to the output file? Only a 2xx does,
 * so an error page never lands in the file; a 200 to a ranged request restarts it. */
static int choose_sink(xfer_t *x)
{
    long status = 0;
    x->sink_chosen = 1;
    if (x->output == NULL)
        return 1;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299)
        return 1;
    x->to_file = 1;
    if ((x->fail_errno = open_output(x)) != 0) {
        x->fail = FAIL_OUTPUT;
        return 0;
    }
    if (x->resume_from > 0) {
        if (status == 206) {
            range_check_t rc = {0, 0};
            char *copy = malloc(x->head.len + 1);
            if (copy == NULL) {
                x->fail = FAIL_NO_MEMORY;
                return 0;
            }
            memcpy(copy, x->head.data, x->head.len);
            lh_headers_parse(copy, x->head.len, on_range_header, &rc);
            free(copy);
            if (!rc.found || rc.start != x->resume_from) {
                x->fail = FAIL_RANGE_MISMATCH;
                return 0;
            }
            drop_hash(x); /* the bytes before resume_from are not seen here */
        } else {
            /* the server sent the whole file again: start the output over */
            if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
                x->fail = FAIL_OUTPUT;
                x->fail_errno = errno;
                return 0;
            }
            x->restarted = 1;
            if (x->md != NULL) { /* the whole file comes again: so does its hash */
                lh_sha256_free(x->md);
                x->md = lh_sha256_begin();
            }
        }
    }
    return 1;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nmemb, done = 0;
    if (!x->sink_chosen && !choose_sink(x))
        return 0;
    if (!x->to_file)
        return buf_append(&x->body, p, n, &x->fail, FAIL_BODY_TOO_LARGE) ? n : 0;
    while (done < n) {
        ssize_t w = write(x->fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            x->fail = FAIL_OUTPUT;
            x->fail_errno = w < 0 ? errno : ENOSPC;
            return 0;
        }
        done += (size_t)w;
    }
    x->file_bytes += (curl_off_t)n;
    if (x->md != NULL && lh_sha256_update(x->md, p, n) != 0)
        drop_hash(x); /* the caller falls back to hashing the file */
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
        x->head.len = 0; /* a new response (after a redirect or a 100 Continue): keep only the last */
    return buf_append(&x->head, p, n, &x->fail, FAIL_HEADERS_TOO_LARGE) ? n : 0;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    xfer_t *x = ud;
    lua_State *L = x->L;
    double now = monotonic();
    if (now - x->last_progress < PROGRESS_INTERVAL)
        return 0;
    x->last_progress = now;
    lua_pushvalue(L, x->progress_idx);
    lua_pushnumber(L, (lua_Number)dltotal);
    lua_pushnumber(L, (lua_Number)dlnow);
    lua_pushnumber(L, (lua_Number)ultotal);
    lua_pushnumber(L, (lua_Number)ulnow);
    if (lua_pcall(L, 4, 1, 0) != 0) {
        lua_replace(L, x->error_slot); /* keep the error value for after perform */
        x->fail = FAIL_CALLBACK_ERROR;
        return 1;
    }
    if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))
        x->fail = FAIL_CALLBACK_FALSE;
    lua_pop(L, 1);
    return x->fail != FAIL_NONE;
}

/* ---- building a request ----------------------------------------------------- */

static void xfer_release(xfer_t *x)
{
    curl_slist_free_all(x->headers);
    curl_mime_free(x->mime);
    if (x->body_file != NULL)
        fclose(x->body_file);
    if (x->fd >= 0)
        close(x->fd);
    lh_sha256_free(x->md);
    x->md = NULL;
    free(x->body.data);
    free(x->head.data);
    x->headers = NULL, x->mime = NULL, x->body_file = NULL, x->fd = -1;
    x->body.data = x->head.data = NULL;
    x->body.len = x->head.len = 0;
}

static int l_xfer_gc(lua_State *L)
{
    xfer_release(luaL_checkudata(L, 1, XFER_MT));
    return 0;
}

/* A request-level failure found before sending: returned as nil, err (not raised). */
static int push_error(lua_State *L, const char *kind, const char *code, const char *message)
{
    lua_pushnil(L);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    return 2;
}

static int is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 32 || c >= 127 || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL)
            return 0;
    }
    return 1;
}

/* Builds the header list from the table at idx. Returns NULL on success or a message. */
static const char *build_headers(lua_State *L, int idx, xfer_t *o)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t vlen;
        const char *name, *value;
        struct curl_slist *next;
        if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
            luaL_error(L, "request: headers must map names to strings");
        name = lua_tostring(L, -2);
        if (!is_token(name)) {
            lua_pop(L, 2);
            return "header name is not an HTTP token";
        }
        value = lua_tolstring(L, -1, &vlen);
        if (strlen(value) != vlen || strpbrk(value, "\r\n") != NULL) {
            lua_pop(L, 2);
            return "header value contains CR, LF or NUL";
        }
        /* "Name;" is libcurl's spelling of a header with an empty value */
        lua_pushfstring(L, *value ? "%s: %s" : "%s;", name, value);
        next = curl_slist_append(o->headers, lua_tostring(L, -1));
        if (next == NULL)
            luaL_error(L, "out of memory");
        o->headers = next;
        lua_pop(L, 2);
    }
    return NULL;
}

/* Builds the curl_mime from the array at idx. Returns NULL or a message (io errors name the path). */
static const char *build_form(lua_State *L, int idx, CURL *easy, xfer_t *o, const char **io_path)
{
    size_t i, n;
    luaL_checktype(L, idx, LUA_TTABLE);
    n = lua_rawlen(L, idx);
    if (n == 0)
        luaL_error(L, "request: form must be a non-empty array of parts");
    o->mime = curl_mime_init(easy);
    if (o->mime == NULL)
        luaL_error(L, "out of memory");
    for (i = 1; i <= n; i++) {
        const char *name, *path, *data, *filename, *type;
        size_t dlen = 0;
        curl_mimepart *part;
        lua_rawgeti(L, idx, (int)i);
        if (lua_type(L, -1) != LUA_TTABLE)
            luaL_error(L, "request: form part %d must be a table", (int)i);
        name = lh_optfield(L, lua_gettop(L), "name", NULL);
        path = lh_optfield(L, lua_gettop(L), "path", NULL);
        data = lh_optfield(L, lua_gettop(L), "data", &dlen);
        filename = lh_optfield(L, lua_gettop(L), "filename", NULL);
        type = lh_optfield(L, lua_gettop(L), "content_type", NULL);
        if (name == NULL || (path == NULL) == (data == NULL))
            luaL_error(L, "request: form part %d needs a name and exactly one of path or data", (int)i);
        part = curl_mime_addpart(o->mime);
        if (part == NULL || curl_mime_name(part, name) != CURLE_OK)
            luaL_error(L, "out of memory");
        if (path != NULL) {
            /* libcurl streams the file from disk while sending; it checks it is readable now */
            if (curl_mime_filedata(part, path) != CURLE_OK) {
                *io_path = path;
                lua_pop(L, 1);
                return "cannot read form file";
            }
        } else if (curl_mime_data(part, data, dlen) != CURLE_OK) {
            luaL_error(L, "out of memory");
        }
        if ((filename != NULL && curl_mime_filename(part, filename) != CURLE_OK) ||
            (type != NULL && curl_mime_type(part, type) != CURLE_OK))
            luaL_error(L, "out of memory");
        lua_pop(L, 1);
    }
    return NULL;
}

static void apply_session_options(session_t *s, xfer_t *x)
{
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* threads: never SIGALRM for DNS timeouts */
    s->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, s->low_speed_limit);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, s->low_speed_time);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, RECV_BUFFER);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, SEND_BUFFER);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, s->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, s->insecure ? 0L : 2L);
    if (s->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    if (s->proxy != NULL)
        curl_easy_setopt(e, CURLOPT_PROXY, s->proxy);
    curl_easy_setopt(e, CURLOPT_USERAGENT, s->user_agent ? s->user_agent : "loghaul/" LOGHAUL_VERSION);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, s->follow_redirects ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, s->max_redirects);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
}

/* ---- the result ------------------------------------------------------------- */

static void on_result_header(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
    lua_State *L = ud;
    lua_pushlstring(L, name, nlen);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isnil(L, -1)) { /* first of its name */
        lua_pop(L, 1);
        lua_pushlstring(L, value, vlen);
    } else { /* a repeated header: joined with ", " as RFC 9110 allows */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, value, vlen);
        lua_concat(L, 3);
    }
    lua_rawset(L, -3);
}

static void set_number(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_integer(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void push_timings(lua_State *L, CURL *e)
{
    static const struct {
        const char *name;
        CURLINFO info;
    } t[] = {{"namelookup", CURLINFO_NAMELOOKUP_TIME_T}, {"connect", CURLINFO_CONNECT_TIME_T},
             {"tls", CURLINFO_APPCONNECT_TIME_T},        {"start_transfer", CURLINFO_STARTTRANSFER_TIME_T},
             {"total", CURLINFO_TOTAL_TIME_T}};
    size_t i;
    lua_createtable(L, 0, 5);
    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        curl_off_t us = 0;
        curl_easy_getinfo(e, t[i].info, &us);
        set_number(L, t[i].name, (double)us / 1e6);
    }
}

static int push_result(lua_State *L, xfer_t *x)
{
    long status = 0, connects = 0;
    char *url = NULL;
    curl_off_t up = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    lua_createtable(L, 0, 10);
    set_integer(L, "status", (lua_Integer)status);
    lua_newtable(L);
    lh_headers_parse(x->head.data, x->head.len, on_result_header, L);
    lua_setfield(L, -2, "headers");
    if (x->to_file) {
        char hex[65];
        set_integer(L, "bytes", (lua_Integer)x->file_bytes);
        lua_pushboolean(L, x->restarted);
        lua_setfield(L, -2, "restarted");
        if (x->md != NULL && lh_sha256_end(x->md, hex) == 0) {
            lua_pushstring(L, hex);
            lua_setfield(L, -2, "sha256");
        }
    } else {
        lua_pushlstring(L, x->body.data ? x->body.data : "", x->body.len);
        lua_setfield(L, -2, "body");
        set_integer(L, "bytes", (lua_Integer)x->body.len);
    }
    set_integer(L, "uploaded", (lua_Integer)up);
    lua_pushstring(L, url ? url : "");
    lua_setfield(L, -2, "url");
    lua_pushboolean(L, connects == 0);
    lua_setfield(L, -2, "reused");
    push_timings(L, x->easy);
    lua_setfield(L, -2, "time");
    return 1;
}

/* When an answer had started before the failure (a cut download), the caller needs
 * its status, headers (ETag, Content-Range) and how much reached the output to resume. */
static void push_partial_response(lua_State *L, xfer_t *x)
{
    long status = 0, request_size = 0;
    /* whether any request bytes left this host: if not, the server never saw the request
     * (a connect or TLS failure, a connect timeout), so even a create may be retried */
    curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &request_size);
    lua_pushboolean(L, request_size > 0);
    lua_setfield(L, -2, "request_sent");
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status <= 0)
        return;
    set_integer(L, "status", (lua_Integer)status);
    lua_newtable(L);
    lh_headers_parse(x->head.data, x->head.len, on_result_header, L);
    lua_setfield(L, -2, "headers");
    if (x->to_file)
        set_integer(L, "bytes", (lua_Integer)x->file_bytes);
}

static int push_failure(lua_State *L, xfer_t *x, CURLcode rc, const char *errbuf)
{
    const char *kind = lh_curl_code_kind(rc), *code = lh_curl_code_name(rc);
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    switch (x->fail) {
    case FAIL_CALLBACK_ERROR:
        kind = "aborted";
        lua_pushvalue(L, x->error_slot);
        lua_setfield(L, -2, "cause");
        lua_pushfstring(L, "aborted by the progress callback: %s",
                        lua_type(L, x->error_slot) == LUA_TSTRING ? lua_tostring(L, x->error_slot)
                                                                  : luaL_typename(L, x->error_slot));
        break;
    case FAIL_CALLBACK_FALSE:
        kind = "aborted";
        lua_pushliteral(L, "aborted by the progress callback");
        break;
    case FAIL_OUTPUT:
        kind = "io";
        lua_pushstring(L, x->output);
        lua_setfield(L, -2, "path");
        push_errno(L, x->fail_errno);
        lua_pushfstring(L, "cannot write %s: %s", x->output, errno_text(x->fail_errno).s);
        break;
    case FAIL_BODY_TOO_LARGE:
        kind = "http", code = "BODY_TOO_LARGE";
        lua_pushfstring(L, "response body larger than max_body (%f bytes)", (double)x->body.max);
        break;
    case FAIL_HEADERS_TOO_LARGE:
        kind = "http", code = "HEADERS_TOO_LARGE";
        lua_pushfstring(L, "response headers larger than %d bytes", MAX_HEADER_BYTES);
        break;
    case FAIL_RANGE_MISMATCH:
        kind = "http", code = "RANGE_MISMATCH";
        lua_pushliteral(L, "206 answer does not start at the requested offset");
        break;
    case FAIL_NO_MEMORY:
        kind = "io", code = "CURLE_OUT_OF_MEMORY";
        lua_pushliteral(L, "out of memory");
        break;
    default:
        if (rc == CURLE_FILESIZE_EXCEEDED)
            code = "BODY_TOO_LARGE";
        lua_pushstring(L, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        break;
    }
    lua_setfield(L, -2, "message");
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    push_partial_response(L, x);
    return 2;
}

/* ---- session:request -------------------------------------------------------- */

static const char *const request_keys[] = {"method", "url", "headers", "body", "body_file", "form",
                                           "output", "resume_from", "progress", "timeout", "sha256",
                                           "compressed", NULL};

/* Stack slots used by request, fixed so the callbacks can find them. The strings in
 * SLOT_BODY and SLOT_OUTPUT stay referenced even if a callback empties the table. */
enum { ARG_SESSION = 1, ARG_OPTS, SLOT_PROGRESS, SLOT_ERROR, SLOT_BODY, SLOT_OUTPUT, SLOT_XFER };

static void set_method(CURL *e, const char *method, int has_body)
{
    if (strcmp(method, "GET") == 0 && !has_body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") != 0 || !has_body)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
}

/// Sends one request on the session's reused connection.
// @function session:request
// @tparam table req `url` (required), `method` (default GET, or POST with a body), `headers`
// (name → value), one of `body` (string), `body_file` (path, streamed) or `form` (multipart parts
// `{ name =, path = | data =, filename =, content_type = }`, files streamed by libcurl),
// `output` (path: a 2xx body is streamed there instead of memory), `resume_from` (bytes already in
// `output`: sends `Range` and appends; a 200 answer restarts the file), `progress`
// (`function(dltotal, dlnow, ultotal, ulnow)`, called at most 10 times a second; an error or a
// `false` return aborts the transfer), `timeout` (seconds for this request, overriding the
// session's; 0 = none), `sha256` (with `output`: hash the output as it is written),
// `compressed` (true: accept a gzip or deflate answer, decoded by libcurl; API calls only,
// refused with `output`: a download's Range must address the file's own bytes)
// @return `{ status, headers, body | (nothing when streamed), bytes, uploaded, url, reused,
// restarted, sha256, time }` (`sha256`: hex of the whole output file, when asked for and the
// answer wrote all of it, i.e. not a resumed 206), or `nil, { kind, code, message }` with kind one of network, timeout, tls,
// io, invalid, aborted, http; `request_sent` tells whether any of the request left this host
// (false: the server never saw it); when an answer had started (a cut download), the error
// also has its `status`, `headers` and the `bytes` written to `output`
static int l_request(lua_State *L)
{
    session_t *s = check_session(L);
    xfer_t *x;
    const char *url, *method, *body, *body_file, *bad = NULL, *io_path = NULL;
    size_t body_len = 0;
    double timeout;
    CURLcode rc;
    int t, has_body;

    luaL_checktype(L, ARG_OPTS, LUA_TTABLE);
    lua_settop(L, ARG_OPTS);
    check_keys(L, ARG_OPTS, "request", request_keys);
    if (s->busy)
        return luaL_error(L, "request: the session is busy (called from its own progress callback?)");

    url = lh_optfield(L, ARG_OPTS, "url", NULL);
    if (url == NULL)
        return luaL_error(L, "request: field 'url' (string expected, got nil)");
    body_file = lh_optfield(L, ARG_OPTS, "body_file", NULL);
    t = lh_getfield(L, ARG_OPTS, "form");
    lua_pop(L, 1);
    lh_optfield(L, ARG_OPTS, "body", NULL); /* type check only; the string is taken below */
    lh_optfield(L, ARG_OPTS, "output", NULL);
    lua_getfield(L, ARG_OPTS, "body");
    has_body = !lua_isnil(L, -1) || body_file != NULL || t != LUA_TNIL;
    if (!lua_isnil(L, -1) + (body_file != NULL) + (t != LUA_TNIL) > 1)
        return luaL_error(L, "request: give only one of body, body_file and form");
    lua_pop(L, 1);
    method = lh_optfield(L, ARG_OPTS, "method", NULL);
    if (method == NULL)
        method = has_body ? "POST" : "GET";
    if (!is_token(method))
        return push_error(L, "invalid", "BAD_METHOD", "request: method is not an HTTP token");

    t = lh_getfield(L, ARG_OPTS, "progress"); /* SLOT_PROGRESS */
    if (t != LUA_TNIL && t != LUA_TFUNCTION)
        return luaL_error(L, "request: field 'progress' (function expected, got %s)", lua_typename(L, t));
    lua_pushnil(L);                       /* SLOT_ERROR: a progress error is parked here */
    lua_getfield(L, ARG_OPTS, "body");    /* SLOT_BODY */
    lua_getfield(L, ARG_OPTS, "output");  /* SLOT_OUTPUT */
    body = lua_tolstring(L, SLOT_BODY, &body_len);
    x = lua_newuserdata(L, sizeof *x);    /* SLOT_XFER */
    memset(x, 0, sizeof *x);
    x->fd = -1;
    luaL_setmetatable(L, XFER_MT);
    luaL_checkstack(L, 16, "request");
    x->L = L;
    x->easy = s->easy;
    x->body.max = (size_t)s->max_body;
    x->head.max = MAX_HEADER_BYTES;
    x->last_progress = -1e9;
    x->progress_idx = t == LUA_TFUNCTION ? SLOT_PROGRESS : 0;
    x->error_slot = SLOT_ERROR;
    x->output = lua_tostring(L, SLOT_OUTPUT);
    x->resume_from = (curl_off_t)opt_number(L, ARG_OPTS, "resume_from", 0, 0);
    if (x->resume_from > 0 && x->output == NULL)
        return luaL_error(L, "request: resume_from needs output");
    if (opt_boolean(L, ARG_OPTS, "sha256", 0)) {
        if (x->output == NULL)
            return luaL_error(L, "request: sha256 needs output");
        x->md = lh_sha256_begin();
        if (x->md == NULL)
            return luaL_error(L, "out of memory");
    }

    timeout = opt_number(L, ARG_OPTS, "timeout", -1, -1);
    curl_easy_reset(s->easy); /* keeps the connection cache, drops the last request's options */
    apply_session_options(s, x);
    if (timeout >= 0) /* this request's own limit: a long download may want none (0) */
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    if (opt_boolean(L, ARG_OPTS, "compressed", 0)) {
        if (x->output != NULL)
            return luaL_error(L, "request: compressed is for API answers, not with output");
        curl_easy_setopt(s->easy, CURLOPT_ACCEPT_ENCODING, "gzip, deflate"); /* libcurl decodes */
    }
    set_method(s->easy, method, has_body);

    if (lh_getfield(L, ARG_OPTS, "headers") != LUA_TNIL)
        bad = build_headers(L, lua_gettop(L), x);
    lua_pop(L, 1);
    if (bad == NULL && lh_getfield(L, ARG_OPTS, "form") != LUA_TNIL) {
        bad = build_form(L, lua_gettop(L), s->easy, x, &io_path);
        if (bad == NULL)
            curl_easy_setopt(s->easy, CURLOPT_MIMEPOST, x->mime);
    }
    lua_pop(L, 1);
    if (bad == NULL && body != NULL) {
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
    } else if (bad == NULL && body_file != NULL) {
        struct stat st;
        x->body_file = fopen(body_file, "rb");
        if (x->body_file == NULL || fstat(fileno(x->body_file), &st) != 0) {
            bad = "cannot read body_file";
            io_path = body_file;
        } else {
            curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
            curl_easy_setopt(s->easy, CURLOPT_READDATA, x->body_file); /* libcurl's default fread */
            curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
        }
    }
    if (bad == NULL && x->resume_from > 0) {
        int e = check_resume(x);
        if (e != 0) {
            lua_pushfstring(L, e == ERANGE ? "resume_from is past the end of %s" : "cannot resume %s: %s",
                            x->output, errno_text(e).s);
            push_error(L, "io", e == ERANGE ? "BAD_RESUME" : "CURLE_WRITE_ERROR", lua_tostring(L, -1));
            lua_pushvalue(L, SLOT_OUTPUT);
            lua_setfield(L, -2, "path");
            return 2;
        }
    }
    if (bad != NULL) {
        if (io_path != NULL) {
            int e = errno;
            lua_pushfstring(L, "%s: %s: %s", bad, io_path, errno_text(e).s);
            push_error(L, "io", "CURLE_READ_ERROR", lua_tostring(L, -1));
            push_errno(L, e);
            lua_pushstring(L, io_path);
            lua_setfield(L, -2, "path");
            return 2;
        }
        return push_error(L, "invalid", "BAD_HEADER", bad);
    }
    if (x->headers != NULL)
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, x->headers);
    if (x->progress_idx) {
        curl_easy_setopt(s->easy, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(s->easy, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(s->easy, CURLOPT_XFERINFODATA, x);
    }
    if (x->resume_from > 0) {
        char range[32];
        snprintf(range, sizeof range, "%lld-", (long long)x->resume_from);
        curl_easy_setopt(s->easy, CURLOPT_RANGE, range); /* copied by libcurl */
    }

    s->busy = 1;
    rc = curl_easy_perform(s->easy);
    s->busy = 0;

    /* a 2xx answer with an empty body never called on_write: the file must still be (re)made */
    if (rc == CURLE_OK && x->output != NULL && !x->sink_chosen)
        choose_sink(x);
    if (x->fd >= 0) {
        int fd = x->fd;
        x->fd = -1;
        if (close(fd) != 0 && rc == CURLE_OK && x->fail == FAIL_NONE) {
            x->fail = FAIL_OUTPUT; /* a delayed write error (NFS, quota) shows up at close */
            x->fail_errno = errno;
        }
    }
    if (rc == CURLE_OK && x->fail != FAIL_NONE)
        rc = CURLE_WRITE_ERROR;
    if (rc == CURLE_OK)
        push_result(L, x);
    else
        push_failure(L, x, rc, s->errbuf);
    xfer_release(x);
    return rc == CURLE_OK ? 1 : 2;
}

void lh_open_session(lua_State *L)
{
    static const luaL_Reg methods[] = {{"request", l_request}, {"close", l_close}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", l_gc}, {"__close", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}};
    if (luaL_newmetatable(L, XFER_MT)) {
        lua_pushcfunction(L, l_xfer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, SESSION_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_session);
    lua_setfield(L, -2, "session");
}
