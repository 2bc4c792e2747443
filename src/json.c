/* json.c: a validating JSON structural scanner (RFC 8259), so that Lua never scans JSON
 * byte by byte: the raw text of a value at a path of object keys (Zenlayer's cursor keeps
 * its 19 digits), the raw texts of an array's elements (records as the server sent them),
 * a validity check, and the in-place normalisation of a value decoded by lua-cjson.
 *
 * The scanner is iterative (an explicit stack of at most MAX_DEPTH frames, the depth our
 * lua-cjson instance allows), allocates nothing, and never reads past the buffer: every
 * read is bounds-checked, so the text needs no terminating NUL. It is stricter than
 * lua-cjson on purpose: cjson lets strtod judge numbers ("1.", "-.5" pass), takes raw
 * control bytes inside strings, and stops at a NUL byte; this scanner refuses all three,
 * and loghaul.json runs it before cjson, so "accepted" means RFC 8259 everywhere. Like
 * cjson it refuses an unpaired UTF-16 surrogate escape and does not validate UTF-8. */
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "loghaul.h"
#include "options.h"

/* A container being scanned. `onpath`: paths whose leading keys lead to this container;
 * `next`: paths whose next component matched the current member's key (objects) or the
 * element position (arrays, a wildcard component); `target`: paths this container itself
 * is the value of, reported with `start` when it closes. */
typedef struct {
    unsigned char kind; /* '{' or '[' */
    unsigned char expect;
    unsigned onpath, next, target;
    size_t start;
} frame_t;

enum { X_VALUE_OR_CLOSE, X_VALUE, X_KEY_OR_CLOSE, X_KEY, X_COLON, X_COMMA_OR_CLOSE };

static const char *const error_text[] = {
    [JS_OK] = "no error",
    [JS_EMPTY] = "no JSON value (empty text)",
    [JS_SYNTAX] = "unexpected byte",
    [JS_TRUNCATED] = "the text ends inside a value",
    [JS_NUMBER] = "malformed number",
    [JS_STRING] = "malformed string escape",
    [JS_CONTROL] = "raw control byte inside a string",
    [JS_SURROGATE] = "unpaired UTF-16 surrogate escape",
    [JS_DEPTH] = "nested too deeply (more than 64 levels)",
    [JS_TRAILING] = "more text after the JSON value",
    [JS_NUL] = "a NUL byte after the JSON value",
};

