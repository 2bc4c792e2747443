-- Upload a client log archive to Huawei CC-CMS (uploadClientLog).
--   LOGHAUL_CMS_URL=https://10.0.0.5:28080 LOGHAUL_CMS_AK=... LOGHAUL_CMS_SK=... \
--   LOGHAUL_CMS_FILE=OELOG_99991093_10.1.2.3_20250226162127.zip lua5.4 examples/cms_upload.lua
-- Optional: LOGHAUL_CA_FILE (PEM bundle to trust).
local loghaul = require "loghaul"

local function env(name)
  local v = os.getenv(name)
  if not v or v == "" then io.stderr:write(name, " is not set\n") os.exit(2) end
  return v
end

local cms = loghaul.cms{ base_url = env("LOGHAUL_CMS_URL"), access_key = env("LOGHAUL_CMS_AK"),
                         secret_key = env("LOGHAUL_CMS_SK"), ca_file = os.getenv("LOGHAUL_CA_FILE") }
local file = env("LOGHAUL_CMS_FILE")
local res, err = cms:upload_client_log(file)
if not res then
  io.stderr:write("upload failed: ", tostring(err), "\n")
  os.exit(1)
end
print(("uploaded %s: status %s"):format(file, res.status))
