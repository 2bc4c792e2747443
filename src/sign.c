/* sign.c: the three vendor request signers. (stub: being written) */
#include "loghaul.h"

void lh_open_sign(lua_State *L)
{
    (void)L;
}
