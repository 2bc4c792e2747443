/* core.c: the module entry point, luaopen_loghaul_core. */
#include <pthread.h>
#include <stdio.h>
#include <curl/curl.h>

#include "loghaul.h"

/* curl_global_init is not thread-safe in every libcurl build, and curl_version_info writes
 * static memory on every call (two worker threads loading the module raced there: helgrind,
 * tests/tsan_load.c): both run exactly once per process, and the version texts are kept.
 * Written only inside pthread_once, read only after it: no lock needed. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;
static char curl_version_text[64], ssl_version_text[128];

static void init_curl(void)
{
    const curl_version_info_data *v;
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (curl_init_result != CURLE_OK)
        return;
    /* curl_version_info, not curl_version: the latter initialises LDAP/SASL, which leak */
    v = curl_version_info(CURLVERSION_NOW);
    snprintf(curl_version_text, sizeof curl_version_text, "%s", v->version ? v->version : "");
    snprintf(ssl_version_text, sizeof ssl_version_text, "%s", v->ssl_version ? v->ssl_version : "");
}

int luaopen_loghaul_core(lua_State *L)
{
    pthread_once(&curl_once, init_curl);
    if (curl_init_result != CURLE_OK)
        return luaL_error(L, "loghaul.core: curl_global_init failed: %s", curl_easy_strerror(curl_init_result));
    lua_newtable(L);
    lua_pushliteral(L, LOGHAUL_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, curl_version_text);
    lua_setfield(L, -2, "curl_version");
    lua_pushstring(L, ssl_version_text);
    lua_setfield(L, -2, "ssl_version");
    lh_open_session(L);
    lh_open_multi(L);
    lh_open_crypto(L);
    lh_open_sign(L);
    lh_open_clock(L);
    lh_open_file(L);
    lh_open_json(L);
    lh_open_jsonl(L);
    return 1;
}
