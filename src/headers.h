/* headers.h: parsing a raw HTTP response header block. Pure C, no Lua: it takes
 * untrusted bytes, so it is kept small and separate for the fuzzer. */
#ifndef LOGHAUL_HEADERS_H
#define LOGHAUL_HEADERS_H

#include <stddef.h>

typedef void (*lh_header_fn)(void *ud, const char *name, size_t nlen, const char *value, size_t vlen);

/* Calls fn for every "Name: value" line of buf (status lines and malformed lines are
 * skipped, values are trimmed), lower-casing each name in place. Returns the count. */
size_t lh_headers_parse(char *buf, size_t len, lh_header_fn fn, void *ud);

#endif
