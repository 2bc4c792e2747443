--- Runs bin/loghaul as a user would: a child process with a clean environment (HOME in a
-- temporary folder, no LOGHAUL_* but the ones given), with the same Lua runtime as the specs.
--
--   local cli = require "cli.helper"
--   local r = cli.run({ "zenlayer", "logs", "--since", "7d" }, cli.emulator_env())
--   -- r.stdout, r.stderr, r.code
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local vendors = require "helpers.vendors"

local M = {}

local q = shell.quote

M.bin = shell.root .. "/bin/loghaul"
M.lua = rawget(_G, "jit") and "luajit" or "lua5.4"
M.home = nil

--- A HOME for the child processes (made once per spec process).
function M.home_dir()
  if not M.home then M.home = shell.tmpdir("loghaul-test") end
  return M.home
end

--- The environment that points every vendor at the emulator (started if needed).
-- @tparam[opt] table extra more variables (false removes one)
-- @treturn table
function M.emulator_env(extra)
  local e = emu.start()
  local fx = vendors.fixtures
  local env = {
    LOGHAUL_CA_FILE = e.ca_file,
    LOGHAUL_CMS_URL = e.base_url, LOGHAUL_CMS_AK = fx.cms.access_key, LOGHAUL_CMS_SK = fx.cms.secret_key,
    LOGHAUL_CLOUDDC_URL = e.base_url, LOGHAUL_CLOUDDC_PROJECT_ID = fx.clouddc.project_id,
    LOGHAUL_IAM_URL = e.base_url, LOGHAUL_IAM_USER = fx.iam.user, LOGHAUL_IAM_PASSWORD = fx.iam.password,
    LOGHAUL_IAM_DOMAIN = fx.iam.domain, LOGHAUL_IAM_PROJECT = fx.iam.project,
    LOGHAUL_YEASTAR_URL = e.base_url, LOGHAUL_YEASTAR_CLIENT_ID = fx.yeastar.client_id,
    LOGHAUL_YEASTAR_CLIENT_SECRET = fx.yeastar.client_secret,
    LOGHAUL_ZENLAYER_URL = e.base_url, LOGHAUL_ZENLAYER_AK_ID = fx.zenlayer.access_key_id,
    LOGHAUL_ZENLAYER_AK_PASSWORD = fx.zenlayer.access_key_password,
  }
  for k, v in pairs(extra or {}) do env[k] = v or nil end
  return env
end

--- The shell command line that runs loghaul with `argv` and `env`.
-- @tparam table argv
-- @tparam[opt] table env
-- @treturn string
function M.command(argv, env)
  local parts = { "env", "-i", "PATH=" .. q(os.getenv("PATH")), "HOME=" .. q(M.home_dir()),
                  "LOGHAUL_LUA=" .. M.lua }
  local keys = {}
  for k in pairs(env or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. q(env[k]) end
  parts[#parts + 1] = q(M.bin)
  for _, a in ipairs(argv) do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ")
end

--- Runs loghaul; returns `{ stdout =, stderr =, code = }`.
-- @tparam table argv
-- @tparam[opt] table env
-- @tparam[opt] string dir the working folder
-- @treturn table
function M.run(argv, env, dir)
  local errfile = os.tmpname()
  local cmd = M.command(argv, env) .. " 2>" .. q(errfile)
  if dir then cmd = "cd " .. q(dir) .. " && " .. cmd end
  local out, rc = shell.run(cmd)
  local err = shell.read_file(errfile) or ""
  os.remove(errfile)
  return { stdout = out, stderr = err, code = rc }
end

--- The lines of a text.
function M.lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

return M