const char *lh_json_error_text(int code)
{
    return code >= 0 && code < JS_NCODES ? error_text[code] : "unknown error";
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The 4 hex digits at s[i..i+3] as a code unit, or -1. */
static long hex4(const unsigned char *s, size_t n, size_t i)
{
    long v = 0;
    size_t k;
    if (i > n || n - i < 4)
        return -1;
    for (k = 0; k < 4; k++) {
        int h = hexval(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Bytes that end the fast path inside a string: the quote, the backslash, control bytes. */
static const unsigned char string_stop[256] = {
    [0 ... 31] = 1, ['"'] = 1, ['\\'] = 1,
};

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The first byte at or after i that ends the fast path (or n): eight bytes at a time while
 * none of them is a quote, a backslash or a control byte (exact word tests), then bytewise. */
static size_t skip_plain(const unsigned char *s, size_t n, size_t i)
{
    for (;;) {
        size_t lim;
        while (n - i >= 8) {
            uint64_t v, q, b;
            memcpy(&v, s + i, 8);
            q = v ^ (ONES * '"');
            b = v ^ (ONES * '\\');
            if ((((q - ONES) & ~q) | ((b - ONES) & ~b) | ((v - ONES * 0x20) & ~v)) & HIGHS)
                break;
            i += 8;
        }
        lim = n - i > 8 ? i + 8 : n;
        while (i < lim && !string_stop[s[i]])
            i++;
        if (i < lim || i >= n)
            return i;
    }
}

/* Scans the string whose opening quote is at s[*pos]; *pos ends just past the closing quote.
 * *escaped is set when it holds a backslash. Returns JS_OK or an error (*pos at the fault). */
static int scan_string(const unsigned char *s, size_t n, size_t *pos, int *escaped)
{
    size_t i = *pos + 1;
    *escaped = 0;
    for (;;) {
        unsigned char c;
        i = skip_plain(s, n, i);
        if (i >= n) {
            *pos = n;
            return JS_TRUNCATED;
        }
        c = s[i];
        if (c == '"') {
            *pos = i + 1;
            return JS_OK;
        }
        if (c < 0x20) {
            *pos = i;
            return JS_CONTROL;
        }
        /* a backslash */
        *escaped = 1;
        if (i + 1 >= n) {
            *pos = n;
            return JS_TRUNCATED;
        }
        c = s[i + 1];
        if (c == 'u') {
            long u = hex4(s, n, i + 2);
            if (u < 0) {
                *pos = i;
                return n - i < 6 ? JS_TRUNCATED : JS_STRING;
            }
            if (u >= 0xDC00 && u <= 0xDFFF) {
                *pos = i;
                return JS_SURROGATE;
            }
            if (u >= 0xD800 && u <= 0xDBFF) {
                long lo;
                lo = n - i >= 12 && s[i + 6] == '\\' && s[i + 7] == 'u' ? hex4(s, n, i + 8) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    *pos = i;
                    return JS_SURROGATE;
                }
                i += 12;
            } else {
                i += 6;
            }
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
                   c == 't') {
            i += 2;
        } else {
            *pos = i;
            return JS_STRING;
        }
    }
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? starting at s[*pos]. */
static int scan_number(const unsigned char *s, size_t n, size_t *pos)
{
    size_t i = *pos;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n) {
        *pos = i;
        return JS_NUMBER;
    }
    if (s[i] == '0') {
        i++;
        if (i < n && is_digit(s[i])) {
            *pos = i;
            return JS_NUMBER; /* a leading zero */
        }
    } else if (is_digit(s[i])) {
        while (i < n && is_digit(s[i]))
            i++;
    } else {
        *pos = i;
        return JS_NUMBER;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i])) {
            *pos = i;
            return JS_NUMBER; /* "1.", "1e": what cjson's strtod may take */
        }
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i])) {
            *pos = i;
            return JS_NUMBER; /* "1.", "1e": what cjson's strtod may take */
        }
        while (i < n && is_digit(s[i]))
            i++;
    }
    *pos = i;
    return JS_OK;
}

/* Whether the JSON string token s[a..b) (quotes included) decodes to exactly key[0..klen). */
static int key_equals(const unsigned char *s, size_t a, size_t b, int escaped, const char *key, size_t klen)
{
    size_t i = a + 1, end = b - 1, k = 0;
    if (!escaped)
        return end - i == klen && memcmp(s + i, key, klen) == 0;
    while (i < end) {
        unsigned char out[4];
        size_t m = 1, q;
        if (s[i] != '\\') {
            out[0] = s[i++];
        } else {
            unsigned char c = s[i + 1];
            if (c == 'u') {
                unsigned long u = (unsigned long)hex4(s, end, i + 2);
                i += 6;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    u = 0x10000 + ((u - 0xD800) << 10) + ((unsigned long)hex4(s, end, i + 2) - 0xDC00);
                    i += 6;
                }
                if (u < 0x80) {
                    out[0] = (unsigned char)u;
                } else if (u < 0x800) {
                    out[0] = (unsigned char)(0xC0 | (u >> 6));
                    out[1] = (unsigned char)(0x80 | (u & 0x3F));
                    m = 2;
                } else if (u < 0x10000) {
                    out[0] = (unsigned char)(0xE0 | (u >> 12));
                    out[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
                    out[2] = (unsigned char)(0x80 | (u & 0x3F));
                    m = 3;
                } else {
                    out[0] = (unsigned char)(0xF0 | (u >> 18));
                    out[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3F));
                    out[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
                    out[3] = (unsigned char)(0x80 | (u & 0x3F));
                    m = 4;
                }
            } else {
                out[0] = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
                i += 2;
            }
        }
        for (q = 0; q < m; q++) {
            if (k >= klen || (unsigned char)key[k] != out[q])
                return 0;
            k++;
        }
    }
    return k == klen;
}

static size_t skip_ws(const unsigned char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    return i;
}

/* The paths (bits) whose component at `depth` (0-based) matches the current member key or
 * element, among `mask`. */
