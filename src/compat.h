/* compat.h: the one place that knows Lua 5.4 from LuaJIT 2.1 (Lua 5.1 API).
 * LuaJIT 2.1 already brings luaL_setfuncs, luaL_newlib, luaL_testudata and
 * luaL_setmetatable from 5.2; what it lacks is spelled here, so the other
 * sources stay free of #ifdefs. */
#ifndef LOGHAUL_COMPAT_H
#define LOGHAUL_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
#ifndef LUAJIT_VERSION_NUM
#include <luajit.h>
#endif
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif

/* lua_getfield returns the value's type only since 5.3: one spelling for all. */
static inline int lh_getfield(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    return lua_type(L, -1);
}

#endif
