-- bench/cursor's clients share their command line:
--   lua zl_<client>.lua BASE_URL CA_FILE ACCESS_KEY_ID PASSWORD START_TIME END_TIME [OUTPUT]
-- START_TIME/END_TIME are UTC yyyy-MM-ddTHH:mm:ssZ; each client prints "records=N" and exits 0,
-- or prints "unsupported: why" and exits 3 when this build lacks what it needs.
local M = {}

function M.parse(argv)
  local a = { base_url = argv[1], ca_file = argv[2], id = argv[3], password = argv[4],
              start_time = argv[5], end_time = argv[6], output = argv[7] }
  for _, k in ipairs{ "base_url", "ca_file", "id", "password", "start_time", "end_time" } do
    if not a[k] then
      io.stderr:write("usage: BASE_URL CA_FILE ACCESS_KEY_ID PASSWORD START_TIME END_TIME [OUTPUT]\n")
      os.exit(2)
    end
  end
  return a
end

function M.unsupported(why)
  io.write("unsupported: ", why, "\n")
  os.exit(3)
end

-- The windows the hand-written loops page: consecutive legal windows (< 30 days) that cover
-- [start, end] once, each starting the second after the previous one ends (windows are
-- inclusive at second precision, so no record is fetched twice). each_log pages the same
-- ranges; its windows share their boundary second and it drops the repeat itself.
function M.windows(start_time, end_time)
  local function parse(s)
    local y, mo, d, h, mi, se = s:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z$")
    assert(y, "bad time " .. s)
    -- days from civil (proleptic Gregorian); not os.time, which reads local time
    y, mo = tonumber(y), tonumber(mo)
    if mo <= 2 then y = y - 1 end
    local fl = math.floor
    local era = fl(y / 400)
    local yoe = y - era * 400
    local mp = (mo + 9) % 12
    local doy = fl((153 * mp + 2) / 5) + tonumber(d) - 1
    local doe = yoe * 365 + fl(yoe / 4) - fl(yoe / 100) + doy
    return (era * 146097 + doe - 719468) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(se)
  end
  local s, e = parse(start_time), parse(end_time)
  local out = {}
  while s <= e do
    local we = math.min(s + 30 * 86400 - 1, e)
    out[#out + 1] = { os.date("!%Y-%m-%dT%H:%M:%SZ", s), os.date("!%Y-%m-%dT%H:%M:%SZ", we) }
    s = we + 1
  end
  return out
end

return M
