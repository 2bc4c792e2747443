/* core.c: the module entry point, luaopen_loghaul_core. */
#include <pthread.h>
#include <curl/curl.h>

#include "loghaul.h"

/* curl_global_init is not thread-safe in every libcurl build: run it exactly once per process. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;

static void init_curl(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *lh_optfield(lua_State *L, int idx, const char *name, size_t *len)
{
    const char *s = NULL;
    int t;
    if (idx < 0 && idx > LUA_REGISTRYINDEX)
        idx = lua_gettop(L) + idx + 1; /* the push below would shift a relative index */
    t = lh_getfield(L, idx, name);
    if (t == LUA_TSTRING)
        s = lua_tolstring(L, -1, len);
    else if (t != LUA_TNIL)
        luaL_error(L, "bad field '%s' (string expected, got %s)", name, lua_typename(L, t));
    lua_pop(L, 1); /* the string stays alive: the caller's table still holds it */
    return s;
}

int luaopen_loghaul_core(lua_State *L)
{
    pthread_once(&curl_once, init_curl);
    if (curl_init_result != CURLE_OK)
        return luaL_error(L, "loghaul.core: curl_global_init failed: %s", curl_easy_strerror(curl_init_result));
    lua_newtable(L);
    lua_pushliteral(L, LOGHAUL_VERSION);
    lua_setfield(L, -2, "version");
    /* curl_version_info, not curl_version: the latter initialises LDAP/SASL, which leak */
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "curl_version");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->ssl_version);
    lua_setfield(L, -2, "ssl_version");
    lh_open_session(L);
    lh_open_crypto(L);
    lh_open_sign(L);
    lh_open_clock(L);
    lh_open_file(L);
    lh_open_json(L);
    lh_open_jsonl(L);
    return 1;
}
