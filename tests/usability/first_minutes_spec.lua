-- The first ten minutes of a new user (issue 12): every common mistake gets a one-line
-- answer that names the field or the fix, raised at the user's own line; progress events
-- end at 100 % with integer counts; the defaults do what a newcomer expects.
-- Test doubles only (vendors.fake): no server, no waiting. The emulator cases are in
-- first_minutes_emulator_spec.lua.
local loghaul = require "loghaul"
local fake = require "vendors.fake"
local util = require "loghaul.util"

local THIS = "first_minutes_spec.lua"

-- runs f, which must raise a string; returns the message and checks that it points at `line`
-- of this file (the caller's line, not loghaul's)
local function raised(f, line)
  local ok, err = pcall(f)
  assert.is_false(ok, "did not raise")
  assert.is_string(err)
  if line then
    assert.matches(THIS .. ":" .. line .. ": ", err, 1, true)
  end
  assert.is_nil(err:find("\n"), "not one line: " .. err)
  return err
end

local function here() return debug.getinfo(2, "l").currentline end

local ZL = { access_key_id = "AKID", access_key_password = "Gu5t9xGARNpq86cd98joQYCN3" }
local function with(t, extra)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("misspelt options", function()
  it("a constructor names the unknown key and the nearest known one, at the caller's line", function()
    local line
    local err = raised(function() line = here() loghaul.zenlayer(with(ZL, { tiemout = 5 })) end)
    assert.matches(THIS .. ":" .. line .. ": ", err, 1, true)
    assert.matches("loghaul.zenlayer: unknown option 'tiemout' (did you mean 'timeout'?)", err, 1, true)
    err = raised(function() loghaul.zenlayer(with(ZL, { ca_cert = "/x.pem" })) end)
    assert.matches("unknown option 'ca_cert' (did you mean 'ca_file'?)", err, 1, true)
    err = raised(function() loghaul.zenlayer(with(ZL, { ca_cert = "/x.pem", tiemout = 5 })) end, here())
    assert.matches("loghaul.zenlayer: unknown options 'ca_cert' (did you mean 'ca_file'?), "
      .. "'tiemout' (did you mean 'timeout'?)", err, 1, true)
    err = raised(function() loghaul.cms{ base_url = "https://h", acces_key = "a", secret_key = "s" } end)
    assert.matches("loghaul.cms: unknown option 'acces_key' (did you mean 'access_key'?)", err, 1, true)
    err = raised(function()
      loghaul.yeastar{ base_url = "https://h", client_id = "i", client_secret = "s", clientSecret = "s" }
    end)
    assert.matches("unknown option 'clientSecret' (loghaul.yeastar spells it 'client_secret')", err, 1, true)
    err = raised(function() loghaul.clouddc{ endpoint = "https://h", projectid = "p", auth = { token = "t" } } end)
    assert.matches("unknown option 'projectid' (loghaul.clouddc spells it 'project_id')", err, 1, true)
  end)

  it("auth and retry tables too", function()
    local err = raised(function()
      loghaul.clouddc{ endpoint = "https://h", project_id = "p", auth = { tokne = "t" } }
    end)
    assert.matches("loghaul.clouddc auth: unknown option 'tokne' (did you mean 'token'?)", err, 1, true)
    err = raised(function()
      loghaul.clouddc{ endpoint = "https://h", project_id = "p", auth = { token = "t", user = "u" } }
    end)
    assert.matches("loghaul.clouddc auth (token): unknown option 'user'", err, 1, true)
    err = raised(function() loghaul.zenlayer(with(ZL, { retry = { max_attempt = 2 } })) end)
    assert.matches("loghaul.zenlayer retry: unknown option 'max_attempt' (did you mean 'max_attempts'?)", err, 1,
                   true)
    err = raised(function() loghaul.zenlayer(with(ZL, { retry = { max_attempts = "x" } })) end, here())
    assert.matches("retry.max_attempts must be a non-negative number", err, 1, true)
  end)

  it("method options tables too: each_log names the spelling it takes", function()
    local zl = loghaul.zenlayer(fake.opts(ZL))
    local line
    local err = raised(function()
      line = here() zl:each_log{ startTime = "2023-08-01T00:00:00Z", end_time = "2023-08-02T00:00:00Z" }
    end)
    assert.matches(THIS .. ":" .. line .. ": ", err, 1, true)
    assert.matches("zl:each_log: unknown option 'startTime' (zl:each_log spells it 'start_time')", err, 1, true)
    err = raised(function() zl:describe_logs{ start_time = "x", endTime = "y" } end)
    assert.matches("unknown option 'start_time' (zl:describe_logs spells it 'startTime')", err, 1, true)
    local dc = loghaul.clouddc(fake.opts{ endpoint = "https://h", project_id = "p", auth = { token = "t" } })
    err = raised(function() dc:export_and_download("srv", { dest = "x/", poll_intervall = 1 }) end, here())
    assert.matches("dc:export_and_download: unknown option 'poll_intervall' (did you mean 'poll_interval'?)", err, 1,
                   true)
    local pbx = loghaul.yeastar(fake.opts{ base_url = "https://h", client_id = "i", client_secret = "s" })
    err = raised(function() pbx:list_system_logs{ order = "desc" } end, here())
    assert.matches("unknown option 'order' (did you mean 'order_by'?)", err, 1, true)
    err = raised(function() pbx:download_system_logs({ "20240101" }, { dst = "logs/" }) end, here())
    assert.matches("unknown option 'dst' (did you mean 'dest'?)", err, 1, true)
    local cms = loghaul.cms(fake.opts{ base_url = "https://h", access_key = "a", secret_key = "s" })
    err = raised(function() cms:upload_client_log("x.zip", { filetype = 0 }) end, here())
    assert.matches("unknown option 'filetype' (cms:upload_client_log spells it 'file_type')", err, 1, true)
  end)
end)

