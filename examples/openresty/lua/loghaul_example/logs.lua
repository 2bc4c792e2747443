--- GET /logs?since=…: Zenlayer audit logs as JSON Lines, streamed while the pages arrive.
-- Query: `since` (required) and `until` (default: now), UTC `yyyy-MM-ddTHH:mm:ssZ`; `size`
-- (records per page, 1..1000); filters `res_event`, `res_uid`, `client_ip`.
-- An error before the first record answers 400 (refused range), 502 or 504 with
-- `{"error":{kind,code,message,...}}`; an error after records were sent (the status line
-- is gone by then) ends the stream with one `{"error":{...}}` line.
local cjson = require "cjson"
local loghaul = require "loghaul"
local config = require "loghaul_example.config"

local M = {}

local clients = {}

-- one client per worker (its retry budget and settings); connections are kept alive by the
-- sessions of the thread pool's Lua VMs
local function client()
  if clients.zl then return clients.zl end
  local c = config.get()
  clients.zl = loghaul.zenlayer{
    endpoint = c.zenlayer.endpoint, ca_file = c.ca_file,
    access_key_id = c.zenlayer.access_key_id, access_key_password = c.zenlayer.access_key_password,
    log = config.log,
  }
  return clients.zl
end

local http_status = { invalid = 400, timeout = 504 }

local function fail(status, err)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode{ error = config.error_fields(err) })
end

-- the 200 answer's status and type, set before its first line (or for an empty answer)
local function start_stream()
  ngx.status = 200
  ngx.header["Content-Type"] = "application/x-ndjson"
end

--- The content handler.
function M.serve()
  local args = ngx.req.get_uri_args()
  local since, till = args.since, args["until"]
  if type(since) ~= "string" then
    return fail(400, { kind = "invalid", code = "MISSING_PARAMETER", message = "since is required" })
  end
  if type(till) ~= "string" then till = os.date("!%Y-%m-%dT%H:%M:%SZ", ngx.time()) end
  local size = tonumber(args.size) or 1000
  local sent = 0
  local ok, err = pcall(function()
    for rec in client():each_log{ start_time = since, end_time = till, page_size = size,
                                  res_event = args.res_event, res_uid = args.res_uid,
                                  client_ip = args.client_ip } do
      if sent == 0 then start_stream() end
      ngx.print(cjson.encode(rec), "\n")
      sent = sent + 1
      if sent % size == 0 then ngx.flush() end
    end
  end)
  if ok then
    if sent == 0 then start_stream() end
    return
  end
  if type(err) == "table" then ngx.log(ngx.WARN, "loghaul /logs: ", tostring(err)) end
  if sent == 0 then
    local kind = type(err) == "table" and err.kind or "internal"
    return fail(http_status[kind] or (kind == "internal" and 500 or 502), err)
  end
  ngx.print(cjson.encode{ error = config.error_fields(err) }, "\n")
end

return M