static unsigned match_next(const lh_json_scan_t *sc, unsigned mask, int depth, const unsigned char *s, size_t a,
                           size_t b, int escaped, int is_key)
{
    unsigned out = 0;
    int p;
    for (p = 0; mask != 0; p++, mask >>= 1) {
        const lh_json_key_t *k;
        if (!(mask & 1) || sc->paths[p].len <= depth)
            continue;
        k = &sc->paths[p].keys[depth];
        if (k->key == NULL ? !is_key : (is_key && key_equals(s, a, b, escaped, k->key, k->len)))
            out |= 1u << p;
    }
    return out;
}

/* Paths of `mask` that end at `depth` (their last component was matched at depth-1). */
static unsigned ending_at(const lh_json_scan_t *sc, unsigned mask, int depth)
{
    unsigned out = 0;
    int p;
    for (p = 0; mask != 0; p++, mask >>= 1)
        if ((mask & 1) && sc->paths[p].len == depth)
            out |= 1u << p;
    return out;
}

static void report(lh_json_scan_t *sc, unsigned target, size_t a, size_t b)
{
    int p;
    for (p = 0; target != 0; p++, target >>= 1)
        if (target & 1)
            sc->on_value(sc->ud, p, a, b);
}

int lh_json_scan(lh_json_scan_t *sc, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    frame_t st[LH_JSON_MAX_DEPTH + 1];
    int depth = 0; /* open containers */
    size_t i = skip_ws(s, n, 0);
    unsigned all = sc->npaths >= 32 ? ~0u : (1u << sc->npaths) - 1;
    /* the value about to start: which paths it is the target of, which lead into it */
    unsigned vtarget = ending_at(sc, all, 0), vonpath = all;

    sc->error = JS_OK;
    if (i >= n) {
        sc->error = JS_EMPTY;
        sc->error_at = i;
        return -1;
    }
    for (;;) {
        frame_t *f;
        unsigned char c;
        /* a value starts at i */
        if (i >= n) {
            sc->error = JS_TRUNCATED;
            goto fail;
        }
        c = s[i];
        if (c == '{' || c == '[') {
            if (depth >= LH_JSON_MAX_DEPTH) {
                sc->error = JS_DEPTH;
                goto fail;
            }
            f = &st[++depth];
            f->kind = c;
            f->expect = c == '{' ? X_KEY_OR_CLOSE : X_VALUE_OR_CLOSE;
            f->onpath = vonpath & ~vtarget;
            f->target = vtarget;
            f->start = i;
            f->next = 0;
            i++;
        } else {
            size_t a = i;
            int rc, esc;
            if (c == '"')
                rc = scan_string(s, n, &i, &esc);
            else if (c == '-' || is_digit(c))
                rc = scan_number(s, n, &i);
            else if (c == 't' || c == 'f' || c == 'n') {
                const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
                size_t wl = strlen(w);
                if (n - i < wl) {
                    rc = memcmp(s + i, w, n - i) == 0 ? JS_TRUNCATED : JS_SYNTAX;
                    if (rc == JS_TRUNCATED)
                        i = n;
                } else if (memcmp(s + i, w, wl) == 0) {
                    rc = JS_OK;
                    i += wl;
                } else {
                    rc = JS_SYNTAX;
                }
            } else {
                rc = JS_SYNTAX;
            }
            if (rc != JS_OK) {
                sc->error = rc;
                goto fail;
            }
            if (vtarget)
                report(sc, vtarget, a, i);
        }
        /* after a value (or an opening bracket): structure until the next value starts */
        for (;;) {
            if (depth == 0) {
                i = skip_ws(s, n, i);
                if (i < n) {
                    sc->error = s[i] == 0 ? JS_NUL : JS_TRAILING;
                    goto fail;
                }
                return 0;
            }
            f = &st[depth];
            i = skip_ws(s, n, i);
            if (i >= n) {
                sc->error = JS_TRUNCATED;
                goto fail;
            }
            c = s[i];
            switch (f->expect) {
            case X_VALUE_OR_CLOSE:
            case X_COMMA_OR_CLOSE:
                if (c == ']' && f->kind == '[') {
                    i++;
                    if (f->target)
                        report(sc, f->target, f->start, i);
                    depth--;
                    continue;
                }
                if (c == '}' && f->kind == '{' && f->expect == X_COMMA_OR_CLOSE) {
                    i++;
                    if (f->target)
                        report(sc, f->target, f->start, i);
                    depth--;
                    continue;
                }
                if (f->expect == X_VALUE_OR_CLOSE)
                    break; /* an element starts */
                if (c != ',') {
                    sc->error = JS_SYNTAX;
                    goto fail;
                }
                i++;
                f->expect = f->kind == '[' ? X_VALUE : X_KEY;
                continue;
            case X_KEY_OR_CLOSE:
                if (c == '}') {
                    i++;
                    if (f->target)
                        report(sc, f->target, f->start, i);
                    depth--;
                    continue;
                }
                /* fall through */
            case X_KEY: {
                size_t a = i;
                int rc, esc;
                if (c != '"') {
                    sc->error = JS_SYNTAX;
                    goto fail;
                }
                rc = scan_string(s, n, &i, &esc);
                if (rc != JS_OK) {
                    sc->error = rc;
                    goto fail;
                }
                f->next = f->onpath ? match_next(sc, f->onpath, depth - 1, s, a, i, esc, 1) : 0;
                f->expect = X_COLON;
                continue;
            }
            case X_COLON:
                if (c != ':') {
                    sc->error = JS_SYNTAX;
                    goto fail;
                }
                i++;
                f->expect = X_VALUE;
                continue;
            case X_VALUE:
                break;
            }
            /* the next value of container f starts at i */
            if (f->kind == '[')
                f->next = f->onpath ? match_next(sc, f->onpath, depth - 1, s, i, i, 0, 0) : 0;
            vonpath = f->next;
            vtarget = ending_at(sc, f->next, depth);
            f->expect = X_COMMA_OR_CLOSE;
            break;
        }
    }
fail:
    sc->error_at = i;
    return -1;
}

