-- The contract: a script written only from DESIGN.md's "Public API" section, with its values
-- pointed at the local emulator (endpoint/base_url, ca_file, the fixture credentials). The calls
-- and the result fields asserted here are the ones that section shows; if one of these fails,
-- the code broke the contract, not the other way round.
local emu = require "helpers.emulator"
local shell = require "helpers.shell"
local util = require "helpers.util"
local vendors = require "helpers.vendors"

local loghaul = require "loghaul"

local F = vendors.fixtures
local e, tmp

-- stdout of a shell command, trailing white space trimmed
local function sh(cmd)
  return (shell.run(cmd):gsub("%s+$", ""))
end

local sha256sum, size_of = util.sha256sum, util.size

local function utc(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

-- the file result every download returns: { path =, bytes =, sha256 = }
local function assert_file(file, dir)
  assert.is_table(file)
  assert.is_string(file.path)
  assert.equal(dir, file.path:sub(1, #dir))
  assert.is_number(file.bytes)
  assert.is_true(file.bytes > 0)
  assert.equal(size_of(file.path), file.bytes)
  assert.matches("^%x+$", file.sha256)
  assert.equal(64, #file.sha256)
  assert.equal(sha256sum(file.path), file.sha256)
  -- nothing else of ours next to it
  assert.equal("", sh("ls -A '" .. dir .. "' | grep -F .part || true"))
end

-- the error object of DESIGN.md "Errors"
local function assert_error(err, kind)
  assert.is_table(err)
  assert.equal(kind, err.kind)
  assert.is_string(err.message)
  assert.is_boolean(err.retryable)
  assert.is_string(tostring(err))
  assert.not_matches("^table: ", tostring(err))
end

setup(function()
  e = emu.start()
  vendors.reset()
  tmp = shell.tmpdir("loghaul-contract")
end)

teardown(function()
  shell.rmdir(tmp)
end)

describe("contract: loghaul", function()
  it("has version 0.1.0", function()
    assert.equal("0.1.0", loghaul.version)
  end)
end)

describe("contract: Huawei CC-CMS", function()
  it("uploads a client log archive", function()
    local AK, SK = F.cms.access_key, F.cms.secret_key
    local zip = tmp .. "/OELOG_99991093_10.1.2.3_20250226162127.zip"
    sh("head -c 100000 /dev/urandom > '" .. zip .. "'")
    local logged = {}
    local cms = loghaul.cms{ base_url = e.base_url, access_key = AK, secret_key = SK, ca_file = e.ca_file,
                             log = function(level, message) logged[#logged + 1] = level .. " " .. message end }
    local res, err = cms:upload_client_log(zip)
    assert.is_nil(err)
    assert.equal("200", res.status)

    res, err = cms:upload_client_log(zip, { file_type = 0, filename = "name.zip" })
    assert.is_nil(err)
    assert.equal("200", res.status)

    local got = vendors.state().cms.received
    local names = {}
    for _, r in ipairs(got) do names[r.name] = r.sha256 end
    assert.equal(sha256sum(zip), names["OELOG_99991093_10.1.2.3_20250226162127.zip"])
    assert.equal(sha256sum(zip), names["name.zip"])
    assert.is_true(#logged > 0)
    for _, line in ipairs(logged) do assert.not_matches(SK, line, 1, true) end
  end)

  it("fails with an auth error on a wrong key, secrets redacted", function()
    local cms = loghaul.cms{ base_url = e.base_url, access_key = F.cms.access_key,
                             secret_key = "wrong-secret-key-0000", ca_file = e.ca_file }
    local zip = tmp .. "/OELOG_1_10.0.0.1_20250101000000.zip"
    sh("head -c 1000 /dev/urandom > '" .. zip .. "'")
    local res, err = cms:upload_client_log(zip)
    assert.is_nil(res)
    assert_error(err, "auth")
    assert.equal(401, err.status)
    assert.equal("cms", err.vendor)
    assert.is_number(err.attempts)
    assert.not_matches("wrong-secret-key-0000", tostring(err), 1, true)
  end)
end)

describe("contract: Huawei Cloud CloudDC", function()
  local server_id = F.clouddc.server_id
  local PROJECT = F.clouddc.project_id

  local function chain(dc, label)
    local dir = tmp .. "/dc-" .. label .. "/"
    local task, err = dc:export_server_logs(server_id)
    assert.is_nil(err)
    assert.is_string(task.export_id)
    assert.is_string(task.status)
    assert.is_number(task.percentage)          -- the API sends "30%"
    assert.equal(30, task.percentage)
    assert.is_not_nil(task.created_at)

    local st
    for _ = 1, 20 do
      st, err = dc:show_logs_export_status(server_id, task.export_id)
      assert.is_nil(err)
      assert.is_number(st.percentage)
      if st.status:lower() == "completed" then break end
    end
    assert.equal("completed", st.status:lower())
    assert.equal(100, st.percentage)

    local file
    file, err = dc:download_server_logs(server_id, task.export_id, { dest = dir })
    assert.is_nil(err)
    assert_file(file, dir)
    assert.equal(dir .. F.clouddc.sn .. "-dump.tar.gz", file.path)

    -- the same client runs the whole chain in one call too
    file, err = dc:export_and_download(server_id, { dest = dir, poll_interval = 0.1, timeout = 60 })
    assert.is_nil(err)
    assert_file(file, dir)
  end

  it("runs export → poll → download with an IAM password", function()
    local dc = loghaul.clouddc{
      endpoint = e.base_url, project_id = PROJECT, ca_file = e.ca_file,
      auth = { iam_endpoint = e.base_url,
               user = F.iam.user, password = F.iam.password, domain = F.iam.domain, project = "cn-east-3" },
    }
    chain(dc, "iam")
  end)

  it("runs the chain with a token", function()
    -- a token as a user gets it from IAM (curl here: not the thing under test)
    local T = sh("curl -sS -i --cacert '" .. e.ca_file .. "' -H 'Content-Type: application/json;charset=utf8' "
      .. "--data-binary '{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\""
      .. F.iam.user .. "\",\"password\":\"" .. F.iam.password .. "\",\"domain\":{\"name\":\"" .. F.iam.domain
      .. "\"}}}},\"scope\":{\"project\":{\"name\":\"cn-east-3\"}}}}' '" .. e.base_url
      .. "/v3/auth/tokens?nocatalog=true' | tr -d '\\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p'")
    assert.is_true(#T > 100)
    local dc = loghaul.clouddc{ endpoint = e.base_url, project_id = PROJECT, ca_file = e.ca_file,
                                auth = { token = T } }
    chain(dc, "token")
  end)

  it("runs the chain with AK/SK signing, reporting progress", function()
    local events = {}
    local dc = loghaul.clouddc{
      endpoint = e.base_url, project_id = PROJECT, ca_file = e.ca_file,
      auth = { access_key = F.clouddc.access_key, secret_key = F.clouddc.secret_key },
      on_progress = function(ev) events[#events + 1] = ev end,
    }
    chain(dc, "aksk")
    assert.is_true(#events > 0)
    local phases = {}
    for _, ev in ipairs(events) do
      assert.is_string(ev.phase)
      assert.is_number(ev.done)
      phases[ev.phase] = true
    end
    assert.is_true(phases.export)
    assert.is_true(phases.download)
  end)
end)

describe("contract: Yeastar P-Series", function()
  it("lists, gets a download URL and downloads", function()
    local pbx = loghaul.yeastar{ base_url = e.base_url, client_id = F.yeastar.client_id,
                                 client_secret = F.yeastar.client_secret, ca_file = e.ca_file }
    local page, err = pbx:list_system_logs{ page = 1, page_size = 100, order_by = "desc" }
    assert.is_nil(err)
    assert.is_number(page.total_number)
    assert.is_true(page.total_number > 1)
    assert.is_table(page.data)
    assert.matches("^%d%d%d%d%d%d%d%d$", page.data[1].file_name)
    local day1, day2 = page.data[2].file_name, page.data[1].file_name

    local link
    link, err = pbx:system_log_download_url{ day1, day2 }
    assert.is_nil(err)
    assert.is_string(link.file)
    assert.is_string(link.download_resource_url)

    local dir = tmp .. "/pbx/"
    local file
    file, err = pbx:download_system_logs({ day1 }, { dest = dir })
    assert.is_nil(err)
    assert_file(file, dir)
    assert.matches("%.tar$", file.path)

    local st = vendors.state().yeastar
    assert.equal(1, st.logins)   -- "access token fetched, cached and refreshed for you"
  end)
end)

describe("contract: Zenlayer ZLS", function()
  local function client()
    return loghaul.zenlayer{ access_key_id = F.zenlayer.access_key_id,
                             access_key_password = F.zenlayer.access_key_password,
                             endpoint = e.base_url, ca_file = e.ca_file }
  end

  it("pages through describe_logs with the cursor passed back unchanged", function()
    local zl = client()
    local now = os.time()
    local startTime, endTime = utc(now - 10 * 86400), utc(now)
    local previous_page, pages, records = nil, 0, 0
    repeat
      local page, err = zl:describe_logs{ startTime = startTime, endTime = endTime,
                                          size = 100, cursor = previous_page and previous_page.cursor }
      assert.is_nil(err)
      assert.is_string(page.requestId)
      assert.is_table(page.dataSet)
      pages, records = pages + 1, records + #page.dataSet
      previous_page = page
    until page.cursor == nil or pages > 100
    assert.is_nil(previous_page.cursor)
    assert.is_true(pages > 2)
    assert.equal(0, vendors.state().zenlayer.bad_cursors or 0)
    assert.is_true(records > 200)
  end)

  it("gives cursor = nil at the end when the API sends an empty cursor", function()
    vendors.configure{ zenlayer = { last_cursor = "empty" } }
    finally(function() vendors.configure{ zenlayer = { last_cursor = "missing" } } end)
    local zl = client()
    local now = os.time()
    local previous_page, pages = nil, 0
    repeat
      local page, err = zl:describe_logs{ startTime = utc(now - 3 * 86400), endTime = utc(now),
                                          size = 1000, cursor = previous_page and previous_page.cursor }
      assert.is_nil(err)
      pages, previous_page = pages + 1, page
    until page.cursor == nil or pages > 20
    assert.is_nil(previous_page.cursor)
    assert.is_true(pages <= 20)
  end)

  it("refuses a size outside 1..1000", function()
    local zl = client()
    local now = os.time()
    local page, err = zl:describe_logs{ startTime = utc(now - 86400), endTime = utc(now), size = 1001 }
    assert.is_nil(page)
    assert_error(err, "invalid")
  end)

  it("each_log iterates over a range longer than 30 days", function()
    local zl = client()
    local now = os.time()
    local n, last = 0, nil
    for rec in zl:each_log{ start_time = utc(now - 70 * 86400), end_time = utc(now),
                            res_event = "rename bmi", page_size = 1000 } do
      assert.is_string(rec.opsTime)
      assert.equal("rename bmi", rec.resEvent)
      n, last = n + 1, rec
    end
    assert.is_true(n > 100)
    assert.is_not_nil(last)
  end)

  it("each_log raises the error object on a refused range (pcall)", function()
    local zl = client()
    local now = os.time()
    local ok, err = pcall(function()
      for rec in zl:each_log{ start_time = utc(now - 100 * 86400), end_time = utc(now) } do
        print(rec.opsTime)
      end
    end)
    assert.is_false(ok)
    assert_error(err, "invalid")
    assert.equal("INVALID_PARAMETER__ILLEGAL_TIME", err.code)
    assert.matches("90", err.message)
  end)
end)
