/* session.c: core.session, one reused curl easy handle. (stub: being written) */
#include "loghaul.h"

void lh_open_session(lua_State *L)
{
    (void)L;
}
