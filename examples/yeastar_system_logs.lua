-- Download yesterday's system log from a Yeastar P-Series PBX (or the newest one it has).
--   LOGHAUL_YEASTAR_URL=https://pbx.example.com:8088 LOGHAUL_YEASTAR_CLIENT_ID=...
--   LOGHAUL_YEASTAR_CLIENT_SECRET=...  LOGHAUL_DEST=logs/ (default)  LOGHAUL_CA_FILE (optional)
local loghaul = require "loghaul"
local env = os.getenv

local pbx = loghaul.yeastar{ base_url = env("LOGHAUL_YEASTAR_URL"), client_id = env("LOGHAUL_YEASTAR_CLIENT_ID"),
                             client_secret = env("LOGHAUL_YEASTAR_CLIENT_SECRET"), ca_file = env("LOGHAUL_CA_FILE") }
local page, err = pbx:list_system_logs{ page = 1, page_size = 100, order_by = "desc" }
if not page then io.stderr:write("list failed: ", tostring(err), "\n") os.exit(1) end
print(("the PBX has %d daily logs"):format(page.total_number or #page.data))
if #page.data == 0 then print("nothing to download") return end
local yesterday, pick = os.date("%Y%m%d", os.time() - 86400), page.data[1].file_name  -- newest first
for _, f in ipairs(page.data) do
  if f.file_name == yesterday then pick = yesterday end
end
local file
file, err = pbx:download_system_logs({ pick }, { dest = env("LOGHAUL_DEST") or "logs/" })
if not file then io.stderr:write("download failed: ", tostring(err), "\n") os.exit(1) end
print(("downloaded %s: %s (%d bytes, sha256 %s)"):format(pick, file.path, file.bytes, file.sha256))
