/* libFuzzer target: the JSON scanner (src/json.c), differential against lua-cjson (the
 * Debian module, configured as lua/loghaul/json.lua configures it: depth 64, no invalid
 * numbers). On each input:
 *   - the scanner accepts  => cjson accepts;
 *   - cjson accepts, the scanner refuses => only for what cjson is knowingly lax about
 *     (a number strtod takes but RFC 8259 does not, a raw control byte in a string, a NUL
 *     byte after the value: cjson stops there);
 *   - both accept => the slicing agrees: a top-level array has as many raw elements as cjson
 *     decodes, each raw element decodes to a value deep-equal to cjson's element; each key
 *     of a top-level object is found by json_at with a raw text deep-equal to its value, and
 *     a key that is not there is absent.
 * The comparison is a Lua chunk (below) run in one Lua 5.4 state. */
#include "../src/json.c"

#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const check_chunk =
    "local core, cjson, code = ...\n"
    "local function eq(a, b, d)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  if d > 70 then return false end\n"
    "  for k, v in pairs(a) do if not eq(v, b[k], d + 1) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "return function(text, lax_ok)\n"
    "  local v = cjson.decode(text)\n"
    "  local ok, why = core.json_valid(text)\n"
    "  if ok and v == nil then return 'scanner accepts what cjson refuses' end\n"
    "  if not ok then\n"
    "    if v ~= nil and not lax_ok then return 'scanner refuses what cjson accepts: ' .. why end\n"
    "    return nil\n"
    "  end\n"
    "  if type(v) ~= 'table' then\n"
    "    local whole = core.json_at(text, {})\n"
    "    if not eq(cjson.decode(whole), v, 0) then return 'whole value differs' end\n"
    "    return nil\n"
    "  end\n"
    "  local list, n = core.json_array(text, {})\n"
    "  if list then\n"
    "    if n ~= #v or #list ~= n then return 'element count differs' end\n"
    "    for i = 1, n do\n"
    "      if not eq(cjson.decode(list[i]), v[i], 0) then return 'element ' .. i .. ' differs' end\n"
    "    end\n"
    "  else\n"
    "    for k, x in pairs(v) do\n"
    "      local raw = core.json_at(text, { k })\n"
    "      if not raw then return 'key not found' end\n"
    "      if not eq(cjson.decode(raw), x, 0) then return 'member differs' end\n"
    "    end\n"
    "    if core.json_at(text, { '\\0not a key\\0' }) ~= false then return 'absent key found' end\n"
    "  end\n"
    "  return nil\n"
    "end\n";

static lua_State *L;

static void setup(void)
{
    static const luaL_Reg fns[] = {
        {"json_at", l_json_at}, {"json_array", l_json_array}, {"json_valid", l_json_valid}, {NULL, NULL}};
    L = luaL_newstate();
    if (L == NULL)
        abort();
    luaL_openlibs(L);
    if (luaL_dostring(L, "package.cpath = '/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;' .. package.cpath\n"
                         "local c = require('cjson.safe').new()\n"
                         "c.decode_max_depth(64)\n"
                         "c.decode_invalid_numbers(false)\n"
                         "return c") != 0) {
        fprintf(stderr, "json_fuzz: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (luaL_loadstring(L, check_chunk) != 0)
        abort();
    lua_newtable(L);
    luaL_setfuncs(L, fns, 0);
    lua_pushvalue(L, -3); /* cjson */
    if (lua_pcall(L, 2, 1, 0) != 0)
        abort();
    lua_setfield(L, LUA_REGISTRYINDEX, "json_fuzz_check");
    lua_settop(L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lh_json_scan_t sc;
    int lax;
    if (L == NULL)
        setup();
    memset(&sc, 0, sizeof sc);
    lax = lh_json_scan(&sc, (const char *)data, size) != 0 &&
          (sc.error == JS_NUMBER || sc.error == JS_CONTROL || sc.error == JS_NUL);
    lua_settop(L, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, "json_fuzz_check");
    lua_pushlstring(L, (const char *)data, size);
    lua_pushboolean(L, lax);
    if (lua_pcall(L, 2, 1, 0) != 0) {
        fprintf(stderr, "json_fuzz: raised: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (!lua_isnil(L, -1)) {
        fprintf(stderr, "json_fuzz: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
