-- Every core function against argument tables with metamethods, from a seeded RNG: __index
-- that makes up a fresh string each time (and runs the collector, or changes its answer),
-- finalizers that mutate the argument tables while the C function reads them (a GC cycle at
-- every allocation, helpers.gcstorm), __len/__pairs/__newindex/__tostring that the core must
-- ignore, __index that raises, and on Lua 5.4 `<close>` variables. Each call must end in a
-- value, nil + an error table, or a Lua error with a message: never a crash (run under
-- `make asan` to see the memory errors this looks for).
local core = require "loghaul.core"
local gcstorm = require "helpers.gcstorm"
local tu = require "helpers.util"

local SEED = tonumber(os.getenv("LOGHAUL_FUZZ_SEED") or "") or 808
local CALLS = tonumber(os.getenv("LOGHAUL_FUZZ_CALLS") or "") or 240
local lua54 = not jit and _VERSION == "Lua 5.4"
local unpack = table.unpack or unpack -- luacheck: ignore 143

local R = math.random

-- A string that exists nowhere else, freed as soon as the caller drops it. Interned strings
-- (all of LuaJIT's, Lua 5.4's up to 40 bytes) are shared with any live copy, so a long one
-- gets a serial number in its last 8 bytes (the padding the request specs give them).
local serial = 0
local function fresh(s)
  if #s > 40 then
    return function()
      serial = serial + 1
      return s:sub(1, -9) .. ("%08d"):format(serial)
    end
  end
  local b = { s:byte(1, -1) }
  return function() return string.char(unpack(b)) end
end

-- The shapes a table argument takes. `spec` maps names to values (strings become fresh
-- strings made on every read); the result is what the core function receives.
local shapes = {}

function shapes.plain(spec)
  local t = {}
  for k, v in pairs(spec) do t[k] = v end
  return t
end

-- Every read is an __index call that runs the collector and returns a string nobody else holds.
function shapes.fresh_index(spec)
  local make = {}
  for k, v in pairs(spec) do make[k] = type(v) == "string" and fresh(v) or function() return v end end
  return setmetatable({}, { __index = function(_, k)
    collectgarbage()
    return make[k] and make[k]()
  end })
end