/* ------------------------------------------------------------------------------------------
 * Lua functions */

void lh_json_push_error(lua_State *L, const lh_json_scan_t *sc)
{
    lua_pushnil(L);
    lua_pushfstring(L, "malformed JSON at byte offset %d: %s", (int)sc->error_at, lh_json_error_text(sc->error));
}

/* Reads the Lua list of keys at idx into keys[] (at most LH_JSON_MAX_DEPTH), each string
 * anchored on the stack. Returns the length; raises on a non-string key. */
static int read_path(lua_State *L, int idx, lh_json_key_t *keys, int argn)
{
    int k, len;
    luaL_checktype(L, idx, LUA_TTABLE);
    len = (int)lua_rawlen(L, idx);
    if (len > LH_JSON_MAX_DEPTH)
        luaL_argerror(L, argn, "path longer than 64 keys");
    luaL_checkstack(L, len + 8, "json path");
    for (k = 0; k < len; k++) {
        lua_rawgeti(L, idx, k + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, argn, "path keys must be strings");
        keys[k].key = lua_tolstring(L, -1, &keys[k].len);
    }
    return len;
}

typedef struct {
    size_t a[LH_JSON_MAX_PATHS], b[LH_JSON_MAX_PATHS];
    int found[LH_JSON_MAX_PATHS];
} at_result_t;

static void on_at(void *ud, int p, size_t a, size_t b)
{
    at_result_t *r = ud;
    r->a[p] = a;
    r->b[p] = b;
    r->found[p] = 1;
}

/* The JSON type of the value whose first byte is c. */
static const char *type_name(char c)
{
    switch (c) {
    case '{': return "object";
    case '[': return "array";
    case '"': return "string";
    case 't': case 'f': return "boolean";
    case 'n': return "null";
    default: return "number";
    }
}

static const char *text_arg(lua_State *L, int idx, size_t *n)
{
    return luaL_checklstring(L, idx, n); /* anchored: an argument */
}

