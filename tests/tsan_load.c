/* tests/tsan_load.c: what several nginx worker threads do with loghaul.core at once, under
 * ThreadSanitizer (`make tsan`). THREADS threads wait at a barrier, then each creates its own
 * Lua state, loads the module (luaopen: curl_global_init, the version strings) and calls
 * every thread-safe-by-contract core function: hashes, base64, random, the signers, the
 * clocks, a session created and closed, a request refused at 127.0.0.1:1 (curl_easy_perform
 * on each thread's own handle). ROUNDS rounds, a new set of threads each. The core is the
 * TSan-instrumented build given as argv[1] (a LUA_CPATH pattern); Lua 5.4 itself is per
 * thread and not shared. Exit 0 when every thread ran its script without a Lua error;
 * TSan reports races on stderr and makes the exit status non-zero (TSAN_OPTIONS exitcode). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define THREADS 8
#define ROUNDS 4

static const char *cpath;

/* libcurl is not instrumented, so TSan cannot see that curl_version_info writes static
 * memory on every call (its info struct, the SSL version text: helgrind shows two luaopen
 * calls racing there). This definition, exported from the executable (-rdynamic), is the
 * one the core's calls bind to; it makes the same kind of write in instrumented code, so
 * two unsynchronised calls are a race TSan reports. */
static curl_version_info_data *(*real_version_info)(CURLversion);
static int version_info_writes;

curl_version_info_data *curl_version_info(CURLversion stamp)
{
    version_info_writes++;
    return real_version_info(stamp);
}
static pthread_barrier_t start;

static const char script[] =
    "local core = require 'loghaul.core'\n"
    "assert(core.curl_version:match('^%d+%.%d+'), core.curl_version)\n"
    "assert(type(core.ssl_version) == 'string' and #core.ssl_version > 0)\n"
    "assert(core.hex(core.sha256('abc')) == "
    "'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')\n"
    "assert(#core.hmac_sha256('k', 'v') == 32)\n"
    "assert(core.base64_decode(core.base64_encode('xyz')) == 'xyz')\n"
    "assert(#core.random(64) == 64)\n"
    "assert(core.monotonic() > 0 and core.time() > 0)\n"
    "core.sleep(0)\n"
    "local a = core.sign_auth_v2{ access_key = 'ak', secret_key = 'sk', timestamp = '2024-01-02T03:04:05Z',\n"
    "  method = 'GET', path = '/p', query = { k = { 'a', 'b' } }, headers = { host = 'h' } }\n"
    "local s = core.sign_sdk_hmac_sha256{ access_key = 'ak', secret_key = 'sk', date = '20240102T030405Z',\n"
    "  method = 'GET', path = '/p', headers = { ['X-A'] = '1' } }\n"
    "local z = core.sign_zc2{ access_key_id = 'i', access_key_password = 'p', timestamp = 1,\n"
    "  host = 'h', content_type = 'a/b' }\n"
    "assert(#a.signature == 64 and #s.signature == 64 and #z.signature == 64)\n"
    "local session = core.session{ timeout = 2, connect_timeout = 1 }\n"
    "local res, err = session:request{ url = 'http://127.0.0.1:1/' }\n"
    "assert(res == nil and err.kind == 'network', tostring(err and err.code))\n"
    "session:close()\n";

static void *run(void *arg)
{
    lua_State *L;
    int *failed = arg;
    pthread_barrier_wait(&start);
    L = luaL_newstate();
    if (L == NULL) {
        *failed = 1;
        return NULL;
    }
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, cpath);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    if (luaL_dostring(L, script) != 0) {
        fprintf(stderr, "tsan_load: %s\n", lua_tostring(L, -1));
        *failed = 1;
    }
    lua_close(L);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t t[THREADS];
    int failed[THREADS] = {0}, i, r, bad = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: %s 'build/tsan/?.so'\n", argv[0]);
        return 2;
    }
    cpath = argv[1];
    *(void **)&real_version_info = dlsym(RTLD_NEXT, "curl_version_info");
    if (real_version_info == NULL) {
        fprintf(stderr, "tsan_load: no curl_version_info in libcurl\n");
        return 2;
    }
    for (r = 0; r < ROUNDS; r++) {
        pthread_barrier_init(&start, NULL, THREADS);
        for (i = 0; i < THREADS; i++)
            if (pthread_create(&t[i], NULL, run, &failed[i]) != 0) {
                perror("pthread_create");
                return 2;
            }
        for (i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&start);
    }
    for (i = 0; i < THREADS; i++)
        bad |= failed[i];
    printf("tsan_load: %d rounds of %d threads: %s\n", ROUNDS, THREADS, bad ? "FAILED" : "ok");
    return bad;
}
