-- Export a physical server's logs from Huawei Cloud CloudDC, wait for it, download the .tar.gz.
--   LOGHAUL_CLOUDDC_URL=https://clouddc.cn-east-3.myhuaweicloud.com LOGHAUL_CLOUDDC_PROJECT_ID=...
--   LOGHAUL_CLOUDDC_SERVER_ID=...  LOGHAUL_DEST=logs/ (default)  LOGHAUL_CA_FILE (optional)
-- Auth, the first one set: LOGHAUL_CLOUDDC_TOKEN; or LOGHAUL_CLOUDDC_AK + LOGHAUL_CLOUDDC_SK;
-- or LOGHAUL_IAM_URL + LOGHAUL_IAM_USER, LOGHAUL_IAM_PASSWORD, LOGHAUL_IAM_DOMAIN, LOGHAUL_IAM_PROJECT.
local loghaul = require "loghaul"
local env = os.getenv

local auth = { token = env("LOGHAUL_CLOUDDC_TOKEN") }
if not auth.token and env("LOGHAUL_CLOUDDC_AK") then
  auth = { access_key = env("LOGHAUL_CLOUDDC_AK"), secret_key = env("LOGHAUL_CLOUDDC_SK") }
elseif not auth.token then
  auth = { iam_endpoint = env("LOGHAUL_IAM_URL"), user = env("LOGHAUL_IAM_USER"),
           password = env("LOGHAUL_IAM_PASSWORD"), domain = env("LOGHAUL_IAM_DOMAIN"),
           project = env("LOGHAUL_IAM_PROJECT") }
end
local dc = loghaul.clouddc{
  endpoint = env("LOGHAUL_CLOUDDC_URL"), project_id = env("LOGHAUL_CLOUDDC_PROJECT_ID"), auth = auth,
  ca_file = env("LOGHAUL_CA_FILE"),
  on_progress = function(ev) print(("  %-8s %5.1f%%"):format(ev.phase, ev.percent or 0)) end,
}
local file, err = dc:export_and_download(env("LOGHAUL_CLOUDDC_SERVER_ID"), { dest = env("LOGHAUL_DEST") or "logs/",
  poll_interval = tonumber(env("LOGHAUL_POLL_INTERVAL") or 5), timeout = 1800 })
if not file then io.stderr:write("export failed: ", tostring(err), "\n") os.exit(1) end
print(("downloaded %s (%d bytes, sha256 %s)"):format(file.path, file.bytes, file.sha256))