/// The raw text of the values at paths of object keys, exactly as it appears in `text`.
// The whole text is validated first (RFC 8259: one value, whitespace around it allowed;
// at most 64 levels deep). A repeated key takes its last occurrence, as lua-cjson does;
// a path through a non-object (an array, a string) finds nothing. Up to 16 paths are
// found in one pass.
// @function json_at
// @tparam string text JSON text
// @tparam {string,...} path e.g. `{ "response", "cursor" }`; `{}` is the whole value; with
//   `type = true` in the path table (`{ "response", type = true }`) the value's JSON type is
//   returned instead of its text ("object", "array", "string", "number", "boolean", "null"),
//   so a large value is not copied only to be looked at
// @tparam[opt] {string,...} ... more paths
// @return for each path its raw text (a string) or `false` when absent; or nil and a
//   message naming the byte offset of the fault when the text is not well-formed JSON
static int l_json_at(lua_State *L)
{
    size_t n;
    const char *text = text_arg(L, 1, &n);
    int np = lua_gettop(L) - 1, p;
    lh_json_key_t keys[LH_JSON_MAX_PATHS][LH_JSON_MAX_DEPTH];
    lh_json_path_t paths[LH_JSON_MAX_PATHS];
    at_result_t r;
    lh_json_scan_t sc;
    int want_type[LH_JSON_MAX_PATHS];
    if (np < 1)
        return luaL_argerror(L, 2, "path expected");
    if (np > LH_JSON_MAX_PATHS)
        return luaL_argerror(L, LH_JSON_MAX_PATHS + 2, "at most 16 paths");
    for (p = 0; p < np; p++) {
        paths[p].keys = keys[p];
        paths[p].len = read_path(L, p + 2, keys[p], p + 2);
        lua_pushliteral(L, "type");
        lua_rawget(L, p + 2);
        want_type[p] = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    memset(&r, 0, sizeof r);
    memset(&sc, 0, sizeof sc);
    sc.paths = paths;
    sc.npaths = np;
    sc.on_value = on_at;
    sc.ud = &r;
    if (lh_json_scan(&sc, text, n) != 0) {
        lh_json_push_error(L, &sc);
        return 2;
    }
    luaL_checkstack(L, np, "json_at");
    for (p = 0; p < np; p++) {
        if (!r.found[p])
            lua_pushboolean(L, 0);
        else if (want_type[p])
            lua_pushstring(L, type_name(text[r.a[p]]));
        else
            lua_pushlstring(L, text + r.a[p], r.b[p] - r.a[p]);
    }
    return np;
}

/// Whether `text` is exactly one well-formed JSON value (RFC 8259; whitespace around it
// allowed; at most 64 levels deep).
// @function json_valid
// @tparam string text
// @treturn boolean true, or false and a message naming the byte offset of the fault
static int l_json_valid(lua_State *L)
{
    size_t n;
    const char *text;
    lh_json_scan_t sc;
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "not a string");
        return 2;
    }
    text = lua_tolstring(L, 1, &n);
    memset(&sc, 0, sizeof sc);
    if (lh_json_scan(&sc, text, n) != 0) {
        lh_json_push_error(L, &sc);
        lua_pushboolean(L, 0);
        lua_replace(L, -3);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

void lh_json_read_filter(lua_State *L, int idx, lh_json_filter_t *f)
{
    static const char *const keys[] = {"key", "first", "last", "skip", "seen", "indices", NULL};
    memset(f, 0, sizeof *f);
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lh_check_keys(L, idx, "filter", keys);
    luaL_checkstack(L, 8, "json filter");
    f->on = 1;
    /* each read once and left on the stack: the pointers stay valid while the filter is used,
     * whatever an __index made up */
    f->key.key = lh_push_string_field(L, idx, "filter", "key", &f->key.len);
    f->first = lh_push_string_field(L, idx, "filter", "first", &f->flen);
    f->last = lh_push_string_field(L, idx, "filter", "last", &f->llen);
    if (f->key.key == NULL)
        luaL_error(L, "filter: field 'key' (string expected, got nil)");
    if (lh_getfield(L, idx, "skip") == LUA_TTABLE)
        f->skip_idx = lua_gettop(L);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "filter: bad option 'skip' (table expected)");
    if (lh_getfield(L, idx, "seen") == LUA_TTABLE)
        f->seen_idx = lua_gettop(L);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "filter: bad option 'seen' (table expected)");
}

