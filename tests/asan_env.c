/* asan_env.c: linked into the ASan build of the core only (make asan).
 * The interpreters are not instrumented, so the ASan runtime comes in by LD_PRELOAD;
 * once it is loaded, drop the variable so that the helpers the tests start (curl,
 * nginx) run as themselves: curl hangs with the runtime preloaded. The Makefile
 * loads the core at interpreter start (LUA_INIT) so this runs before any spec. */
#include <stdlib.h>

__attribute__((constructor)) static void loghaul_asan_drop_preload(void)
{
    unsetenv("LD_PRELOAD");
}
