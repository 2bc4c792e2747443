--- `loghaul yeastar list|download`: Yeastar P-Series daily system logs.
-- @module loghaul.cli.yeastar
local args = require "loghaul.cli.args"
local times = require "loghaul.cli.times"

local M = { order = { "list", "download" }, actions = {} }

M.settings = "LOGHAUL_YEASTAR_URL, LOGHAUL_YEASTAR_CLIENT_ID, LOGHAUL_YEASTAR_CLIENT_SECRET, LOGHAUL_CA_FILE"

local function client(ctx)
  local loghaul = require "loghaul"
  local url, id = ctx:need("YEASTAR_URL"), ctx:need("YEASTAR_CLIENT_ID")
  return ctx:construct(loghaul.yeastar, ctx:client_options{
    base_url = url, client_id = id, client_secret = ctx:need("YEASTAR_CLIENT_SECRET"),
    token_cache = ctx:token_cache("yeastar") })
end

--- Every daily log the PBX has, page after page (the API's own default page is small).
-- @tparam table pbx
-- @tparam string order "asc" | "desc"
-- @treturn table|nil the entries `{ file_name = "20240610", ... }`, or nil, err
function M.list_all(pbx, order)
  local all, page = {}, 1
  while true do
    local res, err = pbx:list_system_logs{ page = page, page_size = 100, order_by = order }
    if not res then return nil, err end
    for _, f in ipairs(res.data) do all[#all + 1] = f end
    local total = tonumber(res.total_number)
    if #res.data == 0 or (total and #all >= total) or (not total and #res.data < 100) then break end
    page = page + 1
  end
  return all
end

local function order_flag(text, flag)
  if text ~= "asc" and text ~= "desc" then args.fail("%s: %q must be asc or desc", flag, text) end
  return text
end

M.actions.list = {
  usage = "loghaul yeastar list [--order desc] [--json]",
  help = "Lists the PBX's daily system logs (system_log/list, every page), one day a line;\n"
    .. "--json prints the API's entries as a JSON array.",
  settings = M.settings,
  flags = {
    order = { value = "asc|desc", parse = order_flag, help = "newest first (desc, the default) or oldest first" },
    json = { help = "print a JSON array of the entries" },
  },
  run = function(ctx, a)
    local pbx = client(ctx)
    local all, err = M.list_all(pbx, a.order or "desc")
    pcall(pbx.close, pbx)
    if not all then
      ctx:error("list failed: %s", tostring(err))
      return 1
    end
    if a.json then
      local cjson = require "cjson"
      ctx.out:write(#all == 0 and "[]" or cjson.encode(all), "\n")
    else
      for _, f in ipairs(all) do ctx.out:write(tostring(f.file_name), "\n") end
    end
    return 0
  end,
}

-- a day as the API names it: YYYYMMDD (YYYY-MM-DD accepted)
local function day_id(w)
  local y, m, d = w:match("^(%d%d%d%d)%-?(%d%d)%-?(%d%d)$")
  if not y or not times.iso8601(("%s-%s-%s"):format(y, m, d)) then
    args.fail("loghaul yeastar download: %q is not a day (YYYYMMDD or YYYY-MM-DD)", w)
  end
  return y .. m .. d
end

M.actions.download = {
  usage = "loghaul yeastar download DAY... | --last 7d --dest DIR",
  help = "Downloads each day's system log archive (.tar) into DIR: DAY is YYYYMMDD (or YYYY-MM-DD);\n"
    .. "--last 7d takes the days the PBX lists from the UTC date 7 days ago through today.\n"
    .. "Prints DAY <tab> path <tab> bytes <tab> sha256 for each, or JSON Lines with --json.",
  settings = M.settings,
  ids = true,
  no_ids = "give DAY(s) (YYYYMMDD) or --last DURATION",
  flags = {
    dest = { value = "DIR", help = "folder for the archives (created if missing; required)" },
    last = { value = "DURATION", parse = times.duration_flag,
             help = "the days the PBX has from DURATION ago (UTC date) through today" },
  },
  more_ids = function(ctx, a)
    for i, w in ipairs(a.positional) do a.positional[i] = day_id(w) end
    if not a.last then return {} end
    local since = os.date("!%Y%m%d", math.floor(ctx.now() - a.last))
    local pbx = client(ctx)
    ctx.list_client = pbx
    local all, err = M.list_all(pbx, "asc")
    if not all then
      args.abort(1, "--last: listing the PBX's logs failed: " .. tostring(err))
    end
    local ids = {}
    for _, f in ipairs(all) do
      local day = tostring(f.file_name)
      if day >= since then ids[#ids + 1] = day end
    end
    return ids
  end,
  prepare = function(ctx, a)
    if not a.dest then args.fail("%s: --dest DIR is required (where the archives go)", ctx.where) end
    local pbx = ctx.list_client or client(ctx)
    local dest = a.dest:sub(-1) == "/" and a.dest or (a.dest .. "/")
    return function(day)
      return pbx:download_system_logs({ day }, { dest = dest })
    end, function() pbx:close() end
  end,
  line = function(id, f) return ("%s\t%s\t%d\t%s"):format(id, f.path, f.bytes, f.sha256) end,
  record = function(_, f) return { path = f.path, bytes = f.bytes, sha256 = f.sha256 } end,
}

return M
