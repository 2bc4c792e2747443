/* json.h: the JSON structural scanner of json.c, shared with the JSON Lines writer and
 * the fuzz target. */
#ifndef LOGHAUL_JSON_H
#define LOGHAUL_JSON_H

#include <stddef.h>

#define LH_JSON_MAX_DEPTH 64 /* as our lua-cjson instance (decode_max_depth) */
#define LH_JSON_MAX_PATHS 16

enum { JS_OK, JS_EMPTY, JS_SYNTAX, JS_TRUNCATED, JS_NUMBER, JS_STRING, JS_CONTROL, JS_SURROGATE, JS_DEPTH,
       JS_TRAILING, JS_NUL, JS_NCODES };

/* One path component: an object key (key, len), or key == NULL for any array element. */
typedef struct {
    const char *key;
    size_t len;
} lh_json_key_t;

typedef struct {
    const lh_json_key_t *keys;
    int len;
} lh_json_path_t;

/* A scan: the paths to watch, and on_value(ud, path index, start, end) called for every
 * value a path leads to, in text order, with its byte range [start, end). A repeated key
 * calls it again: the caller keeps the last (as lua-cjson does). */
typedef struct {
    const lh_json_path_t *paths;
    int npaths; /* <= LH_JSON_MAX_PATHS */
    void (*on_value)(void *ud, int path, size_t start, size_t end);
    void *ud;
    int error;       /* JS_* after the scan */
    size_t error_at; /* byte offset (0-based) of the fault */
} lh_json_scan_t;

/* Scans text[0..n) as exactly one JSON value with optional surrounding whitespace.
 * Returns 0, or -1 with sc->error and sc->error_at set. */
int lh_json_scan(lh_json_scan_t *sc, const char *text, size_t n);
const char *lh_json_error_text(int code);



/* ---- for the Lua functions of json.c and the writer of jsonl.c ---- */
#include "compat.h"

/* The boundary filter of a cursor loop (see core.json_array): elements whose string member
 * `key` starts with `first` are skipped while the multiset skip[raw text] still counts them;
 * kept ones starting with `last` are counted into seen[raw text]. */
typedef struct {
    int on;
    lh_json_key_t key;
    const char *first, *last;
    size_t flen, llen;
    int skip_idx, seen_idx; /* stack slots of the two tables, 0 when absent */
} lh_json_filter_t;

/* Reads the filter table at idx (nil: no filter), anchoring what it reads on the stack. */
void lh_json_read_filter(lua_State *L, int idx, lh_json_filter_t *f);

/* Validates text and finds the array at the path (a Lua list of keys at path_idx).
 * Returns 1 with [*a, *b) the array's text, 0 when absent or null, or -1 having pushed
 * nil and a message (malformed text, or not an array). */
int lh_json_locate_array(lua_State *L, const char *text, size_t n, int path_idx, size_t *a, size_t *b);

/* Calls fn(ud, start, end, keep) for each element of the (valid) array text[a..b), in
 * order, keep = 0 for those the filter skips. Returns the element count. */
typedef void (*lh_json_elem_fn)(void *ud, size_t start, size_t end, int keep);
size_t lh_json_each_element(lua_State *L, const char *text, size_t a, size_t b, const lh_json_filter_t *f,
                            lh_json_elem_fn fn, void *ud);

void lh_json_push_error(lua_State *L, const lh_json_scan_t *sc);
#endif
