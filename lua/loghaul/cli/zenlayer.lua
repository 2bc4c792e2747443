--- `loghaul zenlayer logs`: Zenlayer ZLS audit logs as JSON Lines.
-- @module loghaul.cli.zenlayer
local args = require "loghaul.cli.args"
local times = require "loghaul.cli.times"

local M = { order = { "logs" }, actions = {} }

local RANGE_CODES = { INVALID_TIME_FORMAT = true, INVALID_PARAMETER__ILLEGAL_TIME = true }

--- Records written so far by write_logs, for the progress line (its page events count pages
-- only): the state file's count with --resume (saved after every page), else nil.
-- @tparam string|nil state_file
-- @treturn number|nil
function M.records_so_far(state_file)
  if not state_file then return nil end
  local core = require "loghaul.core"
  local text = type(core.read_file) == "function" and core.read_file(state_file, 1024 * 1024)
  if not text then return nil end
  local ok, st = pcall(require("cjson").decode, text)
  return ok and type(st) == "table" and tonumber(st.records) or nil
end

M.actions.logs = {
  usage = "loghaul zenlayer logs --since 7d|2026-05-01T00:00:00Z [--until now] [--event E] [--resource R]\n"
    .. "                      [--client-ip IP] [--output FILE.jsonl|-] [--resume STATEFILE]",
  help = "Pages through DescribeLogs over the range (split into the API's 30-day windows) and writes\n"
    .. "every record as one JSON line, as the server sent it: to FILE (written to FILE.part, renamed\n"
    .. "when complete) or to stdout (-, the default). --resume STATEFILE saves the window, cursor and\n"
    .. "records written after every page, so a killed or repeated run continues where it stopped and\n"
    .. "each record lands once; the state file is removed when the range is complete.",
  settings = "LOGHAUL_ZENLAYER_URL (default https://console.zenlayer.com), LOGHAUL_ZENLAYER_AK_ID, "
    .. "LOGHAUL_ZENLAYER_AK_PASSWORD, LOGHAUL_CA_FILE",
  flags = {
    since = { value = "TIME", help = "start of the range (7d, 12h, ISO 8601; at most 90 days ago; required)" },
    ["until"] = { value = "TIME", help = "end of the range (default now)" },
    event = { value = "E", help = "only records of this resEvent" },
    resource = { value = "R", help = "only records of this resUid" },
    ["client-ip"] = { value = "IP", help = "only records from this clientIP" },
    output = { value = "FILE|-", help = "where the JSON Lines go (default -, stdout)" },
    resume = { value = "STATEFILE", help = "save progress after every page; continue from it next run" },
    ["page-size"] = { value = "N", parse = args.positive_integer, help = "records per page (1..1000, default 1000)" },
    json = { help = "print the summary (path, records, pages, bytes) as JSON on stdout (needs --output FILE)" },
  },
  run = function(ctx, a)
    local point = times.point_flag(ctx.now)
    if not a.since then args.fail("%s: --since TIME is required (7d, 12h, 2026-05-01T00:00:00Z)", ctx.where) end
    local s = point(a.since, "--since")
    local e = a["until"] and point(a["until"], "--until") or math.floor(ctx.now())
    if s >= e then
      args.fail("--since %s (%s) must be before --until (%s)", a.since, times.format(s), times.format(e))
    end
    if a["page-size"] and a["page-size"] > 1000 then args.fail("--page-size: %d is over 1000", a["page-size"]) end
    local output = a.output or "-"
    if a.json and output == "-" then args.fail("--json needs --output FILE (stdout carries the records)") end
    local loghaul = require "loghaul"
    local ui = ctx.ui
    local opts = ctx:client_options{ endpoint = ctx:setting("ZENLAYER_URL"), access_key_id = ctx:need("ZENLAYER_AK_ID"),
                                     access_key_password = ctx:need("ZENLAYER_AK_PASSWORD") }
    if ui.enabled then
      opts.on_progress = function(ev)
        if ev.phase == "page" and ev.records == nil then
          ev.records = M.records_so_far(a.resume)
        end
        ui:event(ev)
      end
    end
    local zl = ctx:construct(loghaul.zenlayer, opts)
    local params = { start_time = times.format(s), end_time = times.format(e), res_uid = a.resource,
                     res_event = a.event, client_ip = a["client-ip"], page_size = a["page-size"] }
    params.output, params.state_file = output, a.resume
    local res, err = zl:write_logs(params)
    zl:close()
    if not res then
      if type(err) == "table" and err.kind == "invalid" and RANGE_CODES[err.code] then
        args.fail("--since/--until: %s (range %s .. %s)", tostring(err.message), params.start_time, params.end_time)
      end
      ctx:error("zenlayer logs failed: %s%s", tostring(err),
        a.resume and ("; run again with --resume " .. a.resume .. " to continue") or "")
      return 1
    end
    if a.json then
      local cjson = require "cjson"
      ctx.out:write(cjson.encode{ path = res.path, records = res.records, pages = res.pages, bytes = res.bytes }, "\n")
    end
    ctx:say("%d records from %s to %s%s", res.records or 0, params.start_time, params.end_time,
      output ~= "-" and (" written to " .. output) or "")
    return 0
  end,
}

return M
