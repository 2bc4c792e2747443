/* transfer.c: one HTTP transfer on a curl easy handle, from the request table to the result:
 * reading the request (every field once, anchored), the libcurl callbacks (body to memory or to
 * an output file, headers, progress), redirects hop by hop, and the result or error table.
 * session.c runs a transfer in place (curl_easy_perform); multi.c runs many at once.
 *
 * The rule that shapes this file: no Lua error may unwind through libcurl's frames.
 * Callbacks only touch C buffers, except the progress callback, which calls Lua under
 * lua_pcall and parks any error in the transfer's anchor table. Errors are turned into Lua
 * values only after libcurl has returned. */
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
#include "options.h"
#include "transfer.h"

#define XFER_MT "loghaul.transfer"
#define MAX_HEADER_BYTES (1024 * 1024) /* a header flood is an error, not a memory hog */
#define PROGRESS_INTERVAL 0.1          /* seconds between two calls of a Lua progress function */
#define RECV_BUFFER (256L * 1024)
#define SEND_BUFFER (512L * 1024)

typedef struct {
    char *data;
    size_t len, cap, max;
} buf_t;

/* What failed inside a callback, reported once curl_easy_perform returns. */
enum { FAIL_NONE, FAIL_CALLBACK_ERROR, FAIL_CALLBACK_FALSE, FAIL_OUTPUT, FAIL_BODY_TOO_LARGE,
       FAIL_HEADERS_TOO_LARGE, FAIL_NO_MEMORY, FAIL_RANGE_MISMATCH, FAIL_UNASKED_PARTIAL,
       FAIL_REDIRECT_DOWNGRADE, FAIL_TOO_MANY_REDIRECTS };

/* One transfer. A userdata with __gc, so that whatever it holds is released even
 * when building the request raises halfway. What libcurl and the callbacks use from Lua (the
 * progress function, the body libcurl does not copy, the output path) is held by an anchor
 * table referenced from the registry (ref), so it stays alive whether the transfer runs on the
 * caller's stack (session:request) or across many calls of a scheduler (core.multi). */
struct lh_xfer {
    CURL *easy;
    buf_t body, head;
    struct curl_slist *headers;
    curl_mime *mime;
    FILE *body_file;
    /* streaming to a file, opened only when a 2xx answer starts; output points into a
     * string anchored in a stack slot of the request for as long as the request runs */
    const char *output;
    int fd, mode;
    curl_off_t resume_from, file_bytes;
    int sink_chosen, to_file, restarted;
    /* head_done: the blank line after the last response's headers has arrived; header lines
     * after it (HTTP trailers, after the body) never join the response's headers */
    int head_done;
    /* follow: redirects followed by perform_request itself (a GET/HEAD only), hops counted */
    int follow, hops;
    /* SHA-256 of the whole output as it is written (request sha256 = true), so the caller
     * need not read the file back; dropped when the output only gets the tail (a 206) */
    lh_sha256_ctx *md;
    /* the anchor table: [1] progress function or false, [2] a progress error or false, [3] the
     * body, [4] the output path, [5] the path an io failure is about; L is the state whose
     * stack the progress callback uses (the caller of perform, or of multi:wait) */
    int ref, has_progress;
    lua_State *L;
    double last_progress;
    /* failures */
    int fail, fail_errno;
    char errbuf[CURL_ERROR_SIZE]; /* lives as long as the transfer that libcurl writes it for */
};
typedef struct lh_xfer xfer_t;

enum { ANCHOR_PROGRESS = 1, ANCHOR_ERROR, ANCHOR_BODY, ANCHOR_OUTPUT, ANCHOR_IO_PATH, ANCHOR_SIZE = ANCHOR_IO_PATH };

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

/* Before sending: a resumed output must be a regular file (not a symlink planted at its
 * name) holding at least resume_from bytes. */
static int check_resume(const xfer_t *x)
{
    struct stat st;
    if (lstat(x->output, &st) != 0)
        return errno;
    if (!S_ISREG(st.st_mode))
        return S_ISLNK(st.st_mode) ? ELOOP : EINVAL;
    return st.st_size < x->resume_from ? ERANGE : 0;
}

