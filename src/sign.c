/* sign.c: the three vendor request signers (auth-v2, SDK-HMAC-SHA256, ZC2-HMAC-SHA256).
 *
 * Pure functions: a table of inputs in, a table out with the headers to send plus the
 * intermediate strings (for tests and for debugging a 401). The algorithms are the ones
 * in VENDORS.md; DEVELOPERS.md fixes the Lua-facing fields.
 *
 * Memory: every scratch string and array lives in Lua (an "anchor" table at stack slot 2),
 * so raising an error half way through never leaks, and the pointers we keep into those
 * strings stay valid until the function returns. Strings are built with luaL_Buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loghaul.h"

#define ANCHOR 2 /* stack slot of the table that keeps scratch values alive */

typedef struct {
    const char *fn; /* the Lua-facing name, for error messages */
    int n;          /* values anchored so far */
} ctx;

/* One header or query parameter. k/v are the forms written into the canonical text;
 * rk/rv are the raw forms, used where an algorithm sorts on them. */
typedef struct {
    const char *k, *v, *rk, *rv;
    size_t kl, vl, rkl, rvl;
} pair;

static void begin(lua_State *L, ctx *c, const char *fn)
{
    c->fn = fn;
    c->n = 0;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L); /* ANCHOR */
}

/* Moves the value on top of the stack into the anchor table. */
static void anchor(lua_State *L, ctx *c)
{
    lua_rawseti(L, ANCHOR, ++c->n);
}

/* Anchors the string on top of the stack and returns it. */
static const char *anchor_str(lua_State *L, ctx *c, size_t *len)
{
    const char *s = lua_tolstring(L, -1, len);
    anchor(L, c);
    return s;
}

/* String field of the argument table: NULL when absent and optional; raises otherwise.
 * The value is anchored: the argument table may have an __index that made it up. */
static const char *field(lua_State *L, ctx *c, const char *name, int required, size_t *len)
{
    int t = lh_getfield(L, 1, name);
    if (t == LUA_TSTRING)
        return anchor_str(L, c, len);
    if (t != LUA_TNIL || required)
        luaL_error(L, "%s: field '%s' (string expected, got %s)", c->fn, name, lua_typename(L, t));
    lua_pop(L, 1);
    *len = 0;
    return NULL;
}

/* Table field of the argument table, left on top of the stack (and anchored); 0 when absent. */
static int table_field(lua_State *L, ctx *c, const char *name, int required)
{
    int t = lh_getfield(L, 1, name);
    if (t == LUA_TTABLE) {
        lua_pushvalue(L, -1);
        anchor(L, c);
        return 1;
    }
    if (t != LUA_TNIL || required)
        luaL_error(L, "%s: field '%s' (table expected, got %s)", c->fn, name, lua_typename(L, t));
    lua_pop(L, 1);
    return 0;
}

static int unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '.' || ch == '_' || ch == '~';
}

/* RFC 3986 percent-encoding, upper-case hex: auth-v2's normalize() and the SDK's escape(). */
static void add_escaped(luaL_Buffer *b, const char *s, size_t n)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (unreserved(ch)) {
            luaL_addchar(b, (char)ch);
        } else {
            char e[3] = {'%', digits[ch >> 4], digits[ch & 15]};
            luaL_addlstring(b, e, 3);
        }
    }
}

static const char *push_escaped(lua_State *L, ctx *c, const char *s, size_t n, size_t *len)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    add_escaped(&b, s, n);
    luaL_pushresult(&b);
    return anchor_str(L, c, len);
}

static const char *push_lower(lua_State *L, ctx *c, const char *s, size_t n, size_t *len)
{
    luaL_Buffer b;
    size_t i;
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++)
        luaL_addchar(&b, (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]));
    luaL_pushresult(&b);
    return anchor_str(L, c, len);
}

/* Scratch array owned by Lua's GC. */
static pair *new_pairs(lua_State *L, ctx *c, size_t n)
{
    pair *p = lua_newuserdata(L, n ? n * sizeof *p : 1);
    anchor(L, c);
    return p;
}

