-- The Lua parsers of server-supplied header values, fuzzed from a seeded RNG (the C ones have
-- libFuzzer targets in fuzz/): Content-Disposition -> file name -> safe base name, and
-- Retry-After. Random mutations of real headers plus pure noise: never an error, and what
-- comes out obeys the rules the download code relies on.
local download = require "loghaul.download"
local retry = require "loghaul.retry"

local SEED = tonumber(os.getenv("LOGHAUL_FUZZ_SEED") or "") or 2024
local CASES = tonumber(os.getenv("LOGHAUL_FUZZ_CALLS") or "") or 4000

local R = math.random

-- bytes a header parser trips on, and the rest of the byte range now and then
local SPECIAL = { '"', "\\", ";", "=", "*", "'", "%", " ", "\t", "\0", "/", ".", "..", "\r", "\n", "filename",
                  "filename*", "UTF-8''", "%2F", "%00", "%2e%2e", "%", "%G1", "\255", "\127", "\31" }

local function noise(n)
  local t = {}
  for i = 1, n do
    if R(3) == 1 then t[i] = string.char(R(0, 255)) else t[i] = SPECIAL[R(#SPECIAL)] end
  end
  return table.concat(t)
end

-- Insert, delete or replace a few random spans of s.
local function mutate(s)
  for _ = 1, R(1, 4) do
    local i = R(1, #s + 1)
    local c = R(3)
    if c == 1 then
      s = s:sub(1, i - 1) .. noise(R(1, 3)) .. s:sub(i)
    elseif c == 2 then
      s = s:sub(1, i - 1) .. s:sub(i + R(1, 4))
    else
      s = s:sub(1, i - 1) .. noise(1) .. s:sub(i + 1)
    end
  end
  return s
end

local function pct(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local DIRS = { "../", "/etc/", "a/b/", "..\\", "C:\\x\\", "./" }

-- A name of printable bytes, sometimes with a directory part or over 255 bytes.
local function random_name()
  local t = {}
  for i = 1, R(1, R(10) == 1 and 300 or 20) do
    local c = R(33, 126)
    t[i] = string.char(c)
  end
  local name = table.concat(t)
  if R(5) == 1 then name = DIRS[R(#DIRS)] .. name end
  return name
end

-- What a safe base name must be, whatever the server sent.
local function assert_safe(base, why, from)
  if base == nil then
    assert(type(why) == "string" and #why > 0, "safe_name refused without a reason: " .. ("%q"):format(from))
    return
  end
  assert(type(base) == "string", "safe_name returned a " .. type(base))
  assert(#base > 0 and #base <= 255, "bad length " .. #base .. " from " .. ("%q"):format(from))
  assert(base ~= "." and base ~= "..", "a dot name from " .. ("%q"):format(from))
  assert(not base:find("[/\\%z\1-\31\127]"), "unsafe byte in " .. ("%q"):format(base))
  -- a base name is the end of what the server sent, never made up
  assert(from:sub(-#base) == base, ("%q is not the end of %q"):format(base, from))
end

describe("server header parsers under random input", function()
  it(("Content-Disposition -> safe_name, %d cases"):format(CASES), function()
    math.randomseed(SEED)
    local seeds = {
      'attachment; filename="log.tar.gz"', "attachment; filename=log.zip", "inline;filename=a.txt; size=3",
      "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.log", 'attachment; filename="a\\"b.log"',
      "attachment; filename*=UTF-8''x.log; filename=\"y.log\"", 'form-data; name="f"; filename="../../etc/passwd"',
      "attachment; xfilename=z; filename=ok.log", "attachment; filename=", 'attachment; filename="unterminated',
    }
    local named = 0
    for i = 1, CASES do
      local v
      local c = i % 3
      if c == 0 then v = mutate(seeds[R(#seeds)])
      elseif c == 1 then v = noise(R(0, 60))
      else v = "attachment; filename=" .. noise(R(0, 30)) end
      local ok, name = pcall(download.content_disposition_name, v)
      assert(ok, "content_disposition_name raised on " .. ("%q"):format(v) .. ": " .. tostring(name))
      assert(name == nil or type(name) == "string")
      if name then
        named = named + 1
        local ok2, base, why = pcall(download.safe_name, name)
        assert(ok2, "safe_name raised on " .. ("%q"):format(name) .. ": " .. tostring(base))
        assert_safe(base, why, name)
      end
    end
    assert.is_true(named > CASES / 10, "too few names parsed: the fuzz checks little")
    for _, v in ipairs { 42, true, {}, print } do assert.is_nil(download.content_disposition_name(v)) end
  end)

  it("reads back any name in each of the three spellings", function()
    math.randomseed(SEED + 1)
    for _ = 1, CASES / 4 do
      local name = random_name()
      local quoted = name:gsub('[\\"]', "\\%0")
      assert.equal(name, download.content_disposition_name('attachment; filename="' .. quoted .. '"'))
      assert.equal(name, download.content_disposition_name("attachment; filename*=UTF-8''" .. pct(name)))
      -- filename* wins over filename, whichever comes first
      assert.equal(name, download.content_disposition_name(
        'attachment; filename="other.bin"; filename*=UTF-8\'\'' .. pct(name)))
      -- a bare token: no ';' inside, and a leading '"' would start a quoted string
      if not name:find(";") and name:sub(1, 1) ~= '"' then
        assert.equal(name, download.content_disposition_name("attachment; filename=" .. name .. "; size=1"))
      end
      assert_safe(select(1, download.safe_name(name)), select(2, download.safe_name(name)), name)
    end
  end)

  it("stays linear on a huge hostile header", function()
    local t0 = os.clock()
    -- 2000 near-misses of "filename=" and an unterminated quoted string
    local v = ("xfilename=" .. ('"\\'):rep(50)):rep(2000) .. '; filename="' .. ("\\"):rep(100000)
    assert.is_nil(download.content_disposition_name(v))
    -- a 100000-byte name comes out whole, and safe_name refuses it
    local name = download.content_disposition_name("a; filename*=" .. ("'"):rep(100000))
    assert.equal(99998, #name)
    assert.is_nil((download.safe_name(name)))
    assert.is_true(os.clock() - t0 < 2, "took " .. (os.clock() - t0) .. " s")
  end)

  it(("Retry-After, %d cases"):format(CASES), function()
    math.randomseed(SEED + 2)
    local seeds = { "120", " 5 ", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "0",
                    ("9"):rep(400), "-1", "1e9", "0x10", "nan", "inf" }
    local now = 1445412480 -- 2015-10-21T07:28:00Z
    for i = 1, CASES do
      local v = i % 2 == 0 and mutate(seeds[R(#seeds)]) or noise(R(0, 40))
      local ok, n = pcall(retry.parse_retry_after, v, now)
      assert(ok, "parse_retry_after raised on " .. ("%q"):format(v) .. ": " .. tostring(n))
      assert(n == nil or (type(n) == "number" and n >= 0 and n == n), ("%q gave %s"):format(v, tostring(n)))
    end
    assert.equal(120, retry.parse_retry_after("120", now))
    assert.equal(0, retry.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now))
  end)
end)
