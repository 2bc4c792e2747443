/* clock.c: the wall clock, a monotonic clock and a sleep, so the Lua layer can sign
 * with sub-second Unix time and time retries and polls to the millisecond without
 * LuaSocket or a shell (outside nginx; inside, ngx.now and ngx.sleep). */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "loghaul.h"

/// Seconds from an arbitrary fixed point, never going backwards (CLOCK_MONOTONIC).
// @function monotonic
// @treturn number seconds, with sub-microsecond resolution
static int l_monotonic(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/// Seconds since the Unix epoch (CLOCK_REALTIME), with sub-second resolution.
// Follows the wall clock, so it can step; time intervals with `monotonic`.
// @function time
// @treturn number
static int l_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/// Blocks the calling thread for the given seconds (fractions allowed).
// Not for nginx's event loop: there the Lua layer uses ngx.sleep.
// @function sleep
// @tparam number seconds from 0 to 86400
static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec ts;
    luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds out of range (0 to 86400)");
    ts.tv_sec = (time_t)floor(s);
    ts.tv_nsec = (long)((s - floor(s)) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

void lh_open_clock(lua_State *L)
{
    static const luaL_Reg fns[] = {{"monotonic", l_monotonic}, {"time", l_time}, {"sleep", l_sleep}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