/* Anchors the key and the value on top of the stack (key at -2 when from lua_next, or given
 * by index) as one pair; pair i of a table read from anchor slot `base` is at base+2i+1. */
static void anchor_pair(lua_State *L, ctx *c, int key)
{
    lua_pushvalue(L, key);
    anchor(L, c);
    lua_pushvalue(L, -1);
    anchor(L, c);
}

/* The raw key and value of pair i, from the anchor table: they stay alive until we return. */
static void get_anchored_pair(lua_State *L, int base, size_t i, pair *p)
{
    lua_rawgeti(L, ANCHOR, base + 2 * (int)i + 1);
    p->rk = lua_tolstring(L, -1, &p->rkl);
    lua_rawgeti(L, ANCHOR, base + 2 * (int)i + 2);
    p->rv = lua_tolstring(L, -1, &p->rvl);
    lua_pop(L, 2);
}

/* Field 'query': { k = "v" } or { k = { "v1", "v2" } } (one pair per value; an empty
 * array gives none). Keys and values are escaped. Returns the pair count.
 * Each table is read once: the pairs are copied to the anchor table as they are checked
 * (so a finalizer that grows or empties a table later changes nothing we use). */
static size_t get_query(lua_State *L, ctx *c, pair **out)
{
    size_t n = 0, i, j, m;
    int q, base;
    *out = NULL;
    if (!table_field(L, c, "query", 0))
        return 0;
    q = lua_gettop(L);
    base = c->n;
    lua_pushnil(L);
    while (lua_next(L, q)) {
        const char *k;
        int key = lua_gettop(L) - 1;
        if (lua_type(L, key) != LUA_TSTRING)
            luaL_error(L, "%s: field 'query' (string keys expected, got %s)", c->fn, luaL_typename(L, key));
        k = lua_tostring(L, key);
        if (lua_type(L, -1) == LUA_TSTRING) {
            anchor_pair(L, c, key);
            n++;
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            m = lua_rawlen(L, -1);
            for (j = 1; j <= m; j++) {
                lua_rawgeti(L, -1, (int)j);
                if (lua_type(L, -1) != LUA_TSTRING)
                    luaL_error(L, "%s: field 'query.%s[%d]' (string expected, got %s)", c->fn, k, (int)j,
                               luaL_typename(L, -1));
                anchor_pair(L, c, key);
                lua_pop(L, 1);
                n++;
            }
        } else {
            luaL_error(L, "%s: field 'query.%s' (string or array of strings expected, got %s)", c->fn, k,
                       luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1); /* the query table (anchored) */
    *out = new_pairs(L, c, n);
    for (i = 0; i < n; i++) {
        pair *p = &(*out)[i];
        get_anchored_pair(L, base, i, p);
        p->k = push_escaped(L, c, p->rk, p->rkl, &p->kl);
        p->v = push_escaped(L, c, p->rv, p->rvl, &p->vl);
    }
    return n;
}

/* RFC 9110 token characters: what a header name may be made of. */
static int is_token(const char *s, size_t n)
{
    size_t i;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\0' || !(unreserved(ch) || strchr("!#$%&'*+^`|", ch) != NULL))
            return 0;
    }
    return 1;
}

/* What Go's strings.TrimSpace trims, for ASCII. */
static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

enum header_form {
    AUTH_V2, /* k = normalize(lower(name)), v = normalize(value) */
    SDK      /* k = lower(name), v = trim(value) */
};

/* Field 'headers': name -> string value. rk is the lower-cased name, rv the raw value.
 * Room for `extra` more pairs is left at the end. Returns the count read. Read once, as
 * get_query does. */
static size_t get_headers(lua_State *L, ctx *c, enum header_form form, size_t extra, pair **out)
{
    size_t n = 0, i;
    int h, base;
    *out = NULL;
    if (!table_field(L, c, "headers", form == AUTH_V2)) {
        *out = new_pairs(L, c, extra);
        return 0;
    }
    h = lua_gettop(L);
    base = c->n;
    lua_pushnil(L);
    while (lua_next(L, h)) {
        size_t kl;
        const char *k;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: field 'headers' (string names expected, got %s)", c->fn, luaL_typename(L, -2));
        k = lua_tolstring(L, -2, &kl);
        if (!is_token(k, kl))
            luaL_error(L, "%s: field 'headers' (invalid header name '%s')", c->fn, k);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: field 'headers.%s' (string expected, got %s)", c->fn, k, luaL_typename(L, -1));
        anchor_pair(L, c, lua_gettop(L) - 1);
        lua_pop(L, 1);
        n++;
    }
    lua_pop(L, 1); /* the headers table (anchored) */
    *out = new_pairs(L, c, n + extra);
    for (i = 0; i < n; i++) {
        pair *p = &(*out)[i];
        get_anchored_pair(L, base, i, p);
        p->rk = push_lower(L, c, p->rk, p->rkl, &p->rkl);
        if (form == AUTH_V2) {
            p->k = push_escaped(L, c, p->rk, p->rkl, &p->kl);
            p->v = push_escaped(L, c, p->rv, p->rvl, &p->vl);
        } else {
            const char *b = p->rv, *e = p->rv + p->rvl;
            while (b < e && is_space(*b))
                b++;
            while (e > b && is_space(e[-1]))
                e--;
            p->k = p->rk;
            p->kl = p->rkl;
            p->v = b;
            p->vl = (size_t)(e - b);
        }
    }
    return n;
}

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int r = memcmp(a, b, al < bl ? al : bl);
    return r != 0 ? r : (al > bl) - (al < bl);
}

/* Raw key, then raw value: SignedHeaders, and the SDK's "keys sorted, repeated keys by value". */
static int by_raw(const void *x, const void *y)
{
    const pair *a = x, *b = y;
    int r = cmp_bytes(a->rk, a->rkl, b->rk, b->rkl);
    return r != 0 ? r : cmp_bytes(a->rv, a->rvl, b->rv, b->rvl);
}

/* Byte i of the line k sep v. */
static int joined_at(const pair *p, int sep, size_t i)
{
    if (i < p->kl)
        return (unsigned char)p->k[i];
    return i == p->kl ? sep : (unsigned char)p->v[i - p->kl - 1];
}

/* auth-v2 sorts whole lines ("k=v", "k:v"), which is not the same as sorting on k
 * when one key is a prefix of another ("a=1" sorts after "a-b=1"). */
static int cmp_joined(const pair *a, const pair *b, int sep)
{
    size_t al = a->kl + 1 + a->vl, bl = b->kl + 1 + b->vl, i;
    for (i = 0; i < al && i < bl; i++) {
        int d = joined_at(a, sep, i) - joined_at(b, sep, i);
        if (d != 0)
            return d;
    }
    return (al > bl) - (al < bl);
}

static int by_query_line(const void *x, const void *y)
{
    return cmp_joined(x, y, '=');
}

static int by_header_line(const void *x, const void *y)
{
    return cmp_joined(x, y, ':');
}

static void sort_pairs(pair *p, size_t n, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(p, n, sizeof *p, cmp);
}

/* Sorts headers by lower-cased name; two spellings of one name are an error, not a guess. */
static void sort_header_names(lua_State *L, ctx *c, pair *h, size_t n)
{
    size_t i;
    sort_pairs(h, n, by_raw);
    for (i = 1; i < n; i++)
        if (cmp_bytes(h[i - 1].rk, h[i - 1].rkl, h[i].rk, h[i].rkl) == 0)
            luaL_error(L, "%s: field 'headers' (header '%s' given twice)", c->fn, h[i].rk);
}

static int has_header(const pair *h, size_t n, const char *name)
{
    size_t i, len = strlen(name);
    for (i = 0; i < n; i++)
        if (cmp_bytes(h[i].rk, h[i].rkl, name, len) == 0)
            return 1;
    return 0;
}

/* SignedHeaders: the (sorted) lower-case names joined by ';'. */
static const char *push_signed_headers(lua_State *L, ctx *c, const pair *h, size_t n, size_t *len)
{
    luaL_Buffer b;
    size_t i;
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        if (i > 0)
            luaL_addchar(&b, ';');
        luaL_addlstring(&b, h[i].rk, h[i].rkl);
    }
    luaL_pushresult(&b);
    return anchor_str(L, c, len);
}

static void add_pairs(luaL_Buffer *b, const pair *p, size_t n, char sep, char join)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (i > 0)
            luaL_addchar(b, join);
        luaL_addlstring(b, p[i].k, p[i].kl);
        luaL_addchar(b, sep);
        luaL_addlstring(b, p[i].v, p[i].vl);
    }
}

static void sha256_hex(lua_State *L, ctx *c, const char *s, size_t n, char out[65])
{
    if (lh_sha256_hex(s, n, out) != 0)
        luaL_error(L, "%s: OpenSSL SHA-256 failed", c->fn);
}

static void hmac_hex(lua_State *L, ctx *c, const char *key, size_t kl, const char *s, size_t n, char out[65])
{
    unsigned char md[32];
    if (lh_hmac_sha256(key, kl, s, n, md) != 0)
        luaL_error(L, "%s: OpenSSL HMAC failed", c->fn);
    lh_hex(md, sizeof md, out);
}

/* The scheme SDK-HMAC-SHA256 and ZC2-HMAC-SHA256 share: StringToSign is
 * ALGO "\n" timestamp "\n" hex(SHA256(canonical request)), and the signature is
 * hex(HMAC-SHA256(key, StringToSign)). Returns the anchored StringToSign. */
static const char *sign_string(lua_State *L, ctx *c, const char *algo, const char *ts, size_t tsl,
                               const char *cr, size_t crl, const char *key, size_t keyl, size_t *stsl,
                               char sig[65])
{
    char hash[65];
    const char *sts;
    luaL_Buffer b;
    sha256_hex(L, c, cr, crl, hash);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, algo);
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, ts, tsl);
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, hash, 64);
    luaL_pushresult(&b);
    sts = anchor_str(L, c, stsl);
    hmac_hex(L, c, key, keyl, sts, *stsl, sig);
    return sts;
}

static void set_string(lua_State *L, const char *name, const char *s, size_t n)
{
    lua_pushlstring(L, s, n);
    lua_setfield(L, -2, name);
}

/// Huawei CC-CMS `auth-v2` signature.
// Every header given is signed (host is required); the query line is left out when there is
// no query; a non-empty body is appended (a multipart upload signs an empty payload).
// @function sign_auth_v2
// @tparam table t `{ access_key, secret_key, timestamp = "2024-01-02T03:04:05Z", method, path,
// query = { k = "v" | { "v1", "v2" } }?, headers = { host = ..., ... }, body? }`
// @treturn table `{ headers = { Authorization = }, signing_key, canonical_request, signed_headers, signature }`
static int l_sign_auth_v2(lua_State *L)
{
    ctx c;
    size_t akl, skl, tsl, ml, pl, bl, nq, nh, shl, prl, crl, al;
    const char *ak, *sk, *ts, *method, *path, *body, *sh, *prefix, *cr, *auth;
    pair *q, *h;
    char key[65], sig[65];
    luaL_Buffer b;

    begin(L, &c, "sign_auth_v2");
    ak = field(L, &c, "access_key", 1, &akl);
    sk = field(L, &c, "secret_key", 1, &skl);
    ts = field(L, &c, "timestamp", 1, &tsl);
    method = field(L, &c, "method", 1, &ml);
    path = field(L, &c, "path", 1, &pl);
    body = field(L, &c, "body", 0, &bl);
    nq = get_query(L, &c, &q);
    nh = get_headers(L, &c, AUTH_V2, 0, &h);
    sort_header_names(L, &c, h, nh);
    if (!has_header(h, nh, "host"))
        luaL_error(L, "%s: field 'headers.host' (string expected, got nil)", c.fn);
    sh = push_signed_headers(L, &c, h, nh, &shl);

    luaL_buffinit(L, &b); /* authStringPrefix */
    luaL_addstring(&b, "auth-v2/");
    luaL_addlstring(&b, ak, akl);
    luaL_addchar(&b, '/');
    luaL_addlstring(&b, ts, tsl);
    luaL_addchar(&b, '/');
    luaL_addlstring(&b, sh, shl);
    luaL_pushresult(&b);
    prefix = anchor_str(L, &c, &prl);
    hmac_hex(L, &c, sk, skl, prefix, prl, key);

    sort_pairs(q, nq, by_query_line);
    sort_pairs(h, nh, by_header_line);
    luaL_buffinit(L, &b); /* CanonicalRequest */
    luaL_addlstring(&b, method, ml);
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, path, pl);
    luaL_addchar(&b, '\n');
    if (nq > 0) { /* no query: no line at all */
        add_pairs(&b, q, nq, '=', '&');
        luaL_addchar(&b, '\n');
    }
    luaL_addlstring(&b, sh, shl);
    luaL_addchar(&b, '\n');
    add_pairs(&b, h, nh, ':', '\n');
    luaL_addchar(&b, '\n');
    add_escaped(&b, body ? body : "", bl); /* a multipart upload signs an empty payload */
    luaL_pushresult(&b);
    cr = anchor_str(L, &c, &crl);
    /* The key is the hex TEXT of the first HMAC, not its 32 raw bytes. */
    hmac_hex(L, &c, key, 64, cr, crl, sig);

    luaL_buffinit(L, &b);
    luaL_addlstring(&b, prefix, prl);
    luaL_addchar(&b, '/');
    luaL_addlstring(&b, sig, 64);
    luaL_pushresult(&b);
    auth = anchor_str(L, &c, &al);

    lua_createtable(L, 0, 5);
    lua_createtable(L, 0, 1);
    set_string(L, "Authorization", auth, al);
    lua_setfield(L, -2, "headers");
    set_string(L, "signing_key", key, 64);
    set_string(L, "canonical_request", cr, crl);
    set_string(L, "signed_headers", sh, shl);
    set_string(L, "signature", sig, 64);
    return 1;
}

static int is_hex64(const char *s, size_t n)
{
    size_t i;
    if (n != 64)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

/// Huawei Cloud `SDK-HMAC-SHA256` (AK/SK) signature.
// Signs the given headers plus X-Sdk-Date (added from `date`); the canonical URI gets its
// trailing '/'; repeated query keys are sorted by value.
// @function sign_sdk_hmac_sha256
// @tparam table t `{ access_key, secret_key, date = "20060102T150405Z", method, path, query?,
// headers?, body? | body_sha256? (hex) }`
// @treturn table `{ headers = { Authorization =, ["X-Sdk-Date"] = }, canonical_request,
// string_to_sign, signed_headers, signature }`
static int l_sign_sdk(lua_State *L)
{
    ctx c;
    size_t akl, skl, dl, ml, pl, bl, hl, nq, nh, i, shl, crl, stsl, al;
    const char *ak, *sk, *date, *method, *path, *body, *body_hash, *sh, *cr, *sts, *auth;
    pair *q, *h;
    char hash[65], sig[65];
    luaL_Buffer b;

    begin(L, &c, "sign_sdk_hmac_sha256");
    ak = field(L, &c, "access_key", 1, &akl);
    sk = field(L, &c, "secret_key", 1, &skl);
    date = field(L, &c, "date", 1, &dl);
    method = field(L, &c, "method", 1, &ml);
    path = field(L, &c, "path", 1, &pl);
    body = field(L, &c, "body", 0, &bl);
    body_hash = field(L, &c, "body_sha256", 0, &hl);
    if (body != NULL && body_hash != NULL)
        luaL_error(L, "%s: fields 'body' and 'body_sha256' are exclusive (give one)", c.fn);
    if (body_hash != NULL && !is_hex64(body_hash, hl))
        luaL_error(L, "%s: field 'body_sha256' (64 hex digits expected)", c.fn);
    if (body_hash == NULL) {
        sha256_hex(L, &c, body ? body : "", bl, hash);
        body_hash = hash;
        hl = 64;
    }

    nq = get_query(L, &c, &q);
    nh = get_headers(L, &c, SDK, 1, &h);
    if (has_header(h, nh, "x-sdk-date"))
        luaL_error(L, "%s: field 'headers' (X-Sdk-Date comes from field 'date'; leave it out)", c.fn);
    h[nh].rk = h[nh].k = "x-sdk-date";
    h[nh].rkl = h[nh].kl = 10;
    h[nh].rv = h[nh].v = date;
    h[nh].rvl = h[nh].vl = dl;
    nh++;
    sort_header_names(L, &c, h, nh);
    sh = push_signed_headers(L, &c, h, nh, &shl);
    sort_pairs(q, nq, by_raw); /* the Go SDK sorts raw keys, then each key's values */

    luaL_buffinit(L, &b); /* CanonicalRequest */
    luaL_addlstring(&b, method, ml);
    luaL_addchar(&b, '\n');
    /* CanonicalURI: each segment escaped, '/' kept, and always a trailing '/'. */
    for (i = 0; i < pl; i++) {
        if (path[i] == '/')
            luaL_addchar(&b, '/');
        else
            add_escaped(&b, path + i, 1);
    }
    if (pl == 0 || path[pl - 1] != '/')
        luaL_addchar(&b, '/');
    luaL_addchar(&b, '\n');
    add_pairs(&b, q, nq, '=', '&');
    luaL_addchar(&b, '\n');
    for (i = 0; i < nh; i++) { /* each header line ends in '\n': a blank line follows */
        add_pairs(&b, &h[i], 1, ':', '\n');
        luaL_addchar(&b, '\n');
    }
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, sh, shl);
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, body_hash, hl);
    luaL_pushresult(&b);
    cr = anchor_str(L, &c, &crl);

    sts = sign_string(L, &c, "SDK-HMAC-SHA256", date, dl, cr, crl, sk, skl, &stsl, sig);

    luaL_buffinit(L, &b);
    luaL_addstring(&b, "SDK-HMAC-SHA256 Access=");
    luaL_addlstring(&b, ak, akl);
    luaL_addstring(&b, ", SignedHeaders=");
    luaL_addlstring(&b, sh, shl);
    luaL_addstring(&b, ", Signature=");
    luaL_addlstring(&b, sig, 64);
    luaL_pushresult(&b);
    auth = anchor_str(L, &c, &al);

    lua_createtable(L, 0, 5);
    lua_createtable(L, 0, 2);
    set_string(L, "Authorization", auth, al);
    set_string(L, "X-Sdk-Date", date, dl);
    lua_setfield(L, -2, "headers");
    set_string(L, "canonical_request", cr, crl);
    set_string(L, "string_to_sign", sts, stsl);
    set_string(L, "signed_headers", sh, shl);
    set_string(L, "signature", sig, 64);
    return 1;
}

/* X-ZC-Timestamp: Unix seconds, given as a string of digits or an integral number. */
static const char *zc2_timestamp(lua_State *L, ctx *c, size_t *len)
{
    int t = lh_getfield(L, 1, "timestamp");
    if (t == LUA_TSTRING) {
        size_t i;
        const char *s = anchor_str(L, c, len);
        for (i = 0; i < *len; i++)
            if (s[i] < '0' || s[i] > '9')
                break;
        if (*len == 0 || i < *len)
            luaL_error(L, "%s: field 'timestamp' (Unix seconds expected, got '%s')", c->fn, s);
        return s;
    }
    if (t == LUA_TNUMBER) {
        char tmp[32];
        lua_Number d = lua_tonumber(L, -1);
        /* Integral, and small enough that the double is exact. */
        if (!(d >= 0 && d <= 9007199254740992.0 && (lua_Number)(long long)d == d))
            luaL_error(L, "%s: field 'timestamp' (Unix seconds expected, got %f)", c->fn, d);
        lua_pop(L, 1);
        snprintf(tmp, sizeof tmp, "%.0f", (double)d);
        lua_pushstring(L, tmp);
        return anchor_str(L, c, len);
    }
    luaL_error(L, "%s: field 'timestamp' (string or integer expected, got %s)", c->fn, lua_typename(L, t));
    return NULL;
}

/// Zenlayer `ZC2-HMAC-SHA256` signature (content-type signed exactly as sent).
// @function sign_zc2
// @tparam table t `{ access_key_id, access_key_password, timestamp = "1673361177" | number, host,
// content_type, body? }`
// @treturn table `{ headers = { Authorization =, ["X-ZC-Timestamp"] =, ["X-ZC-Signature-Method"] = },
// canonical_request, string_to_sign, signature }`
static int l_sign_zc2(lua_State *L)
{
    ctx c;
    size_t idl, pwl, tsl, hostl, ctl, bl, crl, stsl, al;
    const char *id, *pw, *ts, *host, *ct, *body, *cr, *sts, *auth;
    char hash[65], sig[65];
    luaL_Buffer b;

    begin(L, &c, "sign_zc2");
    id = field(L, &c, "access_key_id", 1, &idl);
    pw = field(L, &c, "access_key_password", 1, &pwl);
    ts = zc2_timestamp(L, &c, &tsl);
    host = field(L, &c, "host", 1, &hostl);
    ct = field(L, &c, "content_type", 1, &ctl);
    body = field(L, &c, "body", 0, &bl);

    sha256_hex(L, &c, body ? body : "", bl, hash);
    luaL_buffinit(L, &b); /* CanonicalRequest: a POST to "/" signing content-type and host */
    luaL_addstring(&b, "POST\n/\n\ncontent-type:");
    luaL_addlstring(&b, ct, ctl);
    luaL_addstring(&b, "\nhost:");
    luaL_addlstring(&b, host, hostl);
    luaL_addstring(&b, "\n\ncontent-type;host\n");
    luaL_addlstring(&b, hash, 64);
    luaL_pushresult(&b);
    cr = anchor_str(L, &c, &crl);

    sts = sign_string(L, &c, "ZC2-HMAC-SHA256", ts, tsl, cr, crl, pw, pwl, &stsl, sig);

    luaL_buffinit(L, &b);
    luaL_addstring(&b, "ZC2-HMAC-SHA256 Credential=");
    luaL_addlstring(&b, id, idl);
    luaL_addstring(&b, ", SignedHeaders=content-type;host, Signature=");
    luaL_addlstring(&b, sig, 64);
    luaL_pushresult(&b);
    auth = anchor_str(L, &c, &al);

    lua_createtable(L, 0, 4);
    lua_createtable(L, 0, 3);
    set_string(L, "Authorization", auth, al);
    set_string(L, "X-ZC-Timestamp", ts, tsl);
    lua_pushliteral(L, "ZC2-HMAC-SHA256");
    lua_setfield(L, -2, "X-ZC-Signature-Method");
    lua_setfield(L, -2, "headers");
    set_string(L, "canonical_request", cr, crl);
    set_string(L, "string_to_sign", sts, stsl);
    set_string(L, "signature", sig, 64);
    return 1;
}

void lh_open_sign(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sign_auth_v2", l_sign_auth_v2},
        {"sign_sdk_hmac_sha256", l_sign_sdk},
        {"sign_zc2", l_sign_zc2},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}
