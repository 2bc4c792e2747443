-- Write Zenlayer ZLS audit logs of the last N days to a JSON Lines file (one record a line,
-- each exactly as the API sent it), written by the core: `write_logs`.
--   LOGHAUL_ZENLAYER_AK_ID=... LOGHAUL_ZENLAYER_AK_PASSWORD=...  LOGHAUL_ZENLAYER_DAYS=1 (default; under 90)
--   LOGHAUL_ZENLAYER_EVENT="rename bmi" (optional filter)  LOGHAUL_OUT=audit.jsonl (default; "-": stdout)
--   LOGHAUL_STATE=audit.state (optional: a killed run, run again, goes on where it stopped)
--   LOGHAUL_ZENLAYER_URL (default https://console.zenlayer.com)  LOGHAUL_CA_FILE (optional)
local loghaul = require "loghaul"
local env = os.getenv

local zl = loghaul.zenlayer{ access_key_id = env("LOGHAUL_ZENLAYER_AK_ID"),
                             access_key_password = env("LOGHAUL_ZENLAYER_AK_PASSWORD"),
                             endpoint = env("LOGHAUL_ZENLAYER_URL"), ca_file = env("LOGHAUL_CA_FILE") }
local now, days = os.time(), tonumber(env("LOGHAUL_ZENLAYER_DAYS") or 1)
local res, err = zl:write_logs{
  start_time = os.date("!%Y-%m-%dT%H:%M:%SZ", now - days * 86400),
  end_time = os.date("!%Y-%m-%dT%H:%M:%SZ", now), res_event = env("LOGHAUL_ZENLAYER_EVENT"),
  output = env("LOGHAUL_OUT") or "audit.jsonl",  -- written as .part, renamed only when complete
  state_file = env("LOGHAUL_STATE"),
}
if not res then io.stderr:write("write_logs failed: ", tostring(err), "\n") os.exit(1) end
io.stderr:write(("wrote %d records (%d bytes, %d pages) of the last %g days into %s\n")
  :format(res.records, res.bytes, res.pages, days, res.path))
