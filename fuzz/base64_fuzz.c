/* libFuzzer target: core.base64_decode (src/crypto.c) on arbitrary text, through one
 * Lua state (the decoder is a lua_CFunction; its checker b64_check is pure C).
 * Invariants: decode either fails with an `invalid` error or returns bytes whose
 * encoding is exactly the input (strict RFC 4648: one canonical text per byte string). */
#include "../src/crypto.c"

#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>

static lua_State *L;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    if (L == NULL) {
        L = luaL_newstate();
        if (L == NULL)
            abort();
    }
    (void)b64_check(data, size, &why);
    lua_settop(L, 0);
    lua_pushcfunction(L, l_base64_decode);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 2, 0) != 0)
        abort(); /* never raises on bad input: it returns nil, err */
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t n;
        const char *enc;
        if (why != NULL)
            abort();
        lua_pushcfunction(L, l_base64_encode);
        lua_pushvalue(L, 1);
        if (lua_pcall(L, 1, 1, 0) != 0)
            abort();
        enc = lua_tolstring(L, -1, &n);
        if (enc == NULL || n != size || memcmp(enc, data, size) != 0)
            abort();
    } else {
        if (why == NULL || lua_type(L, 2) != LUA_TTABLE)
            abort();
    }
    lua_settop(L, 0);
    return 0;
}
