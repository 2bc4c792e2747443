--- `loghaul emulator start|stop`: the local vendor emulator of the source checkout
-- (tests/emulator: nginx with the Lua module, on 127.0.0.1 over TLS), to try every command
-- offline. `start` prints shell lines: `eval "$(loghaul emulator start)"` points the
-- LOGHAUL_* settings at it with its test credentials.
-- @module loghaul.cli.emulator
local M = { order = { "start", "stop" }, actions = {} }

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function script(ctx)
  if not ctx.root then
    require("loghaul.cli.args").abort(1, "the emulator lives in the source checkout (tests/emulator/emulator); "
      .. "run bin/loghaul from a clone of loghaul to use it")
  end
  return ctx.root .. "/tests/emulator/emulator"
end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"__rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)__rc=(%d+)%s*$")
  return body or out, tonumber(rc) or 1
end

--- The LOGHAUL_* settings for an emulator at `base` with the checkout's test credentials.
-- @tparam string root the checkout
-- @tparam table kv the emulator's BASE_URL, CA_FILE
-- @treturn table list of { name, value }
function M.settings(root, kv)
  local fx = dofile(root .. "/tests/emulator/lua/emu/fixtures.lua")
  local b = kv.BASE_URL
  return {
    { "LOGHAUL_CA_FILE", kv.CA_FILE },
    { "LOGHAUL_CMS_URL", b }, { "LOGHAUL_CMS_AK", fx.cms.access_key }, { "LOGHAUL_CMS_SK", fx.cms.secret_key },
    { "LOGHAUL_CLOUDDC_URL", b }, { "LOGHAUL_CLOUDDC_PROJECT_ID", fx.clouddc.project_id },
    { "LOGHAUL_IAM_URL", b }, { "LOGHAUL_IAM_USER", fx.iam.user }, { "LOGHAUL_IAM_PASSWORD", fx.iam.password },
    { "LOGHAUL_IAM_DOMAIN", fx.iam.domain }, { "LOGHAUL_IAM_PROJECT", fx.iam.project },
    { "LOGHAUL_YEASTAR_URL", b }, { "LOGHAUL_YEASTAR_CLIENT_ID", fx.yeastar.client_id },
    { "LOGHAUL_YEASTAR_CLIENT_SECRET", fx.yeastar.client_secret },
    { "LOGHAUL_ZENLAYER_URL", b }, { "LOGHAUL_ZENLAYER_AK_ID", fx.zenlayer.access_key_id },
    { "LOGHAUL_ZENLAYER_AK_PASSWORD", fx.zenlayer.access_key_password },
    { "LOGHAUL_EMULATOR_SERVER_ID", fx.clouddc.server_id },
  }
end

M.actions.start = {
  usage = "loghaul emulator start",
  help = "Starts the local vendor emulator of the source checkout and prints shell lines that set\n"
    .. "LOGHAUL_* to it with its test credentials:  eval \"$(loghaul emulator start)\"\n"
    .. "It stays up until `loghaul emulator stop`.",
  run = function(ctx)
    local out, rc = run(q(script(ctx)) .. " start")
    if rc ~= 0 then
      ctx:error("emulator start failed (exit %d):\n%s", rc, out)
      return 1
    end
    local kv = {}
    for k, v in out:gmatch("([%u_]+)=([^\n]*)") do kv[k] = v end
    for _, k in ipairs{ "BASE_URL", "HTTP_URL", "CA_FILE", "DIR", "PID" } do
      if kv[k] then ctx.out:write(k, "=", q(kv[k]), "\n") end
    end
    for _, s in ipairs(M.settings(ctx.root, kv)) do ctx.out:write("export ", s[1], "=", q(s[2]), "\n") end
    ctx:say("emulator running at %s; stop it with: loghaul emulator stop", tostring(kv.BASE_URL))
    return 0
  end,
}

M.actions.stop = {
  usage = "loghaul emulator stop",
  help = "Stops the emulator that `loghaul emulator start` started.",
  run = function(ctx)
    local out, rc = run(q(script(ctx)) .. " stop")
    if rc ~= 0 then
      ctx:error("emulator stop failed (exit %d):\n%s", rc, out)
      return 1
    end
    if out ~= "" and not ctx.quiet then ctx.err:write(out) end
    return 0
  end,
}

return M