describe("endpoint", function()
  it("with a path is refused at construction, saying what the client adds", function()
    local err = raised(function()
      loghaul.cms{ base_url = "https://10.0.0.5:28080/rest/cmsapp/v1", access_key = "a", secret_key = "s" }
    end)
    assert.matches("loghaul: base_url must be scheme://host[:port]; the client adds /rest/cmsapp/... "
      .. "(got https://10.0.0.5:28080/rest/cmsapp/v1)", err, 1, true)
    local zl_opts = with(ZL, { endpoint = "https://console.zenlayer.com/api/v2/zls" })
    err = raised(function() loghaul.zenlayer(zl_opts) end, here())
    assert.matches("endpoint must be scheme://host[:port]; the client adds /api/v2/zls", err, 1, true)
    -- a trailing slash is fine
    assert.is_table(loghaul.zenlayer(fake.opts(with(ZL, { endpoint = "https://console.zenlayer.com/" }))))
  end)

  it("a 404 names the method and the path, never the query (Yeastar's token)", function()
    local opts, session = fake.opts({ base_url = "https://pbx:8088", client_id = "i", client_secret = "s" }, {
      { status = 200, body = '{"errcode":0,"access_token":"AT-secret-1","access_token_expire_time":1800,'
        .. '"refresh_token":"RT-secret-1","refresh_token_expire_time":86400}' },
      { status = 404, body = "<html>not here</html>" } })
    local pbx = loghaul.yeastar(opts)
    local page, err = pbx:list_system_logs{ page = 2 }
    assert.is_nil(page)
    assert.equal(404, err.status)
    assert.equal("GET", err.method)
    assert.equal("/openapi/v1.0/system_log/list", err.url_path)
    assert.matches("(GET /openapi/v1.0/system_log/list)", tostring(err), 1, true)
    assert.is_nil(tostring(err):find("access_token", 1, true))
    assert.is_nil(tostring(err):find("AT-secret", 1, true))
    assert.matches("access_token=AT%-secret%-1", session.requests[2].url) -- it was in the query
  end)
end)

