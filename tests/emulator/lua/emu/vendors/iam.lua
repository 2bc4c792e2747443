-- Huawei IAM: POST /v3/auth/tokens (password method) -> 201 + X-Subject-Token.
local common = require "emu.vendors.common"
local fixtures = require "emu.fixtures"
local json = require "emu.json"

local M = {}

local function key(token) return "iam_tok:" .. ngx.md5(token) .. ngx.crc32_long(token) end

local function err(status, code, msg, title)
  common.count("iam", "failures")
  if common.settings("iam").error_style == "keystone" then
    ngx.req.discard_body()
    return json.reply({ error = { code = status, message = msg, title = title } }, status)
  end
  return common.huawei(status, code, msg)
end

--- Check an X-Auth-Token: "ok" | "expired" | "unknown".
function M.check(token)
  if type(token) ~= "string" or token == "" then return "unknown" end
  local exp = ngx.shared.vendors:get(key(token))
  if not exp then return "unknown" end
  if common.now() >= exp then return "expired" end
  return "ok"
end

local function str(v) return type(v) == "string" and v ~= "" end

function M.handle()
  common.count("iam", "requests")
  if ngx.req.get_method() ~= "POST" then return err(405, "IAM.0001", "Method not allowed.", "Method Not Allowed") end
  local b = json.decode(common.body())
  local ok = type(b) == "table" and type(b.auth) == "table" and type(b.auth.identity) == "table"
  local id = ok and b.auth.identity
  local methods = id and id.methods
  local user = id and type(id.password) == "table" and type(id.password.user) == "table" and id.password.user
  local scope = ok and type(b.auth.scope) == "table" and type(b.auth.scope.project) == "table"
    and b.auth.scope.project
  if not (user and type(methods) == "table" and methods[1] == "password" and str(user.name)
          and str(user.password) and type(user.domain) == "table" and str(user.domain.name) and scope
          and (str(scope.name) or str(scope.id))) then
    return err(400, "IAM.0011", "Request body is invalid.", "Bad Request")
  end
  local f = fixtures.iam
  if user.name ~= f.user or user.password ~= f.password or user.domain.name ~= f.domain then
    return err(401, "IAM.0004", "The username or password is wrong.", "Unauthorized")
  end
  if (scope.name and scope.name ~= f.project) or (scope.id and scope.id ~= f.project_id) then
    return err(400, "IAM.0030", "The project does not exist in the domain.", "Bad Request")
  end
  local cfg = common.settings("iam")
  local size = math.max(math.floor(tonumber(cfg.token_size) or 3000), 64)
  local token = "MII" .. ngx.encode_base64(common.random(math.ceil(size * 3 / 4)), true)
    :gsub("%+", "-"):gsub("/", "_"):sub(1, size - 3)
  local now = common.now()
  local ttl = tonumber(cfg.token_ttl) or 86400
  local expires = now + ttl
  ngx.shared.vendors:set(key(token), expires, ttl + 3600)
  common.count("iam", "logins")
  local function ms(t)
    return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string.format(".%03d000Z", math.floor((t % 1) * 1000))
  end
  local domain_id = "d0" .. f.project_id:sub(3)
  local body = {
    token = {
      expires_at = ms(expires), issued_at = ms(now), methods = { "password" },
      project = { id = f.project_id, name = f.project, domain = { id = domain_id, name = f.domain } },
      user = { id = "u0" .. f.project_id:sub(3), name = f.user, domain = { id = domain_id, name = f.domain },
               password_expires_at = "" },
      roles = { { id = "0", name = "op_fine_grained" } },
    },
  }
  if ngx.var.arg_nocatalog ~= "true" then
    body.token.catalog = { {
      type = "clouddc", name = "clouddc", id = "c0",
      endpoints = { { region = f.project, region_id = f.project, interface = "public", id = "e0",
                      url = ngx.var.scheme .. "://" .. (ngx.var.http_host or "127.0.0.1") } },
    } }
  end
  return json.reply(body, 201, { ["X-Subject-Token"] = token })
end

return M
