/* session.c: core.session, one curl easy handle reused across requests so that connections
 * (and TLS sessions) stay alive, and session:request, one transfer run in place
 * (curl_easy_perform). What a transfer is and does lives in transfer.c. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "options.h"
#include "transfer.h"

#define DEFAULT_MAX_BODY (64L * 1024 * 1024)

static char *dup_opt(lua_State *L, int idx, const char *name)
{
    const char *s = lh_push_path_field(L, idx, "session", name);
    char *d = NULL;
    if (s != NULL && (d = strdup(s)) == NULL)
        luaL_error(L, "out of memory");
    lua_pop(L, 1); /* the copy is ours now */
    return d;
}

lh_session_t *lh_check_session(lua_State *L, int idx)
{
    lh_session_t *s = luaL_checkudata(L, idx, LH_SESSION_MT);
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
// (default false; when true, a GET or HEAD follows 301/302/303/307/308 itself: never from https to
// http, and the request's own headers are dropped as soon as a hop leaves the first origin),
// `max_redirects` (default 5). With `ca_file`, that bundle is the only trust: libcurl's default
// CA path is not searched.
// @return a session, closed by `:close()`, by garbage collection, or by a Lua 5.4 `<close>` variable
static int l_session(lua_State *L)
{
    lh_session_t *s;
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lh_check_keys(L, 1, "session", session_keys);
    s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, LH_SESSION_MT); /* from here on __gc frees whatever was set */
    s->timeout_ms = (long)(lh_opt_number(L, 1, "session", "timeout", 0, 0, LH_MAX_SECONDS) * 1000);
    s->connect_timeout_ms = (long)(lh_opt_number(L, 1, "session", "connect_timeout", 30, 0, LH_MAX_SECONDS) * 1000);
    s->low_speed_limit = (long)lh_opt_number(L, 1, "session", "low_speed_limit", 1, 1, 1.0e12);
    s->low_speed_time = (long)lh_opt_number(L, 1, "session", "low_speed_time", 60, 1, LH_MAX_SECONDS);
    s->max_body = (curl_off_t)lh_opt_number(L, 1, "session", "max_body", (double)DEFAULT_MAX_BODY, 1, LH_MAX_COUNT);
    s->max_redirects = (long)lh_opt_number(L, 1, "session", "max_redirects", 5, 1, 50);
    s->insecure = lh_opt_boolean(L, 1, "insecure", 0);
    s->follow_redirects = lh_opt_boolean(L, 1, "follow_redirects", 0);
    s->ca_file = dup_opt(L, 1, "ca_file");
    s->proxy = dup_opt(L, 1, "proxy");
    s->user_agent = dup_opt(L, 1, "user_agent");
    s->easy = curl_easy_init();
    if (s->easy == NULL)
        return luaL_error(L, "session: curl_easy_init failed");
    return 1;
}

static void session_free(lh_session_t *s)
{
    if (s->easy != NULL)
        curl_easy_cleanup(s->easy);
    s->easy = NULL;
    free(s->ca_file);
    free(s->proxy);
    free(s->user_agent);
    free(s->spare);
    s->ca_file = s->proxy = s->user_agent = s->spare = NULL;
    s->spare_cap = 0;
}

/// Closes the session and its connections; later requests on it raise an error.
// Called from a callback of the session's own request, the close happens when that request ends.
// @function session:close
static int l_close(lua_State *L)
{
    lh_session_t *s = luaL_checkudata(L, 1, LH_SESSION_MT);
    if (s->busy)
        s->close_pending = 1; /* the request in progress frees it when libcurl has returned */
    else
        session_free(s);
    return 0;
}

static int l_tostring(lua_State *L)
{
    lh_session_t *s = luaL_checkudata(L, 1, LH_SESSION_MT);
    lua_pushfstring(L, "loghaul.session (%s%p)", s->easy ? "" : "closed, ", (void *)s);
    return 1;
}

/// Sends one request on the session's reused connection.
// @function session:request
// @tparam table req `url` (required), `method` (default GET, or POST with a body), `headers`
// (name → value), one of `body` (string), `body_file` (path, streamed) or `form` (multipart parts
// `{ name =, path = | data =, filename =, content_type = }`, files streamed by libcurl),
// `output` (path: a 2xx body is streamed there instead of memory; opened only as a regular file,
// never through a symlink), `mode` (of an output file it creates: default `"0600"`; an octal
// string or an integer), `resume_from` (a whole number of bytes already in `output`: sends `Range`
// and appends; a 200 answer restarts the file), `progress` (`function(dltotal, dlnow, ultotal,
// ulnow)`, called at most 10 times a second; an error or a `false` return aborts the transfer),
// `timeout` (seconds for this request, overriding the session's; 0 = none), `sha256` (with
// `output`: hash the output as it is written), `compressed` (true: accept a gzip or deflate answer,
// decoded by libcurl; API calls only, refused with `output`: a download's Range must address the
// file's own bytes). Paths and the URL must not contain NUL bytes.
// @return `{ status, headers, body | (nothing when streamed), bytes, uploaded, url, reused,
// restarted, sha256, time }` (`sha256`: hex of the whole output file, when asked for and the
// answer wrote all of it, i.e. not a resumed 206; `headers` never include HTTP trailers), or
// `nil, { kind, code, message }` with kind one of network, timeout, tls, io, invalid, aborted,
// http; `request_sent` tells whether any of the request left this host (false: the server
// never saw it); when an answer had started (a cut download), the error also has its `status`,
// `headers` and the `bytes` written to `output`. A 206 to a request without `resume_from` is
// `UNEXPECTED_PARTIAL`.
static int l_request(lua_State *L)
{
    lh_session_t *s = lh_check_session(L, 1);
    lh_xfer *x;
    CURLcode rc;
    int n;
    if (s->busy)
        return luaL_error(L, "request: the session is busy (called from its own progress callback?)");
    n = lh_xfer_prepare(L, s, s->easy, &x);
    if (n != 0)
        return n;
    s->busy = 1;
    do
        rc = curl_easy_perform(s->easy);
    while (rc == CURLE_OK && lh_xfer_next_hop(x, s->max_redirects));
    s->busy = 0;
    n = lh_xfer_finish(L, x, rc, s);
    if (s->close_pending) /* closed by a callback of this very request */
        session_free(s);
    return n;
}

void lh_open_session(lua_State *L)
{
    static const luaL_Reg methods[] = {{"request", l_request}, {"close", l_close}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}};
    lh_xfer_register(L);
    if (luaL_newmetatable(L, LH_SESSION_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_session);
    lua_setfield(L, -2, "session");
}