-- The second read of a field gets another type: a core that reads a field twice sees it.
function shapes.fickle(spec)
  local seen = {}
  return setmetatable({}, { __index = function(_, k)
    seen[k] = (seen[k] or 0) + 1
    if seen[k] == 1 then return spec[k] end
    local other = { {}, 42, true, fresh("changed")(), function() end }
    return other[R(#other)]
  end })
end

function shapes.raising_index(spec)
  return setmetatable({}, { __index = function(_, k)
    if R(3) == 1 then error("__index refuses " .. tostring(k)) end
    return spec[k]
  end })
end

-- Metamethods the core must not call (it reads with raw access or type checks).
function shapes.decoys(spec)
  local t = shapes.plain(spec)
  return setmetatable(t, {
    __len = function() collectgarbage(); return 1e9 end,
    __pairs = function() error("__pairs called") end,
    __newindex = function() error("__newindex called") end,
    __tostring = function() return fresh("decoy")() end,
    __call = function() error("__call called") end,
    __eq = function() return true end,
  })
end

local shape_names = { "plain", "fresh_index", "fickle", "raising_index", "decoys" }

-- Mutations a finalizer makes to an argument table (and the tables inside it) mid-call.
local function mutate(t)
  local raw = {}
  for k, v in next, t do raw[#raw + 1] = { k, v } end
  local c = R(5)
  for _, kv in ipairs(raw) do
    local k, v = kv[1], kv[2]
    if c == 1 then
      rawset(t, k, nil)
    elseif c == 2 then
      rawset(t, k, ({ {}, 7, false, fresh("mutated")() })[R(4)])
    elseif c == 3 and type(v) == "table" then
      for i = 1, 200 do v[#v + 1] = "g" .. i; v["x-g" .. i] = "v" end
    elseif c == 4 and type(v) == "table" then
      for kk in next, v do v[kk] = nil end
    end
  end
  if c == 5 then setmetatable(t, nil) end
end

-- Calls f(arg) with arg in a random shape; one call in `storm_every` under a GC storm whose
-- finalizer mutates arg at a random collection. Returns pcall's results, packed.
local function call(f, spec, storm_every)
  local arg = shapes[shape_names[R(#shape_names)]](spec)
  if R(storm_every or 8) == 1 then
    local at = R(40)
    return gcstorm.run(function() return f(arg) end, function(k)
      if k == at then mutate(arg); return true end
    end)
  end
  return { n = 3, pcall(f, arg) }
end

-- The contract: a value, nil + an error table, or a raised message.
local function check(name, res)
  if not res[1] then
    assert(type(res[2]) == "string" and #res[2] > 0, name .. " raised a non-message: " .. tostring(res[2]))
    return "raised"
  elseif res[2] == nil and res[3] ~= nil then
    assert(type(res[3]) == "table" and type(res[3].kind) == "string" and type(res[3].message) == "string",
      name .. " returned a bad error: " .. tostring(res[3]))
    return "error"
  end
  return "value"
end

local function pick(list) return list[R(#list)] end

local function tally(stats, kind) stats[kind] = (stats[kind] or 0) + 1 end

local function report(what, stats)
  print(("\nhostile api %s (seed %d): %d raised, %d returned an error, %d returned a value"):format(
    what, SEED, stats.raised or 0, stats.error or 0, stats.value or 0))
end

describe("core functions under hostile tables", function()
  local dir
  setup(function() dir = tu.tmpdir() end)
  teardown(function() tu.rmdir(dir) end)

  it("the signers", function()
    math.randomseed(SEED)
    local function query()
      return pick { nil, { a = "1" }, { k = { "v1", "v2" }, ["sp ace"] = "x y" }, { [1] = "bad key" }, { k = {} } }
    end
    local targets = {
      { "sign_auth_v2", core.sign_auth_v2, function()
        return { access_key = "ak", secret_key = "sk-secret", timestamp = "2024-01-02T03:04:05Z",
                 method = pick { "GET", "POST" }, path = "/rest/x", query = query(),
                 headers = pick { { host = "h:1" }, { host = "h", ["X-Y"] = " v " }, { nohost = "x" } },
                 body = pick { nil, "", '{"a":1}' } }
      end },
      { "sign_sdk_hmac_sha256", core.sign_sdk_hmac_sha256, function()
        return { access_key = "ak", secret_key = "sk", date = "20240102T030405Z", method = "GET",
                 path = pick { "/v1/p", "" }, query = query(), headers = pick { nil, { ["Content-Type"] = "a/b" } },
                 body = pick { nil, "body" }, body_sha256 = pick { nil, ("0"):rep(64), "xyz" } }
      end },
      { "sign_zc2", core.sign_zc2, function()
        return { access_key_id = "id", access_key_password = "pw", timestamp = pick { "1673361177", 1673361177, 0.5 },
                 host = "console.zenlayer.com", content_type = "application/json", body = pick { nil, "{}" } }
      end },
    }
    local stats = {}
    for i = 1, CALLS do
      local t = targets[(i - 1) % #targets + 1]
      tally(stats, check(t[1], call(t[2], t[3]())))
    end
    assert.is_true((stats.value or 0) > CALLS / 10, "too few signatures made: the fuzz checks nothing")
    report("signers", stats)
  end)

  it("crypto and clock functions", function()
    math.randomseed(SEED + 1)
    local f1 = dir .. "/f1"
    tu.write_random(f1, 100)
    local values = { "", "abc", 12, 0.5, -1, 2 ^ 63, {}, true, print, f1, dir .. "/none", ("x"):rep(5000),
                     "YWJj", "YW==", setmetatable({}, { __tostring = function() return "abc" end }) }
    local targets = {
      { "sha256", core.sha256 }, { "hex", core.hex }, { "base64_encode", core.base64_encode },
      { "base64_decode", core.base64_decode }, { "sha256_file", core.sha256_file }, { "random", core.random },
      { "hmac_sha256", function(a) return core.hmac_sha256(a, pick(values)) end },
      { "monotonic", core.monotonic }, { "time", core.time },
      { "sleep", function(a) return core.sleep(type(a) == "number" and math.min(a, 0.001) or a) end },
    }
    local stats = {}
    for i = 1, CALLS do
      local t = targets[(i - 1) % #targets + 1]
      local v = pick(values)
      -- a value with a finalizer that drops or replaces the argument mid-call
      local res = R(6) == 1 and gcstorm.run(function() return t[2](v) end, function(k)
        if k == 3 then v = nil; return true end
      end) or { n = 3, pcall(t[2], v) }
      tally(stats, check(t[1], res))
    end
    report("crypto+clock", stats)
  end)

  it("core.session options", function()
    math.randomseed(SEED + 2)
    local stats = {}
    for _ = 1, CALLS / 2 do
      local pad = ("p"):rep(48) -- long strings: see fresh()
      local spec = { timeout = 2, connect_timeout = 1, user_agent = "ua/" .. pad,
                     proxy = pick { nil, "http://127.0.0.1:1/" .. pad }, ca_file = pick { nil, dir .. "/" .. pad },
                     max_body = pick { nil, 1024, 0 }, insecure = pick { nil, true },
                     follow_redirects = pick { nil, false }, max_redirects = pick { nil, 3 } }
      -- one bad value in three calls
      if R(3) == 1 then
        local bad = { timeout = "2", max_body = -1, insecure = "yes", max_redirects = 0.5, user_agent = {},
                      proxy = 5, nope = 1 }
        local k = pick { "timeout", "max_body", "insecure", "max_redirects", "user_agent", "proxy", "nope" }
        spec[k] = bad[k]
      end
      local res = call(core.session, spec)
      if res[1] and type(res[2]) == "userdata" then res[2]:close() end
      tally(stats, check("core.session", res))
    end
    report("session", stats)
  end)

  -- issue 8 item 1: every field is read once and stays anchored while it is used (before the
  -- fix, under shapes.fresh_index, url, method, body_file and form fields dangled: ASan reported
  -- a heap-use-after-free in l_request)
  it("session:request", function()
    math.randomseed(SEED + 3)
    local session = core.session { timeout = 2, connect_timeout = 1 }
    local stats = {}
    for _ = 1, CALLS / 2 do
      -- long strings: short ones are interned, and the copy in spec would keep them alive
      local pad = ("p"):rep(48)
      local spec = {
        url = pick { "http://127.0.0.1:1/" .. pad, "http://127.0.0.1:1/?" .. pad, "bad url " .. pad },
        method = pick { nil, "GET", "POST", "BAD METHOD" },
        headers = pick { nil, { ["X-A"] = "1" }, { ["bad name"] = "x" }, { ["X-N"] = 5 } },
        body = pick { nil, "body" .. pad }, output = pick { nil, dir .. "/out" .. pad },
        body_file = pick { nil, nil, dir .. "/none" .. pad },
        form = pick { nil, nil, { { name = "f" .. pad, data = "d" .. pad, filename = pad,
                                    content_type = "text/" .. pad } } },
        progress = pick { nil, function() collectgarbage() end }, timeout = pick { nil, 2 },
      }
      tally(stats, check("session:request", call(function(o) return session:request(o) end, spec)))
    end
    session:close()
    report("request", stats)
  end)

  -- issue 8 item 2: a progress callback that closes its session (a Lua 5.4 `<close>` variable,
  -- or __gc called by hand) used to free the easy handle inside curl_easy_perform
  it("a session closed from its own progress callback", function()
    local emu = require "helpers.emulator"
    local e = emu.start()
    for _ = 1, 3 do
      local s = core.session { timeout = 5 }
      local closer = lua54 and load([[
        local s = ...
        return function() local c <close> = s end
      ]])(s) or function() getmetatable(s).__gc(s) end
      local ok, res, err = pcall(s.request, s, { url = e.http_url .. "/files/medium.bin", progress = closer })
      assert(ok and (res or err) or type(res) == "string")
      pcall(s.close, s)
    end
  end)

  if lua54 then
    it("<close> variables that mutate the arguments while the error unwinds", function()
      math.randomseed(SEED + 4)
      local run = load([[
        local f, arg, mutate = ...
        local guard <close> = setmetatable({}, { __close = function() mutate(arg); collectgarbage() end })
        return f(arg)
      ]])
      for _ = 1, CALLS / 4 do
        local spec = { access_key = "ak", secret_key = "sk", date = "20240102T030405Z", method = "GET",
                       path = "/", headers = { ["X-A"] = "1" }, query = { q = { "1", "2" } } }
        local arg = shapes[pick { "raising_index", "fresh_index", "plain" }](spec)
        check("sign_sdk_hmac_sha256", { n = 3, pcall(run, core.sign_sdk_hmac_sha256, arg, mutate) })
      end
    end)
  end
end)
