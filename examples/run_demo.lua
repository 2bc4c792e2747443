-- `make demo`: runs every example against the local emulator and shows what they fetched.
--   lua5.4 examples/run_demo.lua      (or luajit; the examples run with the same interpreter)
-- Starts the emulator (tests/emulator, nginx on 127.0.0.1 over TLS), prepares a sample zip,
-- gives each example its settings through the environment (the emulator's URLs, CA file and
-- test credentials), runs it as a subprocess, then lists the files with their sizes and
-- sha256, and stops the emulator. Output goes to build/demo/. Exits 1 if an example failed.

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)   -- output (stdout+stderr) and exit status, in Lua 5.4 and LuaJIT alike
  local p = assert(io.popen(cmd .. " 2>&1; echo \"__rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)__rc=(%d+)%s*$")
  return body or out, tonumber(rc) or -1
end

local function sh(cmd)
  local out, rc = run(cmd)
  if rc ~= 0 then error(cmd .. " failed (" .. rc .. "):\n" .. out, 2) end
  return (out:gsub("%s+$", ""))
end

-- the checkout, from this script's own path; the runtime's build of the core
local here = (arg and arg[0] or "examples/run_demo.lua"):match("^(.*)/[^/]*$") or "."
local ROOT = sh("cd " .. q(here .. "/..") .. " && pwd")
local RUNTIME = rawget(_G, "jit") and "luajit" or "lua5.4"
local INTERP = arg and arg[-1] or RUNTIME
local LUA_PATH = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. ROOT .. "/tests/?.lua;;"
local LUA_CPATH = ROOT .. "/build/" .. RUNTIME .. "/?.so;;"
package.path = LUA_PATH .. package.path
package.cpath = ROOT .. "/build/" .. RUNTIME .. "/?.so;" .. package.cpath

local cjson = require "cjson"
local emu = require "helpers.emulator"
local fixtures = require("helpers.vendors").fixtures

-- A small real .zip (one deflated client.log), made with gzip alone: its raw deflate stream
-- and CRC-32 go into a ZIP local header + central directory.
local function le(n, bytes)
  local t = {}
  for i = 1, bytes do t[i] = string.char(n % 256) n = math.floor(n / 256) end
  return table.concat(t)
end

local function make_zip(path, name, text)
  local src = path .. ".src"
  local f = assert(io.open(src, "wb")) f:write(text) f:close()
  local p = assert(io.popen("gzip -n -c " .. q(src)))
  local gz = p:read("*a")
  p:close()
  os.remove(src)
  local data, trailer = gz:sub(11, -9), gz:sub(-8)
  local b1, b2, b3, b4 = trailer:byte(1, 4)
  local crc = ((b4 * 256 + b3) * 256 + b2) * 256 + b1
  local common = le(20, 2) .. le(0, 2) .. le(8, 2) .. le(0, 2) .. le(0x21, 2)   -- version, flags, deflate, time, date
    .. le(crc, 4) .. le(#data, 4) .. le(#text, 4) .. le(#name, 2) .. le(0, 2)
  local loc = "PK\3\4" .. common .. name .. data
  local cen = "PK\1\2" .. le(20, 2) .. common .. le(0, 2) .. le(0, 2) .. le(0, 2) .. le(0, 4) .. le(0, 4) .. name
  local eocd = "PK\5\6" .. le(0, 4) .. le(1, 2) .. le(1, 2) .. le(#cen, 4) .. le(#loc, 4) .. le(0, 2)
  f = assert(io.open(path, "wb"))
  f:write(loc, cen, eocd)
  f:close()
end

local function files_under(dir)
  local out = {}
  for line in sh("find " .. q(dir) .. " -type f | sort"):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

local function show_file(path)
  local sum = sh("sha256sum " .. q(path)):match("^(%x+)")
  local size = tonumber(sh("wc -c < " .. q(path)))
  print(("    %s\n      %d bytes  sha256 %s"):format(path:sub(#ROOT + 2), size, sum))
  return size
end

local results = {}

local function example(title, script, vars)
  print(("\n== %s: examples/%s"):format(title, script))
  local env = {}
  for k, v in pairs(vars) do env[#env + 1] = k .. "=" .. q(v) end
  table.sort(env)
  local cmd = "cd " .. q(ROOT .. "/build/demo") .. " && env LUA_PATH=" .. q(LUA_PATH) .. " LUA_CPATH=" .. q(LUA_CPATH)
    .. " " .. table.concat(env, " ") .. " " .. q(INTERP) .. " " .. q(ROOT .. "/examples/" .. script)
  local t0 = os.time()
  local out, rc = run(cmd)
  for line in out:gmatch("[^\n]+") do print("  | " .. line) end
  local ok = rc == 0
  print(("  -> %s (exit %d, %ds)"):format(ok and "ok" or "FAILED", rc, os.time() - t0))
  results[#results + 1] = { title = title, ok = ok }
  return ok
end

-- runs bin/loghaul (the command line) like example() runs a script
local function command(title, vars, argv)
  print(("\n== %s: bin/loghaul %s"):format(title, table.concat(argv, " "):gsub(ROOT:gsub("%p", "%%%0") .. "/", "")))
  local env = {}
  for k, v in pairs(vars) do env[#env + 1] = k .. "=" .. q(v) end
  table.sort(env)
  local words = {}
  for i, a in ipairs(argv) do words[i] = q(a) end
  local cmd = "cd " .. q(ROOT .. "/build/demo") .. " && env " .. table.concat(env, " ") .. " "
    .. q(ROOT .. "/bin/loghaul") .. " " .. table.concat(words, " ")
  local t0 = os.time()
  local out, rc = run(cmd)
  for line in out:gmatch("[^\n]+") do print("  | " .. line) end
  print(("  -> %s (exit %d, %ds)"):format(rc == 0 and "ok" or "FAILED", rc, os.time() - t0))
  results[#results + 1] = { title = title, ok = rc == 0 }
end

local function main()
  local demo = ROOT .. "/build/demo"
  sh("rm -rf " .. q(demo) .. " && mkdir -p " .. q(demo .. "/upload"))
  print(("loghaul demo (%s): starting the emulator..."):format(INTERP))
  local e = emu.start()
  print(("  emulator at %s (CA %s)"):format(e.base_url, e.ca_file))
  local base = { LOGHAUL_CA_FILE = e.ca_file }
  local function with(t)
    for k, v in pairs(base) do t[k] = v end
    return t
  end

  local zip = demo .. "/upload/OELOG_99991093_10.1.2.3_" .. os.date("!%Y%m%d%H%M%S") .. ".zip"
  local lines = {}
  for i = 1, 200 do lines[i] = ("2025-02-26 16:21:%02d INFO client event %d"):format(i % 60, i) end
  make_zip(zip, "client.log", table.concat(lines, "\n") .. "\n")

  example("Huawei CC-CMS upload", "cms_upload.lua", with{
    LOGHAUL_CMS_URL = e.base_url, LOGHAUL_CMS_AK = fixtures.cms.access_key,
    LOGHAUL_CMS_SK = fixtures.cms.secret_key, LOGHAUL_CMS_FILE = zip })
  example("Huawei Cloud CloudDC export -> poll -> download", "clouddc_export_download.lua", with{
    LOGHAUL_CLOUDDC_URL = e.base_url, LOGHAUL_CLOUDDC_PROJECT_ID = fixtures.clouddc.project_id,
    LOGHAUL_CLOUDDC_SERVER_ID = fixtures.clouddc.server_id, LOGHAUL_IAM_URL = e.base_url,
    LOGHAUL_IAM_USER = fixtures.iam.user, LOGHAUL_IAM_PASSWORD = fixtures.iam.password,
    LOGHAUL_IAM_DOMAIN = fixtures.iam.domain, LOGHAUL_IAM_PROJECT = fixtures.iam.project,
    LOGHAUL_DEST = demo .. "/clouddc/", LOGHAUL_POLL_INTERVAL = "1" })
  example("Yeastar P-Series system logs", "yeastar_system_logs.lua", with{
    LOGHAUL_YEASTAR_URL = e.base_url, LOGHAUL_YEASTAR_CLIENT_ID = fixtures.yeastar.client_id,
    LOGHAUL_YEASTAR_CLIENT_SECRET = fixtures.yeastar.client_secret, LOGHAUL_DEST = demo .. "/yeastar/" })
  local jsonl = demo .. "/zenlayer/audit.jsonl"
  sh("mkdir -p " .. q(demo .. "/zenlayer"))
  example("Zenlayer ZLS audit logs -> JSON Lines", "zenlayer_audit_jsonl.lua", with{
    LOGHAUL_ZENLAYER_URL = e.base_url, LOGHAUL_ZENLAYER_AK_ID = fixtures.zenlayer.access_key_id,
    LOGHAUL_ZENLAYER_AK_PASSWORD = fixtures.zenlayer.access_key_password, LOGHAUL_ZENLAYER_DAYS = "45",
    LOGHAUL_OUT = jsonl })

  -- the same chains through the command line (bin/loghaul), with the settings as variables
  local cli_env = with{ LOGHAUL_LUA = RUNTIME,
    LOGHAUL_CMS_URL = e.base_url, LOGHAUL_CMS_AK = fixtures.cms.access_key, LOGHAUL_CMS_SK = fixtures.cms.secret_key,
    LOGHAUL_CLOUDDC_URL = e.base_url, LOGHAUL_CLOUDDC_PROJECT_ID = fixtures.clouddc.project_id,
    LOGHAUL_CLOUDDC_AK = fixtures.clouddc.access_key, LOGHAUL_CLOUDDC_SK = fixtures.clouddc.secret_key,
    LOGHAUL_YEASTAR_URL = e.base_url, LOGHAUL_YEASTAR_CLIENT_ID = fixtures.yeastar.client_id,
    LOGHAUL_YEASTAR_CLIENT_SECRET = fixtures.yeastar.client_secret,
    LOGHAUL_ZENLAYER_URL = e.base_url, LOGHAUL_ZENLAYER_AK_ID = fixtures.zenlayer.access_key_id,
    LOGHAUL_ZENLAYER_AK_PASSWORD = fixtures.zenlayer.access_key_password, HOME = demo }
  command("loghaul cms upload", cli_env, { "cms", "upload", zip })
  command("loghaul clouddc export", cli_env,
    { "clouddc", "export", fixtures.clouddc.server_id, "--dest", demo .. "/cli/clouddc/", "--poll", "1s" })
  command("loghaul yeastar download", cli_env,
    { "yeastar", "download", "--last", "1d", "--dest", demo .. "/cli/yeastar/" })
  command("loghaul zenlayer logs", cli_env,
    { "zenlayer", "logs", "--since", "45d", "--output", demo .. "/cli/audit.jsonl", "--json" })

  print("\n== What the examples fetched")
  print("  uploaded (as the emulator received it):")
  local sent = sh("sha256sum " .. q(zip)):match("^(%x+)")
  local got = sh("curl -sS " .. q(e.http_url .. "/_emu/vendors"))
  local name = zip:match("[^/]+$")
  print(("    %s  %s bytes  sha256 %s  %s"):format(name, sh("wc -c < " .. q(zip)), sent,
    got:find(sent, 1, true) and got:find(name, 1, true) and "(received, same sha256)" or "(NOT received)"))
  for _, d in ipairs{ "clouddc", "yeastar" } do
    print(("  %s downloads:"):format(d))
    local list = files_under(demo .. "/" .. d)
    if #list == 0 then print("    (none)") end
    for _, p in ipairs(list) do show_file(p) end
    if #list > 0 then
      print("      contents: " .. sh("tar -tf " .. q(list[1]) .. " | head -5 | tr '\\n' ' '"))
    end
  end
  print("  zenlayer JSON Lines:")
  local f = io.open(jsonl, "r")
  if f then
    f:close()
    show_file(jsonl)
    print(("      %s lines; the first 3 (opsTime, resEvent, resUid, clientIP):"):format(sh("wc -l < " .. q(jsonl))))
    for line in sh("head -n 3 " .. q(jsonl)):gmatch("[^\n]+") do
      local r = cjson.decode(line)
      print(("      %s  %-22s %s  %s"):format(r.opsTime, r.resEvent, r.resUid, r.clientIP))
    end
  else
    print("    (none)")
  end
end

local ok, err = pcall(main)
pcall(emu.stop)
print("\n== Summary")
local failed = 0
for _, r in ipairs(results) do
  print(("  %-48s %s"):format(r.title, r.ok and "ok" or "FAILED"))
  if not r.ok then failed = failed + 1 end
end
if not ok then
  print("  demo error: " .. tostring(err))
  os.exit(1)
end
print(failed == 0 and "  all examples ran against the emulator; files are in build/demo/"
  or ("  %d example(s) failed"):format(failed))
os.exit(failed == 0 and 0 or 1)