/* Opens the output when a 2xx answer starts, never through a symlink and only as a regular
 * file (lh_open_output): cut to resume_from and appended to, or started empty. */
static int open_output(xfer_t *x)
{
    x->fd = lh_open_output(x->output, (off_t)x->resume_from, x->mode);
    return x->fd < 0 ? errno : 0;
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
    if (status == 206 && x->resume_from == 0) {
        x->fail = FAIL_UNASKED_PARTIAL; /* a part of the file, written as if it were all of it */
        return 0;
    }
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
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->head.len = 0; /* a new response (after a redirect or a 100 Continue): keep only the last */
        x->head_done = 0;
    } else if (x->head_done) {
        return n; /* a trailer, after the body: it must not override Content-Disposition & co */
    } else if (p[0] == '\r' || p[0] == '\n') {
        x->head_done = 1;
    }
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
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->ref); /* the anchor table: no allocation */
    lua_rawgeti(L, -1, ANCHOR_PROGRESS);
    lua_pushnumber(L, (lua_Number)dltotal);
    lua_pushnumber(L, (lua_Number)dlnow);
    lua_pushnumber(L, (lua_Number)ultotal);
    lua_pushnumber(L, (lua_Number)ulnow);
    if (lua_pcall(L, 4, 1, 0) != 0) {
        lua_rawseti(L, -2, ANCHOR_ERROR); /* kept for after perform (the slot exists: no allocation) */
        lua_pop(L, 1);
        x->fail = FAIL_CALLBACK_ERROR;
        return 1;
    }
    if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))
        x->fail = FAIL_CALLBACK_FALSE;
    lua_pop(L, 2);
    return x->fail != FAIL_NONE;
}

/* ---- building a request ----------------------------------------------------- */

static void xfer_release(lua_State *L, xfer_t *x)
{
    luaL_unref(L, LUA_REGISTRYINDEX, x->ref);
    x->ref = LUA_NOREF;
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
    x->body.cap = x->head.cap = 0;
}

static int l_xfer_gc(lua_State *L)
{
    xfer_release(L, luaL_checkudata(L, 1, XFER_MT));
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

/* Builds the curl_mime from the array at idx. Returns NULL or a message (io errors name the path).
 * Each part's fields are read once and stay on the stack until libcurl has copied them: an
 * __index that makes up fresh strings (and runs the collector) cannot leave one dangling. */
static const char *build_form(lua_State *L, int idx, CURL *easy, xfer_t *o, int anchor)
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
        int top;
        lua_rawgeti(L, idx, (int)i);
        if (lua_type(L, -1) != LUA_TTABLE)
            luaL_error(L, "request: form part %d must be a table", (int)i);
        top = lua_gettop(L);
        name = lh_push_string_field(L, top, "request: form part", "name", NULL);
        path = lh_push_path_field(L, top, "request: form part", "path");
        data = lh_push_string_field(L, top, "request: form part", "data", &dlen);
        filename = lh_push_string_field(L, top, "request: form part", "filename", NULL);
        type = lh_push_string_field(L, top, "request: form part", "content_type", NULL);
        if (name == NULL || (path == NULL) == (data == NULL))
            luaL_error(L, "request: form part %d needs a name and exactly one of path or data", (int)i);
        part = curl_mime_addpart(o->mime);
        if (part == NULL || curl_mime_name(part, name) != CURLE_OK)
            luaL_error(L, "out of memory");
        if (path != NULL) {
            /* libcurl streams the file from disk while sending; it checks it is readable now */
            if (curl_mime_filedata(part, path) != CURLE_OK) {
                lua_pushvalue(L, top + 2); /* the path, kept for the error message */
                lua_rawseti(L, anchor, ANCHOR_IO_PATH);
                lua_settop(L, top - 1);
                return "cannot read form file";
            }
        } else if (curl_mime_data(part, data, dlen) != CURLE_OK) {
            luaL_error(L, "out of memory");
        }
        if ((filename != NULL && curl_mime_filename(part, filename) != CURLE_OK) ||
            (type != NULL && curl_mime_type(part, type) != CURLE_OK))
            luaL_error(L, "out of memory");
        lua_settop(L, top - 1); /* libcurl copied every string */
    }
    return NULL;
}

