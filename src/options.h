/* options.h: strict readers for the option tables of core functions (options.c). */
#ifndef LOGHAUL_OPTIONS_H
#define LOGHAUL_OPTIONS_H

#include "loghaul.h"

#define LH_MAX_SECONDS 1.0e9 /* ~31 years: keeps milliseconds inside a long */
#define LH_MAX_COUNT 9.0e15  /* below 2^53: exact in a double, fits curl_off_t */

/* A string field of the table at idx, read once and left on the stack (NULL, nothing pushed
 * when absent... see options.c); raises "<what>: bad option '<name>' (...)" on another type. */
const char *lh_push_string_field(lua_State *L, int idx, const char *what, const char *name, size_t *len);
/* The same, refusing an embedded NUL byte (paths, URLs). */
const char *lh_push_path_field(lua_State *L, int idx, const char *what, const char *name);
/* A number field read once: absent -> dflt; else finite, >= 0, <= max, whole when integer. */
double lh_opt_number(lua_State *L, int idx, const char *what, const char *name, double dflt, int integer,
                     double max);
/* A boolean field read once: absent -> dflt. */
int lh_opt_boolean(lua_State *L, int idx, const char *name, int dflt);
/* Raises on a key of the table at idx that is not in allowed (NULL-terminated). */
void lh_check_keys(lua_State *L, int idx, const char *what, const char *const allowed[]);

#endif
