/* options.c: reading the option tables of core functions strictly: each field read once,
 * the right type, numbers in range, strings free of NUL bytes, unknown keys refused. A
 * string read by lh_push_*_field stays on the stack, so its pointer stays valid until the
 * caller pops it (an __index metamethod may have made it up on the spot). */
#include <string.h>

#include "options.h"

/* A string field read once and checked: NULL when absent; raises on another type or on an
 * embedded NUL (a NUL would silently cut a path or URL short). The value is left on the
 * stack, so the pointer stays valid until the caller pops it. */
const char *lh_push_string_field(lua_State *L, int idx, const char *what, const char *name, size_t *len)
{
    size_t n;
    const char *v;
    int t = lh_getfield(L, idx, name);
    if (t == LUA_TNIL) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (t != LUA_TSTRING)
        luaL_error(L, "%s: bad option '%s' (string expected, got %s)", what, name, lua_typename(L, t));
    v = lua_tolstring(L, -1, &n);
    if (len)
        *len = n;
    return v;
}

/* The same for a path or URL: no NUL byte allowed. */
const char *lh_push_path_field(lua_State *L, int idx, const char *what, const char *name)
{
    size_t n;
    const char *v = lh_push_string_field(L, idx, what, name, &n);
    if (v != NULL && strlen(v) != n)
        luaL_error(L, "%s: bad option '%s' (contains a NUL byte)", what, name);
    return v;
}

/* A number field read once: absent -> dflt; else a finite number >= 0 (and a whole one when
 * integer), at most max. Seconds may have fractions; counts and offsets may not. */
double lh_opt_number(lua_State *L, int idx, const char *what, const char *name, double dflt, int integer,
                         double max)
{
    double v = dflt;
    int t = lh_getfield(L, idx, name);
    if (t == LUA_TNUMBER) {
        v = lua_tonumber(L, -1);
        if (!(v >= 0) || v > max || (integer && v != (double)(long long)v))
            luaL_error(L, "%s: bad option '%s' (%s from 0 to %.0f expected, got %s)", what, name,
                       integer ? "a whole number" : "a number", max, lua_tostring(L, -1));
    } else if (t != LUA_TNIL) {
        luaL_error(L, "%s: bad option '%s' (number expected, got %s)", what, name, lua_typename(L, t));
    }
    lua_pop(L, 1);
    return v;
}


int lh_opt_boolean(lua_State *L, int idx, const char *name, int dflt)
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
void lh_check_keys(lua_State *L, int idx, const char *what, const char *const allowed[])
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
