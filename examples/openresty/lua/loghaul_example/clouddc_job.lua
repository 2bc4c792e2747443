--- A timer job: export the CloudDC server's logs, wait for the export, download the archive.
-- Started by init_worker_by_lua (worker 0 only, so N workers do not export N times); the job
-- itself runs in ngx.timer context, where loghaul's transfers go to the thread pool and the
-- polls wait with ngx.sleep. The last result is kept in the shared dict `loghaul_jobs`.
local cjson = require "cjson"
local loghaul = require "loghaul"
local config = require "loghaul_example.config"

local M = {}

local running = false

local function save(result)
  local dict = ngx.shared.loghaul_jobs
  if dict then dict:set("clouddc", cjson.encode(result)) end
end

local function export_once()
  local c = config.get()
  local dc = loghaul.clouddc{
    endpoint = c.clouddc.endpoint, project_id = c.clouddc.project_id, ca_file = c.ca_file,
    auth = { access_key = c.clouddc.access_key, secret_key = c.clouddc.secret_key },
    log = config.log,
  }
  local file, err = dc:export_and_download(c.clouddc.server_id, {
    dest = c.clouddc.dest, poll_interval = c.clouddc.poll_interval,
  })
  dc:close()
  return file, err
end

--- One run (a timer callback).
-- @tparam boolean premature true when nginx is exiting
function M.run(premature)
  if premature or running then return end
  running = true
  local started = ngx.now()
  save{ state = "running", started_at = started }
  local ok, file, err = pcall(export_once)
  running = false
  if not ok then file, err = nil, file end
  if file then
    ngx.log(ngx.NOTICE, "loghaul clouddc job: ", file.path, " (", file.bytes, " bytes)")
    save{ state = "done", ok = true, path = file.path, bytes = file.bytes, sha256 = file.sha256,
          started_at = started, finished_at = ngx.now() }
  else
    ngx.log(ngx.ERR, "loghaul clouddc job failed: ", tostring(err))
    save{ state = "done", ok = false, error = config.error_fields(err), started_at = started,
          finished_at = ngx.now() }
  end
end

--- Schedules the job (init_worker_by_lua).
function M.init_worker()
  if ngx.worker.id() ~= 0 then return end
  local c = config.get()
  if not c.clouddc.endpoint then return end
  local ok, err = ngx.timer.at(0, M.run)
  if not ok then ngx.log(ngx.ERR, "loghaul clouddc job: ", err) end
  if c.clouddc.every and c.clouddc.every > 0 then
    ok, err = ngx.timer.every(c.clouddc.every, M.run)
    if not ok then ngx.log(ngx.ERR, "loghaul clouddc job: ", err) end
  end
end

--- GET /jobs/clouddc: the last result as JSON (404 before the first run).
function M.status()
  local v = ngx.shared.loghaul_jobs and ngx.shared.loghaul_jobs:get("clouddc")
  ngx.header["Content-Type"] = "application/json"
  if not v then
    ngx.status = 404
    ngx.say('{"state":"never run"}')
    return
  end
  ngx.say(v)
end

return M