static void apply_session_options(const lh_session_t *s, xfer_t *x)
{
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* threads: never SIGALRM for DNS timeouts */
    x->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, s->low_speed_limit);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, s->low_speed_time);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L); /* under core.multi: wait to multiplex on HTTP/2 */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, RECV_BUFFER);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, SEND_BUFFER);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, s->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, s->insecure ? 0L : 2L);
    if (s->ca_file != NULL) { /* the bundle the user gave is the only trust, not also /etc/ssl/certs */
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    if (s->proxy != NULL)
        curl_easy_setopt(e, CURLOPT_PROXY, s->proxy);
    curl_easy_setopt(e, CURLOPT_USERAGENT, s->user_agent ? s->user_agent : "loghaul/" LOGHAUL_VERSION);
    /* redirects are followed by perform_request, hop by hop, never by libcurl: libcurl would
     * send the request's own headers (X-Auth-Token) to whatever host a Location names */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
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

static int push_failure(lua_State *L, xfer_t *x, CURLcode rc)
{
    const char *kind = lh_curl_code_kind(rc), *code = lh_curl_code_name(rc);
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    switch (x->fail) {
    case FAIL_CALLBACK_ERROR:
        kind = "aborted";
        lua_rawgeti(L, LUA_REGISTRYINDEX, x->ref);
        lua_rawgeti(L, -1, ANCHOR_ERROR);
        lua_remove(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "cause");
        lua_pushfstring(L, "aborted by the progress callback: %s",
                        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
        lua_remove(L, -2);
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
    case FAIL_UNASKED_PARTIAL:
        kind = "http", code = "UNEXPECTED_PARTIAL";
        lua_pushliteral(L, "206 partial answer to a request that asked for the whole file");
        break;
    case FAIL_REDIRECT_DOWNGRADE:
        kind = "http", code = "REDIRECT_REFUSED";
        lua_pushliteral(L, "refused a redirect from https to http");
        break;
    case FAIL_TOO_MANY_REDIRECTS:
        kind = "http", code = "CURLE_TOO_MANY_REDIRECTS";
        lua_pushfstring(L, "more than %d redirects", x->hops);
        break;
    case FAIL_NO_MEMORY:
        kind = "io", code = "CURLE_OUT_OF_MEMORY";
        lua_pushliteral(L, "out of memory");
        break;
    default:
        if (rc == CURLE_FILESIZE_EXCEEDED)
            code = "BODY_TOO_LARGE";
        lua_pushstring(L, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
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

/* ---- following redirects ------------------------------------------------------ */

enum { SAME_ORIGIN, OTHER_ORIGIN, DOWNGRADE };

/* scheme://host:port of a URL (default port filled in); 0, or -1 when it cannot be parsed */
static int origin_of(const char *url, char *out, size_t size, int *https)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        snprintf(out, size, "%s://%s:%s", scheme, host, port);
        *https = strcmp(scheme, "https") == 0;
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static int compare_origins(const char *from, const char *to)
{
    char a[512], b[512];
    int ha = 0, hb = 0;
    if (origin_of(from, a, sizeof a, &ha) != 0 || origin_of(to, b, sizeof b, &hb) != 0)
        return OTHER_ORIGIN; /* cannot tell: treat as foreign (no headers go there) */
    if (ha && !hb)
        return DOWNGRADE;
    return strcmp(a, b) == 0 ? SAME_ORIGIN : OTHER_ORIGIN;
}

/* After a transfer ended well: with follow on and a 3xx to a GET/HEAD, sets up the next hop and
 * returns 1; else 0 (the answer stands as it is, or x->fail says why a redirect was refused). */
int lh_xfer_next_hop(xfer_t *x, long max_redirects)
{
    CURL *e = x->easy;
    long status = 0;
    char *target = NULL, *from = NULL, *copy;
    int origin;
    CURLcode rc;
    if (!x->follow || x->fail != FAIL_NONE)
        return 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
        return 0;
    if (curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &target) != CURLE_OK || target == NULL)
        return 0;
    if (x->hops >= max_redirects) {
        x->fail = FAIL_TOO_MANY_REDIRECTS;
        return 0;
    }
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &from);
    origin = compare_origins(from ? from : "", target);
    if (origin == DOWNGRADE) {
        x->fail = FAIL_REDIRECT_DOWNGRADE;
        return 0;
    }
    if (origin == OTHER_ORIGIN) /* the request's own headers stay with the first origin */
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    copy = strdup(target); /* target belongs to the handle's info, which setopt may replace */
    if (copy == NULL) {
        x->fail = FAIL_NO_MEMORY;
        return 0;
    }
    rc = curl_easy_setopt(e, CURLOPT_URL, copy);
    free(copy);
    if (rc != CURLE_OK) {
        x->fail = FAIL_NO_MEMORY;
        return 0;
    }
    x->hops++;
    x->head.len = 0, x->head_done = 0, x->body.len = 0, x->sink_chosen = 0, x->to_file = 0;
    return 1;
}


/* ---- preparing a request: shared by session:request and multi:add ---------- */

static const char *const request_keys[] = {"method",      "url",      "headers", "body",   "body_file",
                                           "form",        "output",   "mode",    "resume_from", "progress",
                                           "timeout",     "sha256",   "compressed", NULL};

/* Stack slots of a request being prepared. Every field of the request table is read exactly
 * once, into its own slot; what is used after preparing moves to the transfer's anchor table.
 * An __index that makes up fresh strings, or a progress callback that empties the table and
 * runs the collector, cannot leave a pointer dangling. */
enum { ARG_SESSION = 1, ARG_OPTS, SLOT_URL, SLOT_METHOD, SLOT_HEADERS, SLOT_BODY, SLOT_BODY_FILE, SLOT_FORM,
       SLOT_OUTPUT, SLOT_PROGRESS, SLOT_ANCHOR, SLOT_XFER };

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

/* The mode of a file the request creates: absent -> 0600; an integer or an octal string. */
static int request_mode(lua_State *L)
{
    int m = 0600;
    int t = lh_getfield(L, ARG_OPTS, "mode");
    if (t != LUA_TNIL)
        m = lh_parse_mode(L, lua_gettop(L), "request: bad option 'mode'");
    lua_pop(L, 1);
    return m;
}

/* Reads the request table at ARG_OPTS into a transfer on easy, with the options of session s,
 * and leaves the transfer userdata on top of the stack (above the slots), ready to perform.
 * Returns 0, or 2 after pushing nil, err when the request is refused before anything is sent
 * (a bad header, a file that cannot be read). Raises on programming errors. */
int lh_xfer_prepare(lua_State *L, lh_session_t *s, CURL *easy, xfer_t **out)
{
    xfer_t *x;
    const char *url, *method, *body, *body_file, *bad = NULL;
    size_t body_len = 0;
    double timeout;
    int t, has_body, nbodies, xfer_idx;

    luaL_checktype(L, ARG_OPTS, LUA_TTABLE);
    lua_settop(L, ARG_OPTS);
    lh_check_keys(L, ARG_OPTS, "request", request_keys);
    luaL_checkstack(L, 24, "request");

    url = lh_push_path_field(L, ARG_OPTS, "request", "url"); /* SLOT_URL */
    if (url == NULL)
        return luaL_error(L, "request: field 'url' (string expected, got nil)");
    method = lh_push_string_field(L, ARG_OPTS, "request", "method", NULL); /* SLOT_METHOD */
    t = lh_getfield(L, ARG_OPTS, "headers"); /* SLOT_HEADERS */
    if (t != LUA_TNIL && t != LUA_TTABLE)
        return luaL_error(L, "request: bad option 'headers' (table expected, got %s)", lua_typename(L, t));
    body = lh_push_string_field(L, ARG_OPTS, "request", "body", &body_len); /* SLOT_BODY */
    body_file = lh_push_path_field(L, ARG_OPTS, "request", "body_file");  /* SLOT_BODY_FILE */
    t = lh_getfield(L, ARG_OPTS, "form");                                 /* SLOT_FORM */
    if (t != LUA_TNIL && t != LUA_TTABLE)
        return luaL_error(L, "request: bad option 'form' (table expected, got %s)", lua_typename(L, t));
    nbodies = (body != NULL) + (body_file != NULL) + (t != LUA_TNIL);
    if (nbodies > 1)
        return luaL_error(L, "request: give only one of body, body_file and form");
    has_body = nbodies == 1;
    lh_push_path_field(L, ARG_OPTS, "request", "output"); /* SLOT_OUTPUT */
    t = lh_getfield(L, ARG_OPTS, "progress");           /* SLOT_PROGRESS */
    if (t != LUA_TNIL && t != LUA_TFUNCTION)
        return luaL_error(L, "request: field 'progress' (function expected, got %s)", lua_typename(L, t));
    /* SLOT_ANCHOR: preallocated, so that storing into it from a callback never allocates */
    lua_createtable(L, ANCHOR_SIZE, 0);
    lua_pushvalue(L, SLOT_PROGRESS);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, SLOT_BODY);
    lua_pushvalue(L, SLOT_OUTPUT);
    lua_pushboolean(L, 0);
    for (t = ANCHOR_SIZE; t >= 1; t--) {
        if (lua_isnil(L, -1)) { /* a nil would leave a hole the array part may drop */
            lua_pop(L, 1);
            lua_pushboolean(L, 0);
        }
        lua_rawseti(L, SLOT_ANCHOR, t);
    }
    if (method == NULL)
        method = has_body ? "POST" : "GET";
    if (!is_token(method))
        return push_error(L, "invalid", "BAD_METHOD", "request: method is not an HTTP token");

    x = lua_newuserdata(L, sizeof *x); /* SLOT_XFER */
    xfer_idx = lua_gettop(L);
    memset(x, 0, sizeof *x);
    x->fd = -1;
    x->ref = LUA_NOREF;
    luaL_setmetatable(L, XFER_MT);
    lua_pushvalue(L, SLOT_ANCHOR);
    x->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    x->L = L;
    x->easy = easy;
    x->body.max = (size_t)s->max_body;
    if (s->spare != NULL) { /* the session's last body buffer (lh_xfer_finish) */
        x->body.data = s->spare, x->body.cap = s->spare_cap;
        s->spare = NULL, s->spare_cap = 0;
    }
    x->head.max = MAX_HEADER_BYTES;
    x->last_progress = -1e9;
    x->has_progress = lua_isfunction(L, SLOT_PROGRESS);
    x->output = lua_tostring(L, SLOT_OUTPUT); /* the same string the anchor table holds */
    x->mode = request_mode(L);
    x->follow = s->follow_redirects && !has_body;
    x->resume_from = (curl_off_t)lh_opt_number(L, ARG_OPTS, "request", "resume_from", 0, 1, LH_MAX_COUNT);
    if (x->resume_from > 0 && x->output == NULL)
        return luaL_error(L, "request: resume_from needs output");
    if (lh_opt_boolean(L, ARG_OPTS, "sha256", 0)) {
        if (x->output == NULL)
            return luaL_error(L, "request: sha256 needs output");
        x->md = lh_sha256_begin();
        if (x->md == NULL)
            return luaL_error(L, "out of memory");
    }
    /* absent: the session's limit; given: this request's own (0 = none, for a long download) */
    timeout = lh_opt_number(L, ARG_OPTS, "request", "timeout", -1, 0, LH_MAX_SECONDS);

    curl_easy_reset(easy); /* keeps the connection cache, drops the last request's options */
    apply_session_options(s, x);
    if (timeout >= 0)
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(easy, CURLOPT_URL, url);
    if (lh_opt_boolean(L, ARG_OPTS, "compressed", 0)) {
        if (x->output != NULL)
            return luaL_error(L, "request: compressed is for API answers, not with output");
        curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "gzip, deflate"); /* libcurl decodes */
    }
    set_method(easy, method, has_body);

    if (!lua_isnil(L, SLOT_HEADERS))
        bad = build_headers(L, SLOT_HEADERS, x);
    if (bad == NULL && !lua_isnil(L, SLOT_FORM)) {
        bad = build_form(L, SLOT_FORM, easy, x, SLOT_ANCHOR);
        if (bad == NULL)
            curl_easy_setopt(easy, CURLOPT_MIMEPOST, x->mime);
    }
    if (bad == NULL && body != NULL) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body); /* not copied: the anchor table keeps it */
    } else if (bad == NULL && body_file != NULL) {
        struct stat st;
        x->body_file = fopen(body_file, "rb");
        if (x->body_file == NULL || fstat(fileno(x->body_file), &st) != 0) {
            bad = "cannot read body_file";
            lua_pushvalue(L, SLOT_BODY_FILE);
            lua_rawseti(L, SLOT_ANCHOR, ANCHOR_IO_PATH);
        } else {
            curl_easy_setopt(easy, CURLOPT_POST, 1L);
            curl_easy_setopt(easy, CURLOPT_READDATA, x->body_file); /* libcurl's default fread */
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
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
            xfer_release(L, x);
            return 2;
        }
    }
    if (bad != NULL) {
        int e = errno;
        xfer_release(L, x);
        lua_rawgeti(L, SLOT_ANCHOR, ANCHOR_IO_PATH); /* the path an io failure is about, if any */
        if (lua_isstring(L, -1)) {
            const char *io_path = lua_tostring(L, -1);
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
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers);
    if (x->has_progress) {
        curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(easy, CURLOPT_XFERINFODATA, x);
    }
    if (x->resume_from > 0) {
        char range[32];
        snprintf(range, sizeof range, "%lld-", (long long)x->resume_from);
        curl_easy_setopt(easy, CURLOPT_RANGE, range); /* copied by libcurl */
    }
    lua_pushvalue(L, xfer_idx);
    *out = x;
    return 0;
}

