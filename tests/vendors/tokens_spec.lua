-- Tokens that do not pile up (issue 11): Yeastar close()/<close>/__gc revoke the access
-- token, a failed login is never retried, 70004 says what to do; a token_cache file shared
-- by cron-like runs (child processes) costs one login in all, and is refused when unsafe.
-- Judged by the emulator's counters (capped at 8 live tokens, IP block after 5 failures)
-- and by `stat`.
local loghaul = require "loghaul"
local T = require "vendors.emu_ctx"

local F = T.F
local q = T.shell.quote

describe("tokens against the emulator", function()
  local tmp, e

  setup(function() e = T.start() end)
  before_each(function()
    collectgarbage() -- a client an earlier test dropped revokes its token now, not during this one
    collectgarbage()
    T.reset()
    tmp = T.tmpdir()
  end)
  after_each(function() T.rmdir(tmp) end)

  local function pbx(extra)
    local o = T.opts{ client_id = F.yeastar.client_id, client_secret = F.yeastar.client_secret }
    for k, v in pairs(extra or {}) do o[k] = v end
    return loghaul.yeastar(o)
  end
  local function ys() return T.counters("yeastar") end

  -- a cron-like run in a child process; returns its output and whether it succeeded
  local function child(vendor, cache, mode)
    local cmd = T.shell.lua_command() .. " " .. q(T.shell.root .. "/tests/vendors/token_child.lua") .. " "
      .. q(vendor) .. " " .. q(e.base_url) .. " " .. q(e.ca_file) .. " " .. q(cache or "-") .. " " .. (mode or "close")
    local out, rc = T.shell.capture(cmd)
    return out, rc == 0
  end
  local function mode_of(path)
    return (T.shell.check("stat -c %a " .. q(path)):gsub("%s+$", ""))
  end

  describe("yeastar close()", function()
    it("revokes the access token (del_token): nothing is left alive", function()
      local p = pbx()
      assert.truthy(p:list_system_logs())
      assert.equal(1, ys().live_access_tokens)
      assert.is_true(p:close())
      local c = ys()
      assert.equal(1, c.deletes)
      assert.equal(0, c.live_access_tokens)
      assert.is_true(p:close())          -- idempotent: no second del_token
      assert.equal(1, ys().deletes)
    end)

    it("a Lua 5.4 <close> variable revokes at the end of its scope", function()
      if _VERSION ~= "Lua 5.4" or rawget(_G, "jit") then return end
      local chunk = assert(load([[
        local pbx, list = ...
        do
          local p <close> = pbx()
          assert(p:list_system_logs())
          list.live = require("vendors.emu_ctx").counters("yeastar").live_access_tokens
        end
      ]]))
      local seen = {}
      chunk(pbx, seen)
      assert.equal(1, seen.live)
      assert.equal(1, ys().deletes)
      assert.equal(0, ys().live_access_tokens)
    end)

    it("garbage collection revokes a client that was never closed", function()
      local p = pbx()
      assert.truthy(p:list_system_logs())
      assert.equal(1, ys().live_access_tokens)
      p = nil -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
      if rawget(_G, "jit") then
        -- LuaJIT: no transfer from a finalizer; the next close() of a client of that PBX does it
        assert.equal(0, ys().deletes)
        local other = pbx()
        assert.truthy(other:list_system_logs())
        other:close()
        assert.equal(2, ys().deletes)
      else
        assert.equal(1, ys().deletes)
      end
      assert.equal(0, ys().live_access_tokens)
    end)

    it("20 processes in a row without a cache all succeed against the 8-token cap", function()
      for i = 1, 20 do
        local out, ok = child("yeastar")
        assert(ok, "run " .. i .. ": " .. out)
      end
      local c = ys()
      assert.equal(20, c.logins)
      assert.equal(0, c.capped_logins)
      assert.is_true(c.live_access_tokens <= 1)
    end)

    it("without close() nor a cache, the 9th run meets the cap (what close() prevents)", function()
      -- a child that exits without close(): on Lua 5.4 its finalizer at exit revokes it anyway;
      -- on LuaJIT the token stays alive until it expires
      for i = 1, 3 do
        local out, ok = child("yeastar", nil, "noclose")
        assert(ok, "run " .. i .. ": " .. out)
      end
      assert.equal(rawget(_G, "jit") and 3 or 0, ys().live_access_tokens)
      T.reset()
      -- logins that nobody revokes: the emulator's cap answers the 9th with 60002
      local kept = {}
      for i = 1, 8 do
        kept[i] = pbx()
        assert.truthy(kept[i]:list_system_logs())
      end
      local _, err = pbx():list_system_logs()
      assert.equal("60002", err.code)
      assert.matches("8 on the cloud edition", err.message, 1, true)
      for i = 1, 8 do kept[i]:close() end
      assert.equal(0, ys().live_access_tokens)
    end)
  end)

  describe("yeastar login failures", function()
    it("a wrong secret costs exactly one get_token, however often the client is used", function()
      local p = pbx{ client_secret = "not-the-secret" }
      for _ = 1, 3 do
        local _, err = p:list_system_logs()
        assert.equal("auth", err.kind)
        assert.equal("10005", err.code)
        assert.matches("client_secret", err.message, 1, true)
      end
      local _, err = p:download_system_logs({ os.date("!%Y%m%d") }, { dest = tmp .. "/" })
      assert.equal("10005", err.code)
      assert.equal(1, ys().login_attempts)
      assert.equal(1, T.path_requests("/openapi/v1.0/get_token"))
    end)

    it("a 500 on get_token is not retried either (the PBX may have counted it); a 503 is", function()
      T.emu.fault{ path = "/openapi/v1.0/get_token", status = 500, count = 1 }
      local _, err = pbx():list_system_logs()
      assert.equal(500, err.status)
      assert.equal(1, T.path_requests("/openapi/v1.0/get_token"))
      -- 503 and 429 say the request was not processed: not a failed login, sent again
      T.emu.fault{ path = "/openapi/v1.0/get_token", status = 503, count = 1 }
      local p = pbx()
      assert.truthy(p:list_system_logs())
      p:close()
      assert.equal(3, T.path_requests("/openapi/v1.0/get_token"))
    end)

    it("70004 (IP blocked) says so in plain words, and how to lift it", function()
      for _ = 1, 5 do
        local _, err = pbx{ client_secret = "wrong" }:list_system_logs()
        assert.equal("10005", err.code)
      end
      local _, err = pbx():list_system_logs()
      assert.equal("70004", err.code)
      assert.matches("blocked this IP address", err.message, 1, true)
      assert.matches("Security > Blocked IPs", err.message, 1, true)
      assert.matches("Security > Blocked IPs", tostring(err), 1, true)
      assert.equal(6, ys().login_attempts)
    end)
  end)

  describe("token_cache", function()
    it("yeastar: 20 processes in a row make exactly one get_token; the token stays alive", function()
      local cache = tmp .. "/state/tokens.json"
      for i = 1, 20 do
        local out, ok = child("yeastar", cache)
        assert(ok, "run " .. i .. ": " .. out)
      end
      local c = ys()
      assert.equal(1, c.login_attempts)
      assert.equal(0, c.deletes)
      assert.equal(1, c.live_access_tokens)
      assert.equal(20, c.lists)
      assert.equal("600", mode_of(cache))
      assert.equal("700", mode_of(tmp .. "/state"))
      local text = T.read(cache)
      assert.is_nil(text:find(F.yeastar.client_secret, 1, true))
      assert.truthy(text:find(F.yeastar.client_id, 1, true))
    end)

    it("yeastar: an expired access token is refreshed through the cache, not logged in again", function()
      T.vendors.configure{ yeastar = { access_token_ttl = 2 } }
      local cache = tmp .. "/tokens.json"
      assert(child("yeastar", cache))
      T.sleep(2.2)
      local out, ok = child("yeastar", cache)
      assert(ok, out)
      local c = ys()
      assert.equal(1, c.logins)
      assert.equal(1, c.refreshes)
    end)

    it("IAM: 10 processes in a row make exactly one token request", function()
      local cache = tmp .. "/tokens.json"
      for i = 1, 10 do
        local out, ok = child("clouddc", cache)
        assert(ok, "run " .. i .. ": " .. out)
      end
      assert.equal(1, T.counters("iam").logins)
      assert.equal(10, T.counters("clouddc").requests)
      assert.equal("600", mode_of(cache))
      assert.is_nil(T.read(cache):find(F.iam.password, 1, true))
    end)

    it("IAM: token_cache also works as a clouddc client option; refused without IAM auth", function()
      local cache = tmp .. "/c/tokens.json"
      local function dc(auth)
        return loghaul.clouddc(T.opts{ project_id = F.clouddc.project_id, token_cache = cache, auth = auth })
      end
      local iam_auth = { iam_endpoint = e.base_url, user = F.iam.user, password = F.iam.password,
                         domain = F.iam.domain, project = F.iam.project }
      for _ = 1, 2 do
        local c = dc(iam_auth)
        local _, err = c:show_logs_export_status(F.clouddc.server_id, "x")
        assert.are_not.equal("auth", err and err.kind)
        c:close()
      end
      assert.equal(1, T.counters("iam").logins)
      assert.equal("600", mode_of(cache))
      assert.has_error(function() dc{ access_key = F.clouddc.access_key, secret_key = F.clouddc.secret_key } end,
                       "loghaul.clouddc: token_cache needs IAM password auth (a token or AK/SK has nothing to cache)")
    end)

    it("processes starting together share one login (flock)", function()
      local cache = tmp .. "/tokens.json"
      local script = q(T.shell.root .. "/tests/vendors/token_child.lua")
      local cmd = {}
      for i = 1, 6 do
        cmd[#cmd + 1] = T.shell.lua_command() .. " " .. script .. " yeastar " .. q(e.base_url) .. " "
          .. q(e.ca_file) .. " " .. q(cache) .. " close > " .. q(tmp .. "/out" .. i) .. " 2>&1 &"
      end
      T.shell.check(table.concat(cmd, " ") .. " wait")
      for i = 1, 6 do assert.equal("ok\n", T.read(tmp .. "/out" .. i)) end
      assert.equal(1, ys().login_attempts)
    end)

    it("refuses a cache file others can read, with what to do, and sends nothing", function()
      local cache = tmp .. "/tokens.json"
      T.write(cache, "{}")
      T.shell.check("chmod 644 " .. q(cache))
      local _, err = pbx{ token_cache = cache }:list_system_logs()
      assert.equal("invalid", err.kind)
      assert.equal("TOKEN_CACHE_UNSAFE", err.code)
      assert.matches("permissions 0644 are too open", err.message, 1, true)
      assert.matches("chmod 600 " .. cache, err.message, 1, true)
      assert.equal(0, ys().requests)
      -- the same for IAM
      local dc = loghaul.clouddc(T.opts{ project_id = F.clouddc.project_id, auth = {
        iam_endpoint = e.base_url, user = F.iam.user, password = F.iam.password, domain = F.iam.domain,
        project = F.iam.project, token_cache = cache } })
      local _, err2 = dc:show_logs_export_status(F.clouddc.server_id, "x")
      assert.equal("TOKEN_CACHE_UNSAFE", err2.code)
      assert.equal(0, T.counters("iam").requests)
    end)

    it("refuses a symlink, and a directory others can write to", function()
      T.write(tmp .. "/real.json", "{}")
      T.shell.check("chmod 600 " .. q(tmp .. "/real.json") .. " && ln -s real.json " .. q(tmp .. "/link.json"))
      local _, err = pbx{ token_cache = tmp .. "/link.json" }:list_system_logs()
      assert.equal("TOKEN_CACHE_UNSAFE", err.code)
      assert.matches("not a regular file", err.message, 1, true)
      T.shell.check("mkdir -m 777 " .. q(tmp .. "/open"))
      local _, err2 = pbx{ token_cache = tmp .. "/open/t.json" }:list_system_logs()
      assert.equal("TOKEN_CACHE_UNSAFE", err2.code)
      assert.matches("writable by others", err2.message, 1, true)
      assert.equal(0, ys().requests)
      assert.has_error(function() pbx{ token_cache = 42 } end)
    end)

    it("tasks sharing a client whose cached tokens are dead renew once between them, and finish", function()
      -- both tasks' first requests are refused (the servers forgot every token); each renewal
      -- takes the cache's lock and logs in: a task blocking on that lock used to stop the thread
      -- that ran the other task's login, and the run hung for ever
      local cache = tmp .. "/tokens.json"
      assert(child("yeastar", cache))
      assert(child("clouddc", cache))
      T.vendors.reset()
      local p = pbx{ token_cache = cache }
      local dc = loghaul.clouddc(T.opts{ project_id = F.clouddc.project_id, auth = {
        iam_endpoint = e.base_url, user = F.iam.user, password = F.iam.password, domain = F.iam.domain,
        project = F.iam.project, token_cache = cache } })
      local tasks = {}
      for i = 1, 4 do
        tasks[#tasks + 1] = function() return p:list_system_logs() end
        tasks[#tasks + 1] = function()
          local _, err = dc:show_logs_export_status(F.clouddc.server_id, "task-" .. i)
          if err and err.kind == "auth" then return nil, err end
          return true
        end
      end
      local results = loghaul.run_all(tasks, { concurrency = 8 })
      for i, r in ipairs(results) do assert.is_true(r.ok, "task " .. i .. ": " .. tostring(r.err)) end
      assert.equal(1, ys().logins)
      assert.equal(1, T.counters("iam").logins)
      p:close()
      dc:close()
    end)

    it("two clients sharing one cache file inside run_all wait for each other's login", function()
      local cache = tmp .. "/tokens.json"
      local a, b = pbx{ token_cache = cache }, pbx{ token_cache = cache }
      local results = loghaul.run_all({ function() return a:list_system_logs() end,
                                        function() return b:list_system_logs() end })
      assert.is_true(results[1].ok, tostring(results[1].err))
      assert.is_true(results[2].ok, tostring(results[2].err))
      assert.equal(1, ys().logins)
      a:close()
      b:close()
    end)

    it("a token the PBX calls expired is replaced, and the cache gets the new one", function()
      local cache = tmp .. "/tokens.json"
      assert(child("yeastar", cache))
      -- the PBX forgets every token (a restart): the cached one is dead
      T.vendors.reset()
      local p = pbx{ token_cache = cache }
      assert.truthy(p:list_system_logs())
      p:close()
      local out, ok = child("yeastar", cache)
      assert(ok, out)
      local c = ys()
      assert.equal(1, c.logins)          -- after the reset: one login, then reused by the child
      assert.equal(1, c.live_access_tokens)
    end)
  end)
end)
