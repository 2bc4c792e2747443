-- A randomized call of every public function (the core and the four clients' methods) with
-- wrong types and absurd values, from a seeded RNG. Each call either raises a Lua error with
-- a message (a programming error) or returns a value, or nil and an error object; never a
-- crash, a hang or a file outside its sandbox. Nothing here reaches a real server: endpoints
-- point at 127.0.0.1:1 (refused at once) and retries are off.
local loghaul = require "loghaul"
local core = require "loghaul.core"
local errors = require "loghaul.errors"
local tu = require "helpers.util"

local SEED = tonumber(os.getenv("LOGHAUL_FUZZ_SEED") or "") or 4242
local CALLS = tonumber(os.getenv("LOGHAUL_FUZZ_CALLS") or "") or 3000

describe("public API under random arguments", function()
  local dir
  setup(function() dir = tu.tmpdir() end)
  teardown(function() tu.rmdir(dir) end)

  it(("%d seeded calls: clean errors only"):format(CALLS), function()
    math.randomseed(SEED)
    local R = math.random
    local sandbox = dir .. "/sb"
    local atoms = {
      n = { 0, -1, 1, 0.5, -0.0, 1e308, -1e308, 1 / 0, -1 / 0, 2 ^ 53, 2 ^ 63, -2 ^ 63, 1000, 3, 65536, 1048577 },
      s = { "", "a", "\0", "\0\1\2\255", string.rep("x", 70000), "../../etc/passwd", "%s%n%p", "20240422",
            "2023-07-26T16:00:00Z", "http://127.0.0.1:1/x", "https://127.0.0.1:1", "ftp://127.0.0.1:1/",
            "http://[::1", "http://127.0.0.1:1/a b", "https://u:p@127.0.0.1:1/", "GET", "POST", "HEAD",
            "X-Bad\r\nInjected: 1", "\255\254", "=", "YQ==", "====", sandbox .. "/f", sandbox .. "/d/",
            "1691028715371000001", "-1", "nan", "inf", "30%" },
      o = { true, false, print, coroutine.create(function() end), io.stdout },
    }
    local function value(depth)
      depth = depth or 0
      local k = R(1, 10)
      if k == 1 then return nil end
      if k <= 3 then return atoms.n[R(#atoms.n)] end
      if k <= 6 then return atoms.s[R(#atoms.s)] end
      if k == 7 then return atoms.o[R(#atoms.o)] end
      if depth > 2 then return {} end
      local t = {}
      local keys = { "url", "method", "headers", "body", "form", "output", "resume_from", "progress", "timeout",
        "connect_timeout", "max_body", "insecure", "ca_file", "proxy", "user_agent", "access_key", "secret_key",
        "timestamp", "date", "path", "query", "host", "content_type", "access_key_id", "access_key_password",
        "name", "data", "filename", "page", "page_size", "order_by", "sort_by", "startTime", "endTime", "size",
        "cursor", "start_time", "end_time", "page_size", "res_event", "dest", "file_type", "poll_interval",
        "low_speed_limit", "low_speed_time", "follow_redirects", "max_redirects", "body_file", "body_sha256" }
      for _ = 1, R(0, 5) do t[keys[R(#keys)]] = value(depth + 1) end
      for i = 1, R(0, 2) do t[i] = value(depth + 1) end
      return t
    end
    -- dest and paths only inside the sandbox, so nothing random lands in the working directory
    local function dest()
      local c = R(1, 4)
      if c == 1 then return sandbox .. "/d" .. R(1, 3) .. "/" end
      if c == 2 then return sandbox .. "/f" .. R(1, 3) end
      if c == 3 then return value() ~= nil and R(1, 2) or nil end
      return { sandbox }
    end
    local base = { endpoint = "http://127.0.0.1:1", base_url = "http://127.0.0.1:1", log = false, timeout = 2,
                   connect_timeout = 1, retry = { max_attempts = 1 } }
    local function opts(extra)
      local o = {}
      for k, v in pairs(base) do o[k] = v end
      for k, v in pairs(extra) do o[k] = v end
      -- now and then a random option on top
      if R(1, 3) == 1 then
        local keys = { "timeout", "retry", "log", "insecure", "max_body", "ca_file", "on_progress", "now", "proxy" }
        local k = keys[R(#keys)]
        local v = value()
        if not (k == "timeout" and type(v) == "number" and v > 5) and k ~= "now" then o[k] = v end
      end
      return o
    end
    local good = {
      cms = function() return loghaul.cms(opts{ access_key = "ak", secret_key = "skskskskskskk" }) end,
      dc = function()
        return loghaul.clouddc(opts{ project_id = "p1", auth = { access_key = "ak", secret_key = "sk12" } })
      end,
      dct = function() return loghaul.clouddc(opts{ project_id = "p1", auth = { token = "tok-123456" } }) end,
      ys = function() return loghaul.yeastar(opts{ client_id = "id", client_secret = "secret-1234" }) end,
      zl = function() return loghaul.zenlayer(opts{ access_key_id = "id", access_key_password = "pw-123456" }) end,
    }
    local session = core.session{ timeout = 2, connect_timeout = 1 }
    local function req()
      local t = value()
      if type(t) == "table" then
        if R(1, 2) == 1 then t.url = atoms.s[R(10, 14)] end
        if t.output ~= nil then t.output = sandbox .. "/out" end
        if t.body_file ~= nil then t.body_file = sandbox .. "/none" end
      end
      return t
    end
    local targets = {
      { "core.session", function() return core.session(value()) end },
      { "session:request", function() return session:request(req()) end },
      { "session.request(bad self)", function() return session.request(value(), req()) end },
      { "core.sha256", function() return core.sha256(value()) end },
      { "core.hmac_sha256", function() return core.hmac_sha256(value(), value()) end },
      { "core.hex", function() return core.hex(value()) end },
      { "core.sha256_file", function() return core.sha256_file(R(1, 2) == 1 and sandbox .. "/f1" or value()) end },
      { "core.random", function() return core.random(value()) end },
      { "core.base64_encode", function() return core.base64_encode(value()) end },
      { "core.base64_decode", function() return core.base64_decode(value()) end },
      { "core.monotonic", function() return core.monotonic(value()) end },
      { "core.sign_auth_v2", function() return core.sign_auth_v2(value()) end },
      { "core.sign_sdk_hmac_sha256", function() return core.sign_sdk_hmac_sha256(value()) end },
      { "core.sign_zc2", function() return core.sign_zc2(value()) end },
      { "loghaul.cms", function() return loghaul.cms(value()) end },
      { "loghaul.clouddc", function() return loghaul.clouddc(value()) end },
      { "loghaul.yeastar", function() return loghaul.yeastar(value()) end },
      { "loghaul.zenlayer", function() return loghaul.zenlayer(value()) end },
      { "errors.new", function() return errors.new(value()) end },
      { "errors.redact", function() return errors.redact(value(), value()) end },
      { "cms:upload_client_log", function() return good.cms():upload_client_log(value(), value()) end },
      { "dc:export_server_logs", function() return good.dc():export_server_logs(value()) end },
      { "dc:show_logs_export_status", function() return good.dct():show_logs_export_status(value(), value()) end },
      { "dc:download_server_logs", function()
        return good.dc():download_server_logs(value(), value(), { dest = dest() })
      end },
      { "dc:export_and_download", function()
        local o = value()
        if type(o) == "table" then o.dest = dest(); o.poll_interval = 0; o.timeout = 0 end
        return good.dct():export_and_download(value(), o)
      end },
      { "ys:list_system_logs", function() return good.ys():list_system_logs(value()) end },
      { "ys:system_log_download_url", function() return good.ys():system_log_download_url(value()) end },
      { "ys:download_system_logs", function() return good.ys():download_system_logs(value(), { dest = dest() }) end },
      { "zl:describe_logs", function() return good.zl():describe_logs(value()) end },
      { "zl:each_log", function()
        local it = good.zl():each_log(value())
        for _ = 1, 3 do if it() == nil then break end end
        return true
      end },
      { "client:close", function() local c = good.zl(); c:close(); return c:close() or true end },
    }
    local stats = { raised = 0, returned_err = 0, returned = 0 }
    local t0 = os.time()
    for i = 1, CALLS do
      local t = targets[(i - 1) % #targets + 1]
      local ok, res, err = pcall(t[2])
      if not ok then
        -- a programming error: a message (string), or for each_log an error object
        assert(type(res) == "string" and #res > 0 or errors.is(res),
               t[1] .. " raised a non-message: " .. tostring(res))
        stats.raised = stats.raised + 1
      elseif res == nil and err ~= nil then
        assert(errors.is(err)
               or (type(err) == "table" and type(err.kind) == "string" and type(err.message) == "string"),
               t[1] .. " returned a bad error: " .. tostring(err))
        stats.returned_err = stats.returned_err + 1
      else
        stats.returned = stats.returned + 1
      end
    end
    session:close()
    assert.is_true(os.time() - t0 < 120, "too slow")
    -- nothing outside the sandbox
    for _, name in ipairs(tu.ls(dir)) do assert.equal("sb", name) end
    print(("\napi fuzz: %d calls (seed %d): %d raised, %d returned an error, %d returned a value"):format(
      CALLS, SEED, stats.raised, stats.returned_err, stats.returned))
  end)
end)
