/* multi.c: core.multi, many transfers in flight on one thread over libcurl's multi interface.
 *
 * The Lua scheduler (lua/loghaul/scheduler.lua) adds transfers and then waits: multi:wait
 * blocks in curl_multi_poll until a transfer ends or the earliest timer of the scheduler is
 * due, and returns what ended. No busy waiting, no threads. Every transfer gets an easy handle
 * of its own (kept in a pool for the next one); they all share the multi handle's connection
 * cache, so tasks talking to the same host reuse each other's connections, and HTTP/2 streams
 * are multiplexed where the server offers it.
 *
 * The same rule as transfer.c: no Lua error unwinds through libcurl. A progress callback runs
 * under lua_pcall on the stack of the state that called wait; wait, add and close refuse to
 * run from inside such a callback (libcurl forbids re-entering the multi handle). */
#include <stdint.h>
#include <string.h>

#include <curl/curl.h>

#include "options.h"
#include "transfer.h"

#define MULTI_MT "loghaul.multi"
#define POOL_MAX 64          /* idle easy handles kept for reuse */
#define IDLE_CONNECTIONS 256 /* idle connections kept open for reuse */

typedef struct {
    CURLM *multi;
    CURL *pool[POOL_MAX];
    int npool, running, busy;
    lua_Integer next_id;
    /* registry ref of the table id -> { transfer userdata, session userdata } of the transfers
     * in flight: it keeps both alive for as long as libcurl works on them */
    int inflight;
} multi_t;

static multi_t *check_multi(lua_State *L, int idx)
{
    multi_t *m = luaL_checkudata(L, idx, MULTI_MT);
    if (m->multi == NULL)
        luaL_error(L, "attempt to use a closed multi");
    if (m->busy)
        luaL_error(L, "multi: called from a callback of one of its own transfers");
    return m;
}

static const char *const multi_keys[] = {"max_connections", "max_host_connections", NULL};

/// Creates a multi handle: transfers run at once, sharing one connection cache.
// @function multi
// @tparam[opt] table opts `max_connections` (open connections in all, 0 = no limit),
// `max_host_connections` (per host, 0 = no limit)
// @return a multi, closed by `:close()`, by garbage collection, or by a Lua 5.4 `<close>` variable
static int l_multi(lua_State *L)
{
    multi_t *m;
    long total, host;
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lh_check_keys(L, 1, "multi", multi_keys);
    total = (long)lh_opt_number(L, 1, "multi", "max_connections", 0, 1, 1.0e6);
    host = (long)lh_opt_number(L, 1, "multi", "max_host_connections", 0, 1, 1.0e6);
    m = lua_newuserdata(L, sizeof *m);
    memset(m, 0, sizeof *m);
    m->inflight = LUA_NOREF;
    luaL_setmetatable(L, MULTI_MT);
    lua_newtable(L);
    m->inflight = luaL_ref(L, LUA_REGISTRYINDEX);
    m->multi = curl_multi_init();
    if (m->multi == NULL)
        return luaL_error(L, "multi: curl_multi_init failed");
    curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
    curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host);
    /* idle connections kept for the next tasks: libcurl's default is 4 per handle added, and a
     * scheduler between two rounds has none added (every connection would be dropped) */
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, total > 0 ? total : (long)IDLE_CONNECTIONS);
    return 1;
}

/* The easy handle the next transfer will use. It stays in the pool until the transfer has
 * been prepared (take_handle): preparing reads the request and may raise, and a handle held
 * only in a C local would then leak. */
static CURL *next_handle(lua_State *L, multi_t *m)
{
    if (m->npool == 0) {
        CURL *e = curl_easy_init();
        if (e == NULL)
            luaL_error(L, "multi: curl_easy_init failed");
        m->pool[m->npool++] = e;
    }
    return m->pool[m->npool - 1];
}

static void take_handle(multi_t *m)
{
    m->npool--;
}

static void give_handle(multi_t *m, CURL *e)
{
    if (m->npool < POOL_MAX)
        m->pool[m->npool++] = e;
    else
        curl_easy_cleanup(e);
}

/// Starts a transfer: the same request table as `session:request`, with the session's options
// (the session's own connection is not used; the multi's connection cache is).
// @function multi:add
// @tparam session session
// @tparam table req
// @return an id (an integer) that `wait` reports when the transfer ends, or nil, err when the
// request is refused before sending (as `session:request` returns them)
static int l_add(lua_State *L)
{
    multi_t *m = check_multi(L, 1);
    lh_session_t *s;
    lh_xfer *x;
    CURL *e;
    CURLMcode mc;
    int n;
    lua_Integer id;
    lua_remove(L, 1); /* (session, req), as lh_xfer_prepare reads them; the session stays at 1 */
    s = lh_check_session(L, 1);
    e = next_handle(L, m);
    n = lh_xfer_prepare(L, s, e, &x);
    if (n != 0)
        return n; /* refused before sending: the handle is still in the pool */
    id = ++m->next_id;
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->inflight);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, -3); /* the transfer */
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 1); /* the session: its options (max_redirects) are read when a hop ends */
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (int)id);
    take_handle(m); /* from here on the transfer in `inflight` owns it (close cleans it up) */
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)(intptr_t)id);
    mc = curl_multi_add_handle(m->multi, e);
    if (mc != CURLM_OK) {
        lua_pushnil(L);
        lua_rawseti(L, -2, (int)id);
        lh_xfer_abandon(L, x);
        give_handle(m, e);
        return luaL_error(L, "multi: curl_multi_add_handle failed: %s", curl_multi_strerror(mc));
    }
    m->running++;
    lua_pushinteger(L, id);
    return 1;
}