describe("dest that cannot be created", function()
  local function no_request()
    return { default = function(req) error("no request expected: " .. req.url) end }
  end

  it("fails before the first request, with the OS reason, vendor and operation", function()
    local opts, session = fake.opts({ endpoint = "https://h", project_id = "p", auth = { token = "t" } }, no_request())
    local dc = loghaul.clouddc(opts)
    local file, err = dc:export_and_download("srv", { dest = "/etc/passwd/logs/" })
    assert.is_nil(file)
    assert.same({ "io", "ENOTDIR", "clouddc", "DownloadServerLogs" }, { err.kind, err.code, err.vendor, err.operation })
    assert.matches("/etc/passwd/logs: cannot create directory: Not a directory", tostring(err), 1, true)
    assert.equal(0, #session.requests)
    file, err = dc:download_server_logs("srv", "e1", { dest = "/etc/passwd/logs/x.tar.gz" })
    assert.is_nil(file)
    assert.same({ "ENOTDIR", "clouddc" }, { err.code, err.vendor })
    local opts2, session2 = fake.opts({ base_url = "https://h", client_id = "i", client_secret = "s" }, no_request())
    local pbx = loghaul.yeastar(opts2)
    file, err = pbx:download_system_logs({ "20240101" }, { dest = "/etc/passwd/logs/" })
    assert.is_nil(file)
    assert.same({ "io", "ENOTDIR", "yeastar", "download" }, { err.kind, err.code, err.vendor, err.operation })
    assert.equal(0, #session2.requests)
  end)
end)

describe("messages that name things", function()
  local zl
  before_each(function() zl = loghaul.zenlayer(fake.opts(ZL)) end)

  it("a missing end_time / endTime is named as missing", function()
    local ok, err = pcall(function()
      for _ in zl:each_log{ start_time = "2023-08-01T00:00:00Z" } do end
    end)
    assert.is_false(ok)
    assert.equal("invalid", err.kind)
    assert.matches("end_time is missing", tostring(err), 1, true)
    local page, perr = zl:describe_logs{ startTime = "2023-08-01T00:00:00Z" }
    assert.is_nil(page)
    assert.matches("endTime is missing", tostring(perr), 1, true)
    assert.equal("zenlayer", perr.vendor)
  end)

  it("a dot instead of a colon says to call it with a colon", function()
    local err = raised(function() zl.each_log{ start_time = "2023-08-01T00:00:00Z" } end, here())
    assert.matches("call it with a colon, zl:each_log{", err, 1, true)
    local dc = loghaul.clouddc(fake.opts{ endpoint = "https://h", project_id = "p", auth = { token = "t" } })
    err = raised(function() dc.export_and_download("srv-1", { dest = "logs/" }) end, here())
    assert.matches("call it with a colon, dc:export_and_download(", err, 1, true)
    err = raised(function() zl.describe_logs() end, here())
    assert.matches("call it with a colon", err, 1, true)
  end)

  it("a missing credential is named as missing", function()
    local err = raised(function() loghaul.zenlayer{ access_key_id = "x" } end, here())
    assert.matches("loghaul.zenlayer: access_key_password is missing", err, 1, true)
    err = raised(function() loghaul.clouddc{ endpoint = "https://h", project_id = "p",
                                             auth = { iam_endpoint = "https://iam", user = "u", password = "p",
                                                      domain = "d" } } end)
    assert.matches("auth.project (or auth.project_id) is missing", err, 1, true)
  end)
end)

describe("progress events", function()
  it("an upload ends with a 100 % event, counts are integers", function()
    local dir = fake.tmpdir()
    local path = dir .. "/OELOG_1.zip"
    local f = assert(io.open(path, "wb")) f:write(string.rep("z", 12345)) f:close()
    local events = {}
    local cms = loghaul.cms(fake.opts({ base_url = "https://h", access_key = "a", secret_key = "s",
                                        on_progress = function(ev) events[#events + 1] = ev end },
                                      { { status = 200, body = '{"status":"200"}' } }))
    assert(cms:upload_client_log(path))
    local last = events[#events]
    assert.same({ "upload", 12345, 12345, 100 }, { last.phase, last.done, last.total, last.percent })
    if math.type then assert.equal("integer", math.type(last.done)) end
    os.execute("rm -rf " .. dir)
  end)

  it("the last page event is delivered even inside the rate limit; counts are integers", function()
    local script = {}
    for i = 1, 18 do
      local cursor = i < 18 and (',"cursor":[' .. i .. "]") or ""
      script[i] = { status = 200, body = '{"requestId":"R","response":{"requestId":"R","dataSet":[{"opsTime":'
        .. '"2023-08-01T00:00:0' .. (i % 10) .. 'Z"}]' .. cursor .. "}}" }
    end
    local clock = fake.clock(util.parse_utc("2023-08-10T00:00:00Z"))   -- time stands still: all but
    local events = {}                                                    -- forced events are dropped
    local zl = loghaul.zenlayer(fake.opts(with(ZL, { on_progress = function(ev) events[#events + 1] = ev end }),
                                          script, clock))
    local n = 0
    for _ in zl:each_log{ start_time = "2023-08-01T00:00:00Z", end_time = "2023-08-02T00:00:00Z" } do n = n + 1 end
    assert.equal(18, n)
    local last = events[#events]
    assert.same({ "page", 18, 18, 100 }, { last.phase, last.done, last.total, last.percent })
    if math.type then assert.equal("integer", math.type(last.done)) end
  end)
end)

describe("defaults", function()
  it("list_system_logs() asks for the newest first", function()
    local opts, session = fake.opts({ base_url = "https://pbx:8088", client_id = "i", client_secret = "s" }, {
      { status = 200, body = '{"errcode":0,"access_token":"AT-1234","access_token_expire_time":1800,'
        .. '"refresh_token":"RT-1234","refresh_token_expire_time":86400}' },
      { status = 200, body = '{"errcode":0,"total_number":0,"data":[]}' } })
    assert(loghaul.yeastar(opts):list_system_logs())
    assert.matches("order_by=desc", session.requests[2].url, 1, true)
  end)

  it("export_and_download polls after 1 s first, growing to poll_interval (not 5 + 7.5 + 11.25 s)", function()
    local task = '{"export_id":"1","status":"Running","percentage":"30%"}'
    local dir = fake.tmpdir()
    local opts, _, clock = fake.opts({ endpoint = "https://h", project_id = "p", auth = { token = "t" } }, {
      { status = 202, body = task }, { status = 200, body = task }, { status = 200, body = task },
      { status = 200, body = '{"export_id":"1","status":"completed","percentage":"100%"}' },
      { status = 200, file = "TARGZ" } })
    assert(loghaul.clouddc(opts):export_and_download("srv", { dest = dir .. "/a.tar.gz" }))
    assert.same({ 1, 1.5, 2.25 }, clock.sleeps)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("login errors", function()
  it("are logged once (IAM, Yeastar)", function()
    local lines = {}
    local function log(level, msg) if level ~= "debug" then lines[#lines + 1] = msg end end
    local dc = loghaul.clouddc(fake.opts({ endpoint = "https://h", project_id = "p", log = log,
      auth = { iam_endpoint = "https://iam", user = "u", password = "pw-123456", domain = "d", project = "x" } },
      { { status = 401, body = '{"error_code":"IAM.0004","error_msg":"wrong password"}' } }))
    local _, err = dc:export_server_logs("srv")
    assert.equal("IAM.0004", err.code)
    local n = 0
    for _, l in ipairs(lines) do if l:find("IAM.0004", 1, true) then n = n + 1 end end
    assert.equal(1, n)
    lines = {}
    local pbx = loghaul.yeastar(fake.opts({ base_url = "https://pbx:8088", client_id = "i", client_secret = "s",
      log = log }, { { status = 200, body = '{"errcode":10005,"errmsg":"ACCESS DENIED"}' } }))
    _, err = pbx:list_system_logs()
    assert.equal("10005", err.code)
    n = 0
    for _, l in ipairs(lines) do if l:find("10005", 1, true) then n = n + 1 end end
    assert.equal(1, n)
  end)
end)
