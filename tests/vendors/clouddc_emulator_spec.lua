-- CloudDC export → status → download end to end, with each auth form (token, IAM password,
-- AK/SK), against the emulator over TLS. Archives are compared with the emulator's own file.
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F
local SERVER = F.clouddc.server_id
local NAME = F.clouddc.sn .. "-dump.tar.gz"

describe("clouddc against the emulator", function()
  local tmp, e

  local restore_polls
  setup(function()
    e = T.start()
    restore_polls = require("helpers.vendors").fast_export_polls()
  end)
  teardown(function() restore_polls() end)
  before_each(function()
    T.reset()
    tmp = T.tmpdir()
  end)
  after_each(function() T.rmdir(tmp) end)

  local function iam_auth()
    return { iam_endpoint = e.base_url, user = F.iam.user, password = F.iam.password,
             domain = F.iam.domain, project = F.iam.project }
  end
  local function aksk_auth()
    return { access_key = F.clouddc.access_key, secret_key = F.clouddc.secret_key }
  end
  local function client(auth, extra)
    local o = T.opts{ project_id = F.clouddc.project_id, auth = auth }
    for k, v in pairs(extra or {}) do o[k] = v end
    return loghaul.clouddc(o)
  end
  -- a token fetched by IAM through loghaul's own provider would not be independent: ask with curl
  local function curl_token()
    local body = ([[{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","password":"%s",]]
      .. [["domain":{"name":"%s"}}}},"scope":{"project":{"name":"%s"}}}}]]):format(
      F.iam.user, F.iam.password, F.iam.domain, F.iam.project)
    local q = T.shell.quote
    local out = T.shell.run("curl -sS -D - -o /dev/null --cacert " .. q(e.ca_file)
      .. " -H 'Content-Type: application/json;charset=utf8' --data-binary " .. q(body) .. " "
      .. q(e.base_url .. "/v3/auth/tokens?nocatalog=true"))
    return assert(out:match("[Xx]%-[Ss]ubject%-[Tt]oken:%s*([^\r\n]+)"))
  end
  -- the archive as the emulator serves it (size setting 300000 by default)
  local function emu_archive(size)
    return e.dir .. "/www/_vfiles/clouddc-" .. (size or 300000) .. ".tar.gz"
  end

  local function check_file(file, dir)
    assert.equal(dir .. "/" .. NAME, file.path)
    assert.equal(T.sha256sum(emu_archive()), T.sha256sum(file.path))
    assert.equal(T.sha256sum(file.path), file.sha256)
    assert.equal(T.size(emu_archive()), T.size(file.path))
    assert.equal(file.bytes, T.size(file.path))
    assert.same({ NAME }, T.ls(dir))   -- no .part, no state files
  end

  describe("auth", function()
    it("a token: export, status and download with X-Auth-Token", function()
      local dc = client{ token = curl_token() }
      local task, err = dc:export_server_logs(SERVER)
      assert.is_nil(err)
      assert.is_string(task.export_id)
      assert.equal(30, task.percentage)        -- "30%" from the emulator
      local c = T.counters("clouddc")
      assert.equal(1, c.exports_created)
      assert.equal(1, c.auth_token)
      assert.equal(0, c.auth_aksk)
      assert.equal(1, T.counters("iam").logins) -- only curl's
    end)

    it("an id with path characters is refused before sending, tagged with vendor and operation", function()
      local dc = client{ token = "MIIwhatever" }
      local _, err = dc:show_logs_export_status(SERVER, "../../x")
      assert.equal("invalid", err.kind)
      assert.equal("clouddc", err.vendor)
      assert.equal("ShowLogsExportStatus", err.operation)
      assert.equal(0, T.emu.stats().requests)
    end)

    it("a wrong token is kind auth, status 401, APIG.0301, sent once", function()
      local _, err = client{ token = "MIIbogus-token" }:export_server_logs(SERVER)
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert.equal("APIG.0301", err.code)
      assert.equal(1, err.attempts)
      assert.equal(0, T.counters("clouddc").exports_created)
    end)

    it("IAM password: one login (201 + X-Subject-Token) for many calls", function()
      local dc = client(iam_auth())
      local task = assert(dc:export_server_logs(SERVER))
      for _ = 1, 3 do assert.truthy(dc:show_logs_export_status(SERVER, task.export_id)) end
      assert.equal(1, T.counters("iam").logins)
      assert.equal(4, T.counters("clouddc").auth_token)
    end)

    -- IAM tokens live 1 s: a client makes an export, then its token expires. With `frozen`
    -- the client's clock stands still, so it believes its token is still fresh.
    local function export_then_expire(frozen)
      T.vendors.configure{ iam = { token_ttl = 1 } }
      local t0 = os.time()
      local dc = client(iam_auth(), frozen and { now = function() return t0 end } or nil)
      local task = assert(dc:export_server_logs(SERVER))
      T.sleep(1.2)
      return dc, task
    end

    it("IAM: the token is renewed after the short TTL expires, before a 401", function()
      local dc, task = export_then_expire()
      assert.truthy(dc:show_logs_export_status(SERVER, task.export_id))
      assert.equal(2, T.counters("iam").logins)
      assert.equal(0, T.counters("clouddc").auth_failures)
    end)

    it("IAM: a token the server calls expired (401 APIG.0307) is renewed once and the call retried", function()
      local dc, task = export_then_expire(true)
      local st, err = dc:show_logs_export_status(SERVER, task.export_id)
      assert.is_nil(err)
      assert.equal(task.export_id, st.export_id)
      assert.equal(2, T.counters("iam").logins)
      assert.equal(1, T.counters("clouddc").auth_failures)
    end)

    it("IAM: a 401 that survives the renewal fails as auth after exactly one renewal", function()
      local dc, task = export_then_expire(true)
      T.vendors.configure{ iam = { token_ttl = 0 } }   -- the renewed token is born expired
      local _, err = dc:show_logs_export_status(SERVER, task.export_id)
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert.equal("APIG.0307", err.code)
      assert.equal(2, T.counters("iam").logins)
      assert.equal(2, T.counters("clouddc").auth_failures)
      assert.equal(0, T.counters("clouddc").polls)
    end)

    it("IAM: a wrong password is kind auth with IAM's code; CloudDC is never called", function()
      local a = iam_auth()
      a.password = "not-the-password"
      local _, err = client(a):export_server_logs(SERVER)
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert.equal("IAM.0004", err.code)
      assert.is_nil(tostring(err):find("not-the-password", 1, true))
      assert.equal(0, T.counters("clouddc").requests)
    end)

    it("AK/SK: SDK-HMAC-SHA256 accepted for POST and GET; a wrong secret is 401 auth", function()
      local dc = client(aksk_auth())
      local task = assert(dc:export_server_logs(SERVER))
      assert.truthy(dc:show_logs_export_status(SERVER, task.export_id))
      local c = T.counters("clouddc")
      assert.equal(2, c.auth_aksk)
      assert.equal(0, c.auth_failures)
      local _, err = client{ access_key = F.clouddc.access_key, secret_key = "wrong-secret" }
        :show_logs_export_status(SERVER, task.export_id)
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert.equal("APIG.0301", err.code)
    end)
  end)

  describe("export, status, download", function()
    it("status: percentage a number from \"30%\" or 30, status as the API sent it", function()
      local dc = client(aksk_auth())
      T.vendors.configure{ clouddc = { percentage = "string", status_style = "Running" } }
      local task = assert(dc:export_server_logs(SERVER))
      assert.equal("number", type(task.percentage))
      local st = assert(dc:show_logs_export_status(SERVER, task.export_id))
      assert.equal("Running", st.status)
      assert.equal("number", type(st.percentage))
      T.vendors.configure{ clouddc = { percentage = "number", status_style = "processing" } }
      task = assert(dc:export_server_logs(SERVER))
      st = assert(dc:show_logs_export_status(SERVER, task.export_id))
      assert.equal("processing", st.status)
      assert.equal("number", type(st.percentage))
      assert.is_true(st.percentage > 30 and st.percentage < 100)
      assert.truthy(dc:show_logs_export_status(SERVER, task.export_id))
      st = assert(dc:show_logs_export_status(SERVER, task.export_id))
      assert.equal("completed", st.status:lower())
      assert.equal(100, st.percentage)
    end)

    it("download: name from Content-Disposition, the emulator's bytes, nothing else left in dest", function()
      local dc = client(aksk_auth())
      T.vendors.configure{ clouddc = { polls = 1 } }
      local task = assert(dc:export_server_logs(SERVER))
      -- not completed yet: the API's 400, no file
      local _, err = dc:download_server_logs(SERVER, task.export_id, { dest = tmp .. "/early/" })
      assert.equal(400, err.status)
      assert.equal("CloudDC.0400", err.code)
      assert.same({}, T.ls(tmp .. "/early"))
      assert.truthy(dc:show_logs_export_status(SERVER, task.export_id))
      local file = assert(dc:download_server_logs(SERVER, task.export_id, { dest = tmp .. "/logs/" }))
      check_file(file, tmp .. "/logs")
    end)

    it("download to a file path writes exactly there", function()
      local dc = client(aksk_auth())
      T.vendors.configure{ clouddc = { polls = 0 } }
      local task = assert(dc:export_server_logs(SERVER))
      local file = assert(dc:download_server_logs(SERVER, task.export_id, { dest = tmp .. "/x/my.tgz" }))
      assert.equal(tmp .. "/x/my.tgz", file.path)
      assert.equal(T.sha256sum(emu_archive()), T.sha256sum(file.path))
      assert.same({ "my.tgz" }, T.ls(tmp .. "/x"))
    end)

    it("a connection cut mid-download is resumed with Range; the result is the emulator's file", function()
      local dc = client(aksk_auth())
      T.vendors.configure{ clouddc = { polls = 0 } }
      local task = assert(dc:export_server_logs(SERVER))
      local content = "/v1/" .. F.clouddc.project_id .. "/physicalservers/" .. SERVER .. "/logs/exports/"
        .. task.export_id .. "/content"
      T.emu.fault{ path = content, cut_after = 100000, count = 1 }
      local file, err = dc:download_server_logs(SERVER, task.export_id, { dest = tmp .. "/" })
      assert.is_nil(err)
      check_file(file, tmp)
      assert.equal(2, T.path_requests(content))
    end)

    it("an older file of the same name is replaced only by a complete download", function()
      local dc = client(aksk_auth(), { retry = { max_attempts = 2, base_delay = 0.01, max_delay = 0.02 } })
      T.vendors.configure{ clouddc = { polls = 0 } }
      local task = assert(dc:export_server_logs(SERVER))
      local old = tmp .. "/" .. NAME
      T.write(old, "the old archive")
      local content = "/v1/" .. F.clouddc.project_id .. "/physicalservers/" .. SERVER .. "/logs/exports/"
        .. task.export_id .. "/content"
      T.emu.fault{ path = content, cut_after = 1000 }     -- every attempt is cut
      local file, err = dc:download_server_logs(SERVER, task.export_id, { dest = tmp .. "/" })
      assert.is_nil(file)
      assert.equal("network", err.kind)
      assert.is_true(err.retryable)
      assert.equal(2, err.attempts)
      assert.equal("the old archive", T.read(old))
      assert.same({ NAME }, T.ls(tmp))                       -- no .part left behind
      T.emu.reset()
      file = assert(dc:download_server_logs(SERVER, task.export_id, { dest = tmp .. "/" }))
      check_file(file, tmp)
    end)

    it("a hostile Content-Disposition never escapes dest", function()
      local dc = client(aksk_auth())
      T.vendors.configure{ clouddc = { polls = 0, hostile_filename = true } }  -- ../../etc/passwd
      local task = assert(dc:export_server_logs(SERVER))
      local file, err = dc:download_server_logs(SERVER, task.export_id, { dest = tmp .. "/d/" })
      if file then
        assert.equal(tmp .. "/d/passwd", file.path)           -- reduced to its base name
        assert.same({ "passwd" }, T.ls(tmp .. "/d"))
      else
        assert.equal("UNSAFE_FILE_NAME", err.code)
        assert.same({}, T.ls(tmp .. "/d"))
      end
      assert.same({ "d" }, T.ls(tmp))
      T.vendors.configure{ clouddc = { hostile_filename = "a\tb\1c.tar.gz" } }
      file, err = dc:download_server_logs(SERVER, task.export_id, { dest = tmp .. "/e/" })
      assert.is_nil(file)
      assert.equal("UNSAFE_FILE_NAME", err.code)
      assert.same({}, T.ls(tmp .. "/e"))
    end)
  end)

  describe("export_and_download", function()
    it("creates, polls several times with progress events, downloads", function()
      T.vendors.configure{ clouddc = { polls = 3 } }
      local events, cb = T.progress_log()
      local dc = client(iam_auth(), { on_progress = cb })
      local file, err = dc:export_and_download(SERVER, { dest = tmp .. "/logs/", poll_interval = 0.26,
                                                         max_poll_interval = 0.3 })
      assert.is_nil(err)
      check_file(file, tmp .. "/logs")
      local c = T.counters("clouddc")
      assert.equal(1, c.exports_created)
      assert.equal(3, c.polls)
      assert.equal(1, c.downloads)
      assert.equal(1, T.counters("iam").logins)
      local exports, downloads, last_export, last_download = 0, 0, nil, nil
      for _, ev in ipairs(events) do
        if ev.phase == "export" then
          exports = exports + 1
          last_export = ev
          assert.equal("number", type(ev.percent))
        elseif ev.phase == "download" then
          downloads = downloads + 1
          last_download = ev
        end
      end
      assert.is_true(exports >= 3, "export events: " .. exports)
      assert.equal(100, last_export.percent)
      assert.is_true(downloads >= 1)
      assert.equal(100, last_download.percent)
      assert.equal(T.size(file.path), last_download.done)
      -- export events come before download events
      local seen_download = false
      for _, ev in ipairs(events) do
        if ev.phase == "download" then seen_download = true end
        if ev.phase == "export" then assert.is_false(seen_download) end
      end
    end)

    it("works with status \"processing\" and a numeric percentage too", function()
      T.vendors.configure{ clouddc = { polls = 2, status_style = "processing", percentage = "number" } }
      local file = assert(client(aksk_auth()):export_and_download(SERVER, { dest = tmp .. "/", poll_interval = 0.01 }))
      check_file(file, tmp)
      assert.equal(2, T.counters("clouddc").polls)
    end)

    it("an export that ends \"failed\" is an error; nothing is downloaded", function()
      T.vendors.configure{ clouddc = { polls = 2, fail = true } }
      local file, err = client(aksk_auth()):export_and_download(SERVER, { dest = tmp .. "/", poll_interval = 0.01 })
      assert.is_nil(file)
      assert.equal("api", err.kind)
      assert.truthy(tostring(err):find("failed", 1, true))
      assert.equal(0, T.counters("clouddc").downloads)
      assert.equal("EXPORT_FAILED", err.code)
      assert.equal(2, T.counters("clouddc").polls)
      assert.same({}, T.ls(tmp))
    end)

    it("gives up at its deadline with kind timeout; nothing is downloaded", function()
      T.vendors.configure{ clouddc = { polls = 1000 } }
      local t0 = T.clock()
      local file, err = client(aksk_auth()):export_and_download(SERVER, { dest = tmp .. "/", poll_interval = 0.1,
                                                                         timeout = 0.6 })
      local took = T.clock() - t0
      assert.is_nil(file)
      assert.equal("timeout", err.kind)
      assert.is_true(took < 2, "took " .. took)
      assert.is_true(T.counters("clouddc").polls >= 2)
      assert.equal(0, T.counters("clouddc").downloads)
      assert.same({}, T.ls(tmp))
    end)

    it("a throttled poll (429 APIG.0308 + Retry-After) is retried, the chain completes", function()
      T.vendors.configure{ clouddc = { polls = 1 } }
      T.emu.fault{ path = "/v1/", method = "GET", status = 429, retry_after = 1, count = 1,
                   body = '{"error_code":"APIG.0308","error_msg":"The request is throttled."}' }
      local t0 = T.clock()
      local file = assert(client(aksk_auth()):export_and_download(SERVER, { dest = tmp .. "/", poll_interval = 0.01 }))
      assert.is_true(T.clock() - t0 >= 0.9)    -- Retry-After honoured
      check_file(file, tmp)
    end)

    it("a create answered 500 is not retried (no second export)", function()
      T.emu.fault{ path = "/v1/", method = "POST", status = 500, count = 1,
                   body = '{"error_code":"CloudDC.0500","error_msg":"internal"}' }
      local _, err = client(aksk_auth()):export_and_download(SERVER, { dest = tmp .. "/", poll_interval = 0.01 })
      assert.equal(500, err.status)
      assert.equal(1, err.attempts)
      assert.equal(0, T.counters("clouddc").exports_created)
    end)
  end)
end)
