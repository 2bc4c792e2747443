-- Write Zenlayer ZLS audit logs of the last N days to a JSON Lines file (one record a line).
--   LOGHAUL_ZENLAYER_AK_ID=... LOGHAUL_ZENLAYER_AK_PASSWORD=...  LOGHAUL_ZENLAYER_DAYS=1 (default; under 90)
--   LOGHAUL_ZENLAYER_EVENT="rename bmi" (optional filter)  LOGHAUL_OUT=audit.jsonl (default)
--   LOGHAUL_ZENLAYER_URL (default https://console.zenlayer.com)  LOGHAUL_CA_FILE (optional)
local loghaul = require "loghaul"
local cjson = require "cjson"
local env = os.getenv

local zl = loghaul.zenlayer{ access_key_id = env("LOGHAUL_ZENLAYER_AK_ID"),
                             access_key_password = env("LOGHAUL_ZENLAYER_AK_PASSWORD"),
                             endpoint = env("LOGHAUL_ZENLAYER_URL"), ca_file = env("LOGHAUL_CA_FILE") }
local now, days = os.time(), tonumber(env("LOGHAUL_ZENLAYER_DAYS") or 1)
local range = { start_time = os.date("!%Y-%m-%dT%H:%M:%SZ", now - days * 86400),
                end_time = os.date("!%Y-%m-%dT%H:%M:%SZ", now), res_event = env("LOGHAUL_ZENLAYER_EVENT") }
local path, n = env("LOGHAUL_OUT") or "audit.jsonl", 0
local out = assert(io.open(path .. ".tmp", "w"))   -- renamed to LOGHAUL_OUT only when complete
local ok, err = pcall(function()   -- each_log raises its error object: a refused range, a failed page
  for rec in zl:each_log(range) do
    out:write(cjson.encode(rec), "\n")
    n = n + 1
  end
end)
out:close()
if not ok then os.remove(path .. ".tmp") io.stderr:write("each_log failed: ", tostring(err), "\n") os.exit(1) end
assert(os.rename(path .. ".tmp", path))
print(("wrote %d records from %s to %s into %s"):format(n, range.start_time, range.end_time, path))