int lh_json_locate_array(lua_State *L, const char *text, size_t n, int path_idx, size_t *a, size_t *b)
{
    lh_json_key_t keys[LH_JSON_MAX_DEPTH];
    lh_json_path_t path;
    at_result_t r;
    lh_json_scan_t sc;
    int top = lua_gettop(L);
    path.keys = keys;
    path.len = read_path(L, path_idx, keys, path_idx);
    memset(&r, 0, sizeof r);
    memset(&sc, 0, sizeof sc);
    sc.paths = &path;
    sc.npaths = 1;
    sc.on_value = on_at;
    sc.ud = &r;
    if (lh_json_scan(&sc, text, n) != 0) {
        lua_settop(L, top);
        lh_json_push_error(L, &sc);
        return -1;
    }
    lua_settop(L, top);
    if (!r.found[0] || text[r.a[0]] == 'n')
        return 0;
    if (text[r.a[0]] != '[') {
        lua_pushnil(L);
        lua_pushfstring(L, "the value at the path is %s, not an array",
                        text[r.a[0]] == '{' ? "an object" : text[r.a[0]] == '"' ? "a string" : "a scalar");
        return -1;
    }
    *a = r.a[0];
    *b = r.b[0];
    return 1;
}

typedef struct {
    const char *text;
    size_t ka, kb; /* the current element's key value, ka == kb when none */
    size_t count;
    const lh_json_filter_t *f;
    lua_State *L;
    lh_json_elem_fn fn;
    void *ud;
} each_t;

static int starts_with(const char *text, size_t ka, size_t kb, const char *p, size_t plen)
{
    /* the key's value is a string token: compare its bytes after the opening quote */
    return p != NULL && kb > ka && text[ka] == '"' && kb - ka - 2 >= plen && memcmp(text + ka + 1, p, plen) == 0;
}

/* Whether the filter skips element [a, b); counts kept boundary elements into seen. */
static int filter_skips(each_t *e, size_t a, size_t b)
{
    const lh_json_filter_t *f = e->f;
    lua_State *L = e->L;
    int skip = 0;
    if (f->skip_idx && starts_with(e->text, e->ka, e->kb, f->first, f->flen)) {
        lua_Number k;
        lua_pushlstring(L, e->text + a, b - a);
        lua_pushvalue(L, -1);
        lua_rawget(L, f->skip_idx);
        k = lua_tonumber(L, -1);
        lua_pop(L, 1);
        if (k >= 1) {
            skip = 1;
            if (k > 1)
                lua_pushinteger(L, (lua_Integer)k - 1);
            else
                lua_pushnil(L);
            lua_rawset(L, f->skip_idx);
        } else {
            lua_pop(L, 1);
        }
    }
    if (!skip && f->seen_idx && starts_with(e->text, e->ka, e->kb, f->last, f->llen)) {
        lua_Number k;
        lua_pushlstring(L, e->text + a, b - a);
        lua_pushvalue(L, -1);
        lua_rawget(L, f->seen_idx);
        k = lua_tonumber(L, -1);
        lua_pop(L, 1);
        lua_pushinteger(L, (lua_Integer)k + 1);
        lua_rawset(L, f->seen_idx);
    }
    return skip;
}

static void on_element(void *ud, int p, size_t a, size_t b)
{
    each_t *e = ud;
    if (p == 1) { /* the filter key of the current element: the last occurrence counts */
        e->ka = a;
        e->kb = b;
        return;
    }
    e->count++;
    e->fn(e->ud, a, b, !(e->f->on && filter_skips(e, a, b)));
    e->ka = e->kb = 0;
}

size_t lh_json_each_element(lua_State *L, const char *text, size_t a, size_t b, const lh_json_filter_t *f,
                            lh_json_elem_fn fn, void *ud)
{
    lh_json_key_t any[2];
    lh_json_path_t paths[2];
    lh_json_scan_t sc;
    each_t e;
    any[0].key = NULL;
    any[0].len = 0;
    any[1] = f->key;
    paths[0].keys = any;
    paths[0].len = 1;
    paths[1].keys = any;
    paths[1].len = 2;
    memset(&e, 0, sizeof e);
    e.text = text + a; /* offsets below are relative to the array */
    e.f = f;
    e.L = L;
    e.fn = fn;
    e.ud = ud;
    memset(&sc, 0, sizeof sc);
    sc.paths = paths;
    sc.npaths = f->on ? 2 : 1;
    sc.on_value = on_element;
    sc.ud = &e;
    luaL_checkstack(L, 8, "json elements");
    (void)lh_json_scan(&sc, text + a, b - a); /* validated already: it cannot fail */
    return e.count;
}

typedef struct {
    lua_State *L;
    const char *text;
    int list, indices;
    lua_Integer n, index;
} collect_t;

