-- Hostile and broken servers (tests/reliability/hostile_server.lua): every answer below gets
-- a clear error object (or a correct result); nothing raises, hangs past its timeout, or
-- writes outside dest; credentials never follow a redirect to another host.
local loghaul = require "loghaul"
local errors = require "loghaul.errors"
local hostile = require "reliability.hostile"
local shell = require "helpers.shell"
local tu = require "helpers.util"

local H, dir
local tried = 0

local SECRETS = {
  cms_sk = "cms-sk-hostile-0123456789abcdef", dc_token = "MIIDC-hostile-token-0123456789",
  dc_sk = "hwsk-hostile-secret-0123456789", ys_secret = "ys-secret-hostile-0123456789",
  zl_pw = "zl-password-hostile-0123456789", iam_pw = "Iam#hostile#Passw0rd",
}

local function common(extra)
  local o = { endpoint = H.url, timeout = 2, connect_timeout = 2, log = false,
              retry = { max_attempts = 2, base_delay = 0.01, max_delay = 0.02, max_retry_after = 0.05 } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function clients(extra)
  return {
    cms = loghaul.cms(common{ access_key = "cmsak", secret_key = SECRETS.cms_sk, base_url = H.url }),
    dc = loghaul.clouddc(common{ project_id = "p1", auth = { token = SECRETS.dc_token } }),
    dc_aksk = loghaul.clouddc(common{ project_id = "p1", auth = { access_key = "AK1", secret_key = SECRETS.dc_sk } }),
    dc_iam = loghaul.clouddc(common{ project_id = "p1", auth = { iam_endpoint = H.url, user = "u",
      password = SECRETS.iam_pw, domain = "d", project = "cn-east-3" } }),
    ys = loghaul.yeastar(common{ base_url = H.url, client_id = "id1", client_secret = SECRETS.ys_secret }),
    zl = loghaul.zenlayer(common{ access_key_id = "zlak", access_key_password = SECRETS.zl_pw }),
    extra = extra,
  }
end

-- every public operation of every vendor, as (name, function(clients, dest) → res, err)
local OPS = {
  { "cms upload", function(c) return c.cms:upload_client_log(dir .. "/up.zip") end },
  { "clouddc export", function(c) return c.dc:export_server_logs("srv1") end },
  { "clouddc export aksk", function(c) return c.dc_aksk:export_server_logs("srv1") end },
  { "clouddc status", function(c) return c.dc:show_logs_export_status("srv1", "e1") end },
  { "clouddc status iam", function(c) return c.dc_iam:show_logs_export_status("srv1", "e1") end },
  { "clouddc download", function(c, dest) return c.dc:download_server_logs("srv1", "e1", { dest = dest }) end },
  { "yeastar list", function(c) return c.ys:list_system_logs{ page = 1 } end },
  { "yeastar url", function(c) return c.ys:system_log_download_url{ "20240422" } end },
  { "yeastar download", function(c, dest) return c.ys:download_system_logs({ "20240422" }, { dest = dest }) end },
  { "zenlayer page", function(c)
    return c.zl:describe_logs{ startTime = os.date("!%Y-%m-%dT00:00:00Z", os.time() - 5 * 86400),
                               endTime = os.date("!%Y-%m-%dT00:00:00Z", os.time() - 4 * 86400) }
  end },
}

local function no_secret(s, where)
  for name, v in pairs(SECRETS) do
    assert.is_nil(s:find(v, 1, true), name .. " leaked into " .. where)
  end
end

-- runs op; it must not raise; it returns a result or an error object; returns both
local function try(op, c, dest, limit)
  tried = tried + 1
  local t0 = os.time()
  local ok, res, err = pcall(op[2], c, dest)
  assert(ok, op[1] .. " raised: " .. tostring(res))
  assert.is_true(os.time() - t0 <= (limit or 15), op[1] .. " took too long")
  if res == nil then
    assert(errors.is(err), op[1] .. ": not an error object: " .. tostring(err))
    assert.is_string(err.kind)
    assert.is_truthy(errors.kinds[err.kind])
    assert.is_true(#tostring(err) > 10)
    no_secret(tostring(err), op[1] .. " error")
  end
  return res, err
end

local function only_in(dest)
  -- nothing but what a finished download may leave, and nothing outside dest
  for _, name in ipairs(tu.ls(dir)) do
    assert.is_truthy(({ ["up.zip"] = true, dest = true })[name], "unexpected file outside dest: " .. name)
  end
  for _, name in ipairs(tu.ls(dest)) do
    assert.is_nil(name:find("%.part$"), "leftover " .. name)
  end
end

describe("hostile servers", function()
  setup(function()
    H = hostile.start()
    dir = tu.tmpdir()
    shell.write_file(dir .. "/up.zip", "PK\3\4 fake zip")
  end)
  teardown(function()
    hostile.stop()
    tu.rmdir(dir)
    print(("\nhostile inputs tried: %d"):format(tried))
  end)

  local function dest()
    local d = dir .. "/dest"
    os.execute("rm -rf " .. tu.shell_quote(d) .. " && mkdir -p " .. tu.shell_quote(d))
    return d .. "/"
  end

  local function every_op(modes, check, limit)
    for _, op in ipairs(OPS) do
      hostile.mode(table.unpack and table.unpack(modes) or unpack(modes))
      local d = dest()
      local res, err = try(op, clients(), d, limit)
      if check then check(op[1], res, err) end
      only_in(d)
    end
  end

  it("truncated JSON, non-JSON and empty 200 answers", function()
    for _, body in ipairs{ '{"errcode":0,"acc', "not json at all", "", "\0\1\2\255", "[1,2", '"just a string"',
                           "null", "123", "[]", string.rep("[", 100000) } do
      every_op({ "raw 200 application/json " .. hostile.hex(body) }, function(name, res, err)
        if name:find("download") then return end
        -- uploadClientLog may answer an empty 200 (allow_empty), and `[]` decodes to a table
        if name == "cms upload" and (body == "" or body == "[]") then return end
        assert.is_nil(res, name .. " accepted " .. ("%q"):format(body:sub(1, 20)))
        assert.is_truthy(({ http = true, api = true, auth = true })[err.kind])
      end)
    end
  end)

  it("HTML error pages", function()
    for _, status in ipairs{ "502", "500", "403", "404" } do
      every_op({ "html " .. status }, function(name, res, err)
        assert.is_nil(res, name)
        assert.equal(tonumber(status), err.status)
        if status == "502" or status == "500" then assert.is_true(err.retryable) end
      end)
    end
  end)

  it("JSON of the wrong shape: strings where tables belong, missing fields", function()
    local shapes = {
      '{}', '{"errcode":0}', '{"errcode":0,"data":"x","total_number":"many"}', '{"errcode":"0","data":[1,"a",{}]}',
      '{"errcode":0,"file":{},"download_resource_url":5}',
      '{"errcode":0,"file":"x","download_resource_url":"//evil/x"}',
      '{"errcode":{},"errmsg":[]}', '{"export_id":{},"status":[],"percentage":{}}', '{"export_id":"e","status":{}}',
      '{"export_id":"e","status":"completed","percentage":"lots%"}', '{"status":{}}', '{"status":"500"}',
      '{"requestId":"r","response":"str"}', '{"requestId":"r","response":{"dataSet":"x","cursor":"y"}}',
      '{"requestId":"r","response":{"dataSet":[1,2],"cursor":[[]]}}', '{"requestId":{},"code":{},"message":{}}',
      '{"error_code":{},"error_msg":[]}', '{"access_token":{},"errcode":0}', '{"access_token":"","errcode":0}',
      '{"access_token":"t","access_token_expire_time":"soon","refresh_token":5,"errcode":0}',
    }
    for _, body in ipairs(shapes) do
      for _, status in ipairs{ "200", "201", "400" } do
        every_op({ "raw " .. status .. " application/json " .. hostile.hex(body) })
      end
    end
  end)

  it("a 2 GiB JSON answer stops at max_body, in memory bounded by it", function()
    for _, variant in ipairs{ "endless", "endless chunked", "lie" } do
      hostile.mode(variant)
      local c = loghaul.zenlayer(common{ access_key_id = "zlak", access_key_password = SECRETS.zl_pw,
                                         max_body = 1024 * 1024 })
      local before = collectgarbage("count")
      local res, err = try(OPS[#OPS], { zl = c })
      assert.is_nil(res)
      if variant ~= "lie" then
        assert.equal("BODY_TOO_LARGE", err.code)
        assert.equal("http", err.kind)
      else
        assert.is_truthy(err.kind == "network" or err.code == "BODY_TOO_LARGE")
      end
      assert.is_true(collectgarbage("count") - before < 64 * 1024, "Lua memory grew")
    end
    -- the default cap (64 MiB) holds too
    hostile.mode("endless")
    -- (64 MiB: more than the 2 s timeout of these clients lets through under ASan on a busy machine)
    local c = loghaul.zenlayer(common{ access_key_id = "zlak", access_key_password = SECRETS.zl_pw,
                                       retry = { max_attempts = 1 }, timeout = 60 })
    local _, err = try(OPS[#OPS], { zl = c }, nil, 60)
    assert.equal("BODY_TOO_LARGE", err.code)
  end)

  it("a header flood is an error, not a memory hog", function()
    -- 20000 lines (2.3 MB): over the core's 1 MiB cap, or libcurl's own limit first
    every_op({ "flood 20000" }, function(name, res, err)
      assert.is_nil(res, name)
      assert.is_truthy(err.code == "HEADERS_TOO_LARGE" or err.code == "CURLE_RECV_ERROR",
                       name .. " " .. tostring(err))
    end)
  end)

  it("a server that never answers times out, retries included, within the bound", function()
    hostile.mode("silent")
    local t0 = os.time()
    local c = loghaul.zenlayer(common{ access_key_id = "zlak", access_key_password = SECRETS.zl_pw, timeout = 1 })
    local _, err = try(OPS[#OPS], { zl = c }, nil, 6)
    assert.equal("timeout", err.kind)
    assert.equal(2, err.attempts)
    assert.is_true(os.time() - t0 <= 5)
    -- a create is not retried after a timeout (it may have reached the server)
    local dc = loghaul.clouddc(common{ project_id = "p1", auth = { token = SECRETS.dc_token }, timeout = 1 })
    local _, err2 = try(OPS[2], { dc = dc }, nil, 4)
    assert.equal("timeout", err2.kind)
    assert.equal(1, err2.attempts)
  end)

  it("credentials never follow a redirect to another host", function()
    local elsewhere = 0   -- requests that did reach the other host: the checks below ran on them
    for _, target in ipairs{ H.other .. "/landing", "http://localhost:" .. H.port .. "/landing" } do
      for _, status in ipairs{ "", " 307" } do
        for _, op in ipairs(OPS) do
          -- the redirect comes at the step under test: a token call first answers well
          local first = op[1]:find("^yeastar") and
            ('ok {"errcode":0,"access_token":"ACCESS-' .. SECRETS.ys_secret:sub(-8) ..
             '-tok","access_token_expire_time":1800,"refresh_token":"REFRESH-tok-0123",' ..
             '"refresh_token_expire_time":86400}')
          if status == " 307" then
            -- the raw redirect mode answers 302; a 307 is sent through the raw mode
            hostile.mode(first or ("raw 307 text/plain"), "raw 307 text/plain")
          end
          local modes = { "redirect " .. target }
          if first then table.insert(modes, 1, first) end
          if status == "" then hostile.mode(table.unpack and table.unpack(modes) or unpack(modes)) end
          local d = dest()
          try(op, clients(), d)
          only_in(d)
          local requests = hostile.requests()
          assert.is_true(#requests > 0, op[1] .. ": no request reached the server")
          for _, r in ipairs(requests) do
            if not r.host:find("^127%.0%.0%.1") then
              elsewhere = elsewhere + 1
              local h = r.head:lower()
              assert.is_nil(h:find("\nauthorization:", 1, true), op[1] .. ": Authorization followed to " .. r.host)
              assert.is_nil(h:find("\nx-auth-token:", 1, true), op[1] .. ": X-Auth-Token followed to " .. r.host)
              assert.is_nil(h:find("access_token=", 1, true), op[1] .. ": access_token followed to " .. r.host)
              no_secret(r.head, "the redirect target (" .. op[1] .. ")")
            end
          end
        end
      end
    end
    assert.is_true(elsewhere > 0, "no redirect was followed: nothing was checked")
  end)

  it("server-chosen file names with ../, /, NUL and control characters stay inside dest", function()
    local names = { "../../escape-a", "/tmp/escape-b", "a/../../escape-c", "..", ".", "", "a\0b", "a\1b",
                    "a\tb", "a\127b", "a\rb", "..\\..\\escape-d", string.rep("n", 300), "ok-name.tar.gz" }
    for _, name in ipairs(names) do
      hostile.mode("name " .. hostile.hex(name))
      local d = dest()
      local res, err = try(OPS[6], clients(), d)
      if name == "ok-name.tar.gz" then assert.is_truthy(res, "a plain name refused: " .. tostring(err)) end
      if res then
        assert.equal(d, res.path:sub(1, #d))
        assert.is_nil(res.path:sub(#d + 1):find("/"), "a sub-path: " .. res.path)
        assert.equal("PAYLOAD", tu.size(res.path) and io.open(res.path, "rb"):read("*a"))
      else
        -- refused by loghaul, or already by libcurl (a NUL in a header line)
        assert.is_truthy(err.code == "UNSAFE_FILE_NAME" or err.code == "CURLE_WEIRD_SERVER_REPLY", err.code)
        assert.same({}, tu.ls(d))
      end
      only_in(d)
      for _, esc in ipairs{ "escape-a", "escape-b", "escape-c", "escape-d" } do
        assert.is_false(tu.exists(dir .. "/" .. esc) or tu.exists("/tmp/" .. esc), "escaped: " .. esc)
      end
    end
    -- Yeastar's name comes in the JSON `file` field
    for _, name in ipairs{ "../../escape-y", "/etc/escape-y", "a\0b", "a\1b", ".." } do
      local link = require("cjson").encode{ errcode = 0, errmsg = "SUCCESS", file = name,
                                             download_resource_url = "/api/download/x.tar" }
      hostile.mode('ok {"errcode":0,"access_token":"ACCESS-tok-0123","access_token_expire_time":1800}',
                   "ok " .. link, "name " .. hostile.hex("x.tar"))
      local d = dest()
      local res, err = try(OPS[9], clients(), d)
      if res then
        assert.equal(d, res.path:sub(1, #d))
        assert.is_nil(res.path:sub(#d + 1):find("/"))
      else
        assert.is_truthy(err.code == "UNSAFE_FILE_NAME" or err.code == "INVALID_RESPONSE", err.code)
      end
      only_in(d)
      assert.is_false(tu.exists(dir .. "/escape-y") or tu.exists("/etc/escape-y"))
    end
  end)
end)
