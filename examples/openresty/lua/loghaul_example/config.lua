--- Settings of the OpenResty example, from the environment (nginx.conf lists them with `env`).
local M = {}

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

--- The settings; read once per worker.
-- @treturn table
function M.get()
  if M.cached then return M.cached end
  M.cached = {
    ca_file = env("LOGHAUL_CA_FILE"),
    zenlayer = {
      endpoint = env("ZLS_ENDPOINT", "https://console.zenlayer.com"),
      access_key_id = env("ZLS_ACCESS_KEY_ID"),
      access_key_password = env("ZLS_ACCESS_KEY_PASSWORD"),
    },
    clouddc = {
      endpoint = env("CLOUDDC_ENDPOINT"),
      project_id = env("CLOUDDC_PROJECT_ID"),
      access_key = env("CLOUDDC_ACCESS_KEY"),
      secret_key = env("CLOUDDC_SECRET_KEY"),
      server_id = env("CLOUDDC_SERVER_ID"),
      dest = env("CLOUDDC_DEST", "/var/lib/loghaul/clouddc/"),
      every = tonumber(env("CLOUDDC_EVERY", "3600")),
      poll_interval = tonumber(env("CLOUDDC_POLL_INTERVAL", "5")),
    },
  }
  return M.cached
end

--- The clients' `log` option: loghaul's warnings and errors go to nginx's error log.
-- @tparam string level
-- @tparam string message
function M.log(level, message)
  if level == "warn" or level == "error" then ngx.log(ngx.WARN, message) end
end

--- An error object as plain JSON-able fields.
-- @tparam table|string err
-- @treturn table
function M.error_fields(err)
  if type(err) ~= "table" then return { kind = "internal", message = tostring(err) } end
  return { kind = err.kind, code = err.code, message = err.message, status = err.status,
           request_id = err.request_id, retryable = err.retryable, attempts = err.attempts,
           vendor = err.vendor, operation = err.operation }
end

return M
