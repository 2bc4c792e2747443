-- Secrets: keys, passwords, tokens and Yeastar's access_token never reach error messages,
-- log output or tostring of any object, with every vendor, on success and on failure.
-- TLS verification cannot be turned off by accident.
local loghaul = require "loghaul"
local errors = require "loghaul.errors"
local emu = require "helpers.emulator"
local vendors = require "helpers.vendors"
local shell = require "helpers.shell"

local E, dir, fx, logs, seen_tokens

local function capture(level, message)
  logs[#logs + 1] = level .. " " .. tostring(message)
end

local function secrets()
  local s = { fx.cms.secret_key, fx.iam.password, fx.clouddc.secret_key, fx.yeastar.client_secret,
              fx.zenlayer.access_key_password }
  for t in pairs(seen_tokens) do s[#s + 1] = t end
  return s
end

-- every string reachable from v (tables walked, metatables' __tostring used)
local function strings(v, out, depth)
  out, depth = out or {}, depth or 0
  if type(v) == "string" then out[#out + 1] = v
  elseif type(v) == "table" and depth < 4 then
    out[#out + 1] = tostring(v)
    for k, x in pairs(v) do
      if type(k) == "string" then out[#out + 1] = k end
      if k ~= "secrets" and k ~= "secret" and k ~= "auth" and k ~= "client" and k ~= "session" and k ~= "core" then
        strings(x, out, depth + 1)
      end
    end
  else out[#out + 1] = tostring(v) end
  return out
end

local function assert_clean(text, where)
  for _, s in ipairs(secrets()) do
    assert.is_nil(text:find(s, 1, true), ("a secret (%s…) leaked into %s: %s"):format(s:sub(1, 4), where,
      text:sub(1, 300)))
  end
  assert.is_nil(text:find("access_token=[^*&%s]"), "an access_token value in " .. where .. ": " .. text:sub(1, 300))
end

local function common(extra)
  local o = { endpoint = E.base_url, ca_file = E.ca_file, log = capture,
              retry = { max_attempts = 2, base_delay = 0.001, max_delay = 0.01 } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("secrets", function()
  local close_suite
  setup(function()
    E, dir, close_suite = vendors.open_suite()
    fx = vendors.fixtures
    shell.write_file(dir .. "/OELOG_1_10.1.2.3_20250226162127.zip", "PK zip")
  end)
  teardown(function() close_suite() end)
  before_each(function()
    logs, seen_tokens = {}, {}
    emu.reset()
  end)

  local function clients()
    return {
      loghaul.cms(common{ base_url = E.base_url, access_key = fx.cms.access_key, secret_key = fx.cms.secret_key }),
      loghaul.clouddc(common{ project_id = fx.clouddc.project_id,
        auth = { access_key = fx.clouddc.access_key, secret_key = fx.clouddc.secret_key } }),
      loghaul.clouddc(common{ project_id = fx.clouddc.project_id, auth = { iam_endpoint = E.base_url,
        user = fx.iam.user, password = fx.iam.password, domain = fx.iam.domain, project = fx.iam.project } }),
      loghaul.yeastar(common{ base_url = E.base_url, client_id = fx.yeastar.client_id,
        client_secret = fx.yeastar.client_secret }),
      loghaul.zenlayer(common{ access_key_id = fx.zenlayer.access_key_id,
        access_key_password = fx.zenlayer.access_key_password }),
    }
  end

  local function run_all(cs)
    local cms, dc, dci, pbx, zl = cs[1], cs[2], cs[3], cs[4], cs[5]
    local results = {}
    local function keep(...) results[#results + 1] = { ... } end
    keep(cms:upload_client_log(dir .. "/OELOG_1_10.1.2.3_20250226162127.zip"))
    keep(dc:export_server_logs(fx.clouddc.server_id))
    keep(dci:export_and_download(fx.clouddc.server_id, { dest = dir .. "/dc/", poll_interval = 0 }))
    local page, perr = pbx:list_system_logs{ page = 1, page_size = 2 }
    keep(page, perr)
    local day = page and page.data[1] and page.data[1].file_name or "20240422"
    keep(pbx:download_system_logs({ day }, { dest = dir .. "/ys/" }))
    keep(zl:describe_logs{ startTime = os.date("!%Y-%m-%dT00:00:00Z", os.time() - 3 * 86400),
                           endTime = os.date("!%Y-%m-%dT00:00:00Z", os.time() - 2 * 86400), size = 5 })
    -- the tokens the providers now hold are secrets too
    if dci.auth.value then seen_tokens[dci.auth.value] = true end
    if pbx.auth.access then seen_tokens[pbx.auth.access] = true end
    if pbx.auth.refresh then seen_tokens[pbx.auth.refresh] = true end
    return results
  end

  local function check_everything(cs, results)
    for _, r in ipairs(results) do
      for _, v in ipairs(r) do
        if errors.is(v) then
          assert_clean(tostring(v), "tostring(error)")
          assert_clean(table.concat(strings(v), "\n"), "an error's fields")
        end
      end
    end
    for _, c in ipairs(cs) do
      assert_clean(tostring(c), "tostring(client)")
      assert_clean(tostring(c.client), "tostring(client.client)")
      assert_clean(tostring(c.client.session), "tostring(session)")
    end
    assert.is_true(#logs > 0)
    assert_clean(table.concat(logs, "\n"), "the log")
  end

  it("on success, with debug logging of every request", function()
    local cs = clients()
    local results = run_all(cs)
    for i, r in ipairs(results) do assert(r[1], "operation " .. i .. ": " .. tostring(r[2])) end
    assert.is_truthy(next(seen_tokens))
    -- the debug log shows the Yeastar URLs, with the token redacted
    local text = table.concat(logs, "\n")
    assert.matches("access_token=***", text, 1, true)
    check_everything(cs, results)
  end)

  it("on failure: 5xx, 401, cut answers and throttling with the secrets in flight", function()
    local cs = clients()
    run_all(cs) -- tokens in hand first
    logs = {}
    emu.fault{
      { path = "/v3/auth/tokens", cut_after = 10 },
      { path = "/openapi/v1.0/get_token", cut_after = 20 },
      { path = "/openapi/v1.0/refresh_token", status = 500,
        body = '{"errcode":0,"access_token":"' .. next(seen_tokens) .. '"}' },
    }
    -- 401s that echo the very secret the client sent (each client knows only its own)
    for prefix, secret in pairs{ ["/rest/"] = fx.cms.secret_key, ["/v1/"] = fx.clouddc.secret_key,
                                 ["/openapi/"] = fx.yeastar.client_secret,
                                 ["/api/"] = fx.zenlayer.access_key_password } do
      emu.fault{ path = prefix, status = 401, count = 3,
                 body = '{"error_code":"APIG.0301","error_msg":"bad token ' .. secret .. '","errcode":10004,' ..
                        '"errmsg":"' .. secret .. '","code":"AUTH_FAILURE","message":"' .. secret .. '"}' }
    end
    emu.fault{ path = "/", status = 503, retry_after = 0 }
    local results = run_all(cs)
    for i, r in ipairs(results) do
      assert.is_nil(r[1], "operation " .. i .. " succeeded")
      -- an error object, so check_everything below looks into it
      assert.is_true(errors.is(r[2]), "operation " .. i .. " returned no error object")
    end
    check_everything(cs, results)
    emu.reset()
  end)

  it("TLS verification stays on unless insecure = true, which is logged as a warning", function()
    for _, bad in ipairs{ "true", 1, "yes", {}, 0 } do
      assert.has_error(function()
        loghaul.zenlayer{ endpoint = E.base_url, access_key_id = "a", access_key_password = "bbbb", insecure = bad }
      end)
    end
    -- no ca_file: the emulator's certificate is not trusted, whatever else is set
    for _, extra in ipairs{ {}, { insecure = false }, { ca_file = "/etc/ssl/certs/ca-certificates.crt" } } do
      local o = { endpoint = E.base_url, access_key_id = fx.zenlayer.access_key_id, log = capture,
                  access_key_password = fx.zenlayer.access_key_password, retry = { max_attempts = 1 } }
      for k, v in pairs(extra) do o[k] = v end
      local zl = loghaul.zenlayer(o)
      local _, err = zl:describe_logs{ startTime = os.date("!%Y-%m-%dT00:00:00Z", os.time() - 3 * 86400),
                                       endTime = os.date("!%Y-%m-%dT00:00:00Z", os.time() - 2 * 86400) }
      assert.equal("tls", err.kind)
    end
    logs = {}
    local zl = loghaul.zenlayer{ endpoint = E.base_url, access_key_id = fx.zenlayer.access_key_id,
      access_key_password = fx.zenlayer.access_key_password, insecure = true, log = capture }
    assert.matches("^warn TLS verification is OFF", logs[1])
    assert(zl:describe_logs{ startTime = os.date("!%Y-%m-%dT00:00:00Z", os.time() - 3 * 86400),
                             endTime = os.date("!%Y-%m-%dT00:00:00Z", os.time() - 2 * 86400) })
  end)
end)