void lh_xfer_bind(xfer_t *x, lua_State *L)
{
    x->L = L;
}

CURL *lh_xfer_easy(const xfer_t *x)
{
    return x->easy;
}

/* The largest body buffer a session keeps for its next request. */
#define SPARE_MAX (8u * 1024 * 1024)

/* After libcurl has returned: the output closed (a late write error counts), then the result
 * or the error table pushed, and everything the transfer holds released; its body buffer goes
 * back to s, the session it ran for, unless s is closed or closing (NULL: nobody keeps it). */
int lh_xfer_finish(lua_State *L, xfer_t *x, CURLcode rc, lh_session_t *s)
{
    /* a 2xx answer with an empty body never called on_write: the file must still be (re)made */
    if (rc == CURLE_OK && x->output != NULL && !x->sink_chosen && x->fail == FAIL_NONE)
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
    luaL_checkstack(L, 16, "request result");
    if (rc == CURLE_OK)
        push_result(L, x);
    else
        push_failure(L, x, rc);
    if (s != NULL && s->easy != NULL && !s->close_pending && s->spare == NULL && x->body.data != NULL &&
        x->body.cap <= SPARE_MAX) {
        s->spare = x->body.data, s->spare_cap = x->body.cap;
        x->body.data = NULL, x->body.cap = x->body.len = 0;
    }
    xfer_release(L, x);
    return rc == CURLE_OK ? 1 : 2;
}

/* Gives up a transfer that will not be finished (its scheduler is closing): the output is
 * closed and everything released; the caller removes the handle from libcurl first. */
void lh_xfer_abandon(lua_State *L, xfer_t *x)
{
    xfer_release(L, x);
}

void lh_xfer_register(lua_State *L)
{
    if (luaL_newmetatable(L, XFER_MT)) {
        lua_pushcfunction(L, l_xfer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}
