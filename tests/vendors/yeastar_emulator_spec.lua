-- Yeastar P-Series end to end against the emulator over TLS: token lifecycle (one login,
-- refresh after expiry, login again when the refresh token is dead), list paging, download
-- URLs, downloads with stale URLs renewed once, hostile file names.
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F

describe("yeastar against the emulator", function()
  local tmp, e

  setup(function() e = T.start() end)
  before_each(function()
    T.reset()
    tmp = T.tmpdir()
  end)
  after_each(function() T.rmdir(tmp) end)

  local function client(extra)
    local o = T.opts{ client_id = F.yeastar.client_id, client_secret = F.yeastar.client_secret }
    for k, v in pairs(extra or {}) do o[k] = v end
    return loghaul.yeastar(o)
  end
  local function emu_file(name) return e.dir .. "/www/_vfiles/" .. name end
  local function day(i) return os.date("!%Y%m%d", os.time() - i * 86400) end

  describe("tokens", function()
    it("one login for many calls", function()
      local pbx = client()
      for _ = 1, 4 do assert.truthy(pbx:list_system_logs()) end
      assert.truthy(pbx:system_log_download_url{ day(1) })
      local c = T.counters("yeastar")
      assert.equal(1, c.logins)
      assert.equal(1, c.login_attempts)
      assert.equal(0, c.refreshes)
      assert.equal(4, c.lists)
      assert.equal(1, c.download_urls)
      assert.equal(0, c.errors)
    end)

    it("refreshes after the access token's TTL, without a second login", function()
      T.vendors.configure{ yeastar = { access_token_ttl = 1 } }
      local pbx = client()
      assert.truthy(pbx:list_system_logs())
      T.sleep(1.2)
      assert.truthy(pbx:list_system_logs())
      assert.truthy(pbx:list_system_logs())
      local c = T.counters("yeastar")
      assert.equal(1, c.logins)
      assert.equal(1, c.refreshes)
      assert.equal(0, c.errors)                 -- refreshed before use, no 10004 met
    end)

    it("logs in again when the refresh token has expired too", function()
      T.vendors.configure{ yeastar = { access_token_ttl = 1, refresh_token_ttl = 1 } }
      local pbx = client()
      assert.truthy(pbx:list_system_logs())
      T.sleep(1.2)
      assert.truthy(pbx:list_system_logs())
      local c = T.counters("yeastar")
      assert.equal(2, c.logins)
      assert.equal(2, c.lists)
    end)

    it("a 10004 the client did not expect: refresh refused (dead), log in again, retried once", function()
      local pbx = client()
      assert.truthy(pbx:list_system_logs())
      T.vendors.reset()                          -- the PBX forgets every token
      local page, err = pbx:list_system_logs{ page = 1, page_size = 3 }
      assert.is_nil(err)
      assert.equal(3, #page.data)
      local c = T.counters("yeastar")
      assert.equal(1, c.logins)
      assert.equal(0, c.refreshes)
      assert.equal(2, c.errcode_10004)           -- the list, then the refresh
      assert.equal(1, c.lists)
    end)

    it("wrong credentials: kind auth, code 10005, one login attempt, no other request", function()
      local pbx = client{ client_secret = "not-the-secret" }
      local _, err = pbx:list_system_logs()
      assert.equal("auth", err.kind)
      assert.equal("10005", err.code)
      assert.is_nil(tostring(err):find("not-the-secret", 1, true))
      local c = T.counters("yeastar")
      assert.equal(1, c.login_attempts)
      assert.equal(0, c.lists)
    end)

    it("never puts the access token in a log line or an error", function()
      local lines = {}
      local pbx = client{ log = function(_, m) lines[#lines + 1] = m end }
      assert.truthy(pbx:list_system_logs())
      local token = pbx.auth.access
      assert.is_string(token)
      local _, err = pbx:system_log_download_url{ "19990101" }   -- 60001 from the PBX
      assert.equal("60001", err.code)
      assert.equal("api", err.kind)
      assert.is_true(#lines > 0, "nothing was logged: nothing was checked")
      for _, l in ipairs(lines) do assert.is_nil(l:find(token, 1, true)) end
      assert.is_nil(tostring(err):find(token, 1, true))
    end)
  end)

  describe("list_system_logs", function()
    it("pages with the API's fields", function()
      local pbx = client()
      local all = assert(pbx:list_system_logs())
      assert.equal(40, all.total_number)
      assert.equal(40, #all.data)
      assert.equal(day(0), all.data[1].file_name)         -- newest first
      local p2 = assert(pbx:list_system_logs{ page = 2, page_size = 10, order_by = "desc" })
      assert.equal(40, p2.total_number)
      assert.equal(10, #p2.data)
      for i = 1, 10 do assert.equal(all.data[10 + i].file_name, p2.data[i].file_name) end
      local asc = assert(pbx:list_system_logs{ page = 1, page_size = 5, order_by = "asc", sort_by = "file_name" })
      assert.equal(all.data[40].file_name, asc.data[1].file_name)
      local past = assert(pbx:list_system_logs{ page = 9, page_size = 10 })
      assert.equal(40, past.total_number)
      assert.same({}, past.data)
    end)

    it("refuses bad paging values before sending", function()
      local pbx = client()
      for _, p in ipairs{ { page = 0 }, { page_size = 1.5 }, { order_by = "up" } } do
        local _, err = pbx:list_system_logs(p)
        assert.equal("invalid", err.kind)
        assert.equal("yeastar", err.vendor)
        assert.equal("system_log/list", err.operation)
      end
      assert.equal(0, T.emu.stats().requests)
    end)
  end)

  describe("downloads", function()
    it("system_log_download_url: file and a path on the PBX", function()
      local link = assert(client():system_log_download_url{ day(1), day(2) })
      assert.matches("^PBX%-SystemLog%-%d+%-%d+%.tar$", link.file)
      assert.equal("/api/download/" .. link.file, link.download_resource_url)
    end)

    it("download_system_logs: the PBX's tar, named by `file`, nothing else in dest", function()
      local file, err = client():download_system_logs({ day(1), day(3) }, { dest = tmp .. "/logs/" })
      assert.is_nil(err)
      local name = file.path:match("([^/]+)$")
      assert.matches("^PBX%-SystemLog%-%d+%-%d+%.tar$", name)
      assert.equal(tmp .. "/logs/" .. name, file.path)
      assert.equal(T.sha256sum(emu_file(name)), T.sha256sum(file.path))
      assert.equal(file.sha256, T.sha256sum(file.path))
      assert.equal(T.size(emu_file(name)), file.bytes)
      assert.same({ name }, T.ls(tmp .. "/logs"))
      local c = T.counters("yeastar")
      assert.equal(1, c.download_urls)
      assert.equal(1, c.downloads)
      assert.equal(0, c.stale_downloads)
    end)

    for _, style in ipairs{ "json", "403" } do
      it("a URL gone stale (" .. style .. ") is renewed once, then the download succeeds", function()
        T.vendors.configure{ yeastar = { download_url_ttl = 1, expired_download = style } }
        T.emu.fault{ path = "/api/download/", delay = 1.2, count = 1 }   -- the first URL expires on the way
        local pbx = client()
        local file, err = pbx:download_system_logs({ day(1) }, { dest = tmp .. "/" })
        assert.is_nil(err)
        local name = file.path:match("([^/]+)$")
        assert.equal(T.sha256sum(emu_file(name)), T.sha256sum(file.path))
        assert.same({ name }, T.ls(tmp))
        local c = T.counters("yeastar")
        assert.equal(2, c.download_urls)
        assert.equal(1, c.stale_downloads)
        assert.equal(1, c.downloads)
        assert.equal(1, c.logins)
        assert.is_true(c.refreshes <= 1)
      end)

      it("a URL stale every time (" .. style .. ") fails after one renewal; no file written", function()
        T.vendors.configure{ yeastar = { download_url_ttl = 0, expired_download = style } }
        local file, err = client():download_system_logs({ day(1) }, { dest = tmp .. "/" })
        assert.is_nil(file)
        assert.equal("10004", err.code)
        if style == "403" then assert.equal(403, err.status) end
        local c = T.counters("yeastar")
        assert.equal(2, c.download_urls)
        assert.equal(2, c.stale_downloads)
        assert.equal(0, c.downloads)
        assert.same({}, T.ls(tmp))
      end)
    end

    it("a download answered 500 once is retried and succeeds", function()
      T.emu.fault{ path = "/api/download/", status = 500, count = 1 }
      local file = assert(client():download_system_logs({ day(1) }, { dest = tmp .. "/" }))
      local name = file.path:match("([^/]+)$")
      assert.equal(T.sha256sum(emu_file(name)), T.sha256sum(file.path))
      assert.equal(1, T.counters("yeastar").download_urls)
    end)

    it("a hostile `file` never escapes dest: ../../etc/passwd reduced, /etc/x reduced", function()
      for _, hostile in ipairs{ true, "/etc/x" } do
        T.vendors.configure{ yeastar = { hostile_file = hostile } }
        local dest = tmp .. "/d/"
        local file, err = client():download_system_logs({ day(1) }, { dest = dest })
        local base = hostile == true and "passwd" or "x"
        assert.is_nil(err)                           -- reduced to its base name, not refused
        assert.equal(tmp .. "/d/" .. base, file.path)
        assert.same({ base }, T.ls(tmp .. "/d"))
        assert.same({ "d" }, T.ls(tmp))
        T.rmdir(tmp .. "/d")
      end
    end)

    it("a `file` with control characters or nothing usable is refused before the download", function()
      for _, hostile in ipairs{ "a\tb\1c.tar", "..", "dir/" } do
        T.vendors.configure{ yeastar = { hostile_file = hostile } }
        local file, err = client():download_system_logs({ day(1) }, { dest = tmp .. "/" })
        assert.is_nil(file)
        assert.equal("UNSAFE_FILE_NAME", err.code)
      end
      assert.same({}, T.ls(tmp))
      assert.equal(0, T.counters("yeastar").downloads)
    end)

    it("a legal name of 251 to 255 bytes downloads under a short temporary name (issue 8 item 7)", function()
      for _, n in ipairs{ 251, 255 } do
        local name = ("L"):rep(n - 4) .. ".tar"
        T.vendors.configure{ yeastar = { hostile_file = name } }
        local file, err = client():download_system_logs({ day(1) }, { dest = tmp .. "/" })
        assert.is_nil(err)
        assert.equal(tmp .. "/" .. name, file.path)
        assert.equal(file.sha256, T.sha256sum(file.path))
        assert.same({ name }, T.ls(tmp))
        os.remove(file.path)
      end
    end)

    it("refuses a file name that is not a log name before sending", function()
      local _, err = client():download_system_logs({ "../x" }, { dest = tmp .. "/" })
      assert.equal("invalid", err.kind)
      assert.equal("yeastar", err.vendor)
      assert.equal(0, T.emu.stats().requests)
    end)
  end)
end)