static void collect(void *ud, size_t a, size_t b, int keep)
{
    collect_t *c = ud;
    c->index++;
    if (c->indices) {
        if (!keep) {
            lua_pushinteger(c->L, c->index);
            lua_rawseti(c->L, c->list, (int)++c->n);
        }
    } else if (keep) {
        lua_pushlstring(c->L, c->text + a, b - a);
        lua_rawseti(c->L, c->list, (int)++c->n);
    }
}

/// The raw texts of the elements of the array at a path of object keys, byte for byte.
// The whole text is validated first, as by `json_at`. With a `filter`, the elements a
// cursor loop already yielded on a boundary second are left out: `filter = { key =,
// first =, last =, skip =, seen = }` where an element whose string member `key` starts
// with `first` is skipped while the multiset `skip` (raw text -> count) still holds it
// (the count is decremented), and a kept element whose `key` starts with `last` is
// counted into `seen` (raw text -> count). With `filter.indices = true` the list holds
// the (1-based) indices of the skipped elements instead of the texts of the kept ones.
// @function json_array
// @tparam string text JSON text
// @tparam {string,...} path e.g. `{ "response", "dataSet" }`
// @tparam[opt] table filter
// @return the list of raw texts and the array's element count (before filtering); `false`
//   when the path is absent or its value is `null`; or nil and a message when the text is
//   malformed (naming the byte offset) or the value is not an array
static int l_json_array(lua_State *L)
{
    size_t n, a, b, total;
    const char *text = text_arg(L, 1, &n);
    lh_json_filter_t f;
    collect_t c;
    int rc;
    lua_settop(L, 3);
    rc = lh_json_locate_array(L, text, n, 2, &a, &b);
    if (rc < 0)
        return 2;
    if (rc == 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lh_json_read_filter(L, 3, &f);
    memset(&c, 0, sizeof c);
    c.indices = f.on && lh_opt_boolean(L, 3, "indices", 0);
    lua_newtable(L);
    c.L = L;
    c.list = lua_gettop(L);
    c.text = text + a;
    total = lh_json_each_element(L, text, a, b, &f, collect, &c);
    lua_pushinteger(L, (lua_Integer)total);
    return 2;
}

#define NORMALIZE_DEPTH 64

/* null -> absent; on Lua 5.3+ whole floats -> integers. The table is at idx (absolute). */
static void normalize_table(lua_State *L, int idx, int depth)
{
    luaL_checkstack(L, 6, "json_normalize");
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int t = lua_type(L, -1);
        if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL) { /* cjson.null */
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, idx); /* assigning nil to an existing field is allowed while traversing */
            continue;
        }
#if LUA_VERSION_NUM >= 503
        if (t == LUA_TNUMBER && !lua_isinteger(L, -1)) {
            int isint;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            if (isint) {
                lua_pop(L, 1);
                lua_pushvalue(L, -1);
                lua_pushinteger(L, v);
                lua_rawset(L, idx);
                continue;
            }
        }
#endif
        if (t == LUA_TTABLE && depth < NORMALIZE_DEPTH)
            normalize_table(L, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
}

/// Normalises a value decoded by lua-cjson, in place: JSON `null` (`cjson.null`) becomes
// absent, and where Lua has integers (5.3+) whole floats become integers (math.tointeger's
// rule). Nested tables are walked down to 64 levels (the decoder's own limit).
// @function json_normalize
// @param v the decoded value
// @return v, or nil when v itself is `null`
static int l_json_normalize(lua_State *L)
{
    int t;
    lua_settop(L, 1);
    t = lua_type(L, 1);
    if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, 1) == NULL) {
        lua_pushnil(L);
        return 1;
    }
#if LUA_VERSION_NUM >= 503
    if (t == LUA_TNUMBER && !lua_isinteger(L, 1)) {
        int isint;
        lua_Integer v = lua_tointegerx(L, 1, &isint);
        if (isint)
            lua_pushinteger(L, v);
        else
            lua_pushvalue(L, 1);
        return 1;
    }
#endif
    if (t == LUA_TTABLE)
        normalize_table(L, 1, 1);
    lua_settop(L, 1);
    return 1;
}

void lh_open_json(lua_State *L)
{
    static const luaL_Reg fns[] = {{"json_at", l_json_at},
                                   {"json_array", l_json_array},
                                   {"json_valid", l_json_valid},
                                   {"json_normalize", l_json_normalize},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