/* Binds every transfer in flight to L, the state whose stack their progress callbacks use. */
static void bind_all(lua_State *L, multi_t *m)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->inflight);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        lua_rawgeti(L, -1, 1);
        lh_xfer_bind(lua_touserdata(L, -1), L);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

/* One ended transfer: the next hop of a redirect it follows, or its result appended to the
 * list on top of the stack as { id =, res =, err = }. */
static void ended(lua_State *L, multi_t *m, CURL *e, CURLcode rc, int list)
{
    void *priv = NULL;
    lua_Integer id;
    lh_xfer *x;
    lh_session_t *s;
    int n;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    id = (lua_Integer)(intptr_t)priv;
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->inflight);
    lua_rawgeti(L, -1, (int)id); /* { transfer, session } */
    lua_rawgeti(L, -1, 1);
    x = lua_touserdata(L, -1);
    lua_rawgeti(L, -2, 2);
    s = lua_touserdata(L, -1);
    curl_multi_remove_handle(m->multi, e);
    if (rc == CURLE_OK && lh_xfer_next_hop(x, s->max_redirects) &&
        curl_multi_add_handle(m->multi, e) == CURLM_OK) {
        lua_pop(L, 4); /* the same transfer goes on with its next hop */
        return;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, id);
    lua_setfield(L, -2, "id");
    n = lh_xfer_finish(L, x, rc, s);
    if (n == 2) {
        lua_setfield(L, -3, "err");
        lua_pop(L, 1);
    } else {
        lua_setfield(L, -2, "res");
    }
    lua_rawseti(L, list, (int)lua_rawlen(L, list) + 1);
    lua_pop(L, 3);            /* session, transfer, entry */
    lua_pushnil(L);
    lua_rawseti(L, -2, (int)id); /* no longer in flight */
    lua_pop(L, 1);
    m->running--;
    give_handle(m, e);
}

/// Runs the transfers until at least one ends or `timeout` seconds pass, blocking in
// curl_multi_poll meanwhile (no busy waiting).
// @function multi:wait
// @tparam[opt] number timeout seconds (default 1; 0 polls without blocking)
// @treturn table the transfers that ended, `{ { id =, res = } | { id =, err = }, ... }` (res and err as
// `session:request` returns them); empty when the timeout passed first
static int l_wait(lua_State *L)
{
    multi_t *m = check_multi(L, 1);
    double timeout = luaL_optnumber(L, 2, 1.0);
    int list, still = 0, waited = 0;
    luaL_argcheck(L, timeout >= 0 && timeout <= LH_MAX_SECONDS, 2, "must be a number of seconds >= 0");
    lua_settop(L, 1);
    lua_newtable(L);
    list = lua_gettop(L);
    luaL_checkstack(L, 24, "multi:wait");
    bind_all(L, m);
    for (;;) {
        CURLMsg *msg;
        int left;
        CURLMcode mc;
        m->busy = 1; /* callbacks run inside curl_multi_perform */
        mc = curl_multi_perform(m->multi, &still);
        m->busy = 0;
        if (mc != CURLM_OK)
            return luaL_error(L, "multi: curl_multi_perform failed: %s", curl_multi_strerror(mc));
        while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE)
                ended(L, m, msg->easy_handle, msg->data.result, list);
        }
        if (lua_rawlen(L, list) > 0 || waited || timeout == 0)
            break;
        /* with nothing in flight this still waits out the timeout (a scheduler's timer) */
        mc = curl_multi_poll(m->multi, NULL, 0, (int)(timeout * 1000 + 0.5), NULL);
        if (mc != CURLM_OK)
            return luaL_error(L, "multi: curl_multi_poll failed: %s", curl_multi_strerror(mc));
        waited = 1; /* perform once more for what the poll saw, then return */
    }
    return 1;
}

/// The number of transfers in flight.
// @function multi:count
// @treturn int
static int l_count(lua_State *L)
{
    multi_t *m = luaL_checkudata(L, 1, MULTI_MT);
    lua_pushinteger(L, m->multi ? m->running : 0);
    return 1;
}

/// Stops every transfer in flight (their outputs closed, nothing reported) and frees the handle.
// @function multi:close
static int l_close(lua_State *L)
{
    multi_t *m = luaL_checkudata(L, 1, MULTI_MT);
    if (m->multi == NULL)
        return 0;
    if (m->busy)
        return luaL_error(L, "multi: cannot close from a callback of one of its own transfers");
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->inflight);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        lh_xfer *x;
        lua_rawgeti(L, -1, 1);
        x = lua_touserdata(L, -1);
        curl_multi_remove_handle(m->multi, lh_xfer_easy(x));
        curl_easy_cleanup(lh_xfer_easy(x));
        lh_xfer_abandon(L, x);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    while (m->npool > 0)
        curl_easy_cleanup(m->pool[--m->npool]);
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    m->running = 0;
    luaL_unref(L, LUA_REGISTRYINDEX, m->inflight);
    m->inflight = LUA_NOREF;
    return 0;
}

void lh_open_multi(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"add", l_add}, {"wait", l_wait}, {"count", l_count}, {"close", l_close}, {NULL, NULL}};
    if (luaL_newmetatable(L, MULTI_MT)) {
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__close");
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_multi);
    lua_setfield(L, -2, "multi");
}
