--- Handlers of tests/openresty/locations.conf, and the error cases the spec runs both inside
-- nginx (through /error) and outside it (in the busted process), so the two error objects
-- come from the same code.
-- luacheck: globals ngx
local M = {}

--- Error cases: name → function(cfg) returning the operation's `nil, err` (or raising it).
-- `cfg`: `{ base_url, ca_file, zl_id, zl_pw, tmp }`.
M.cases = {}

local function zl(cfg, extra)
  local o = { endpoint = cfg.base_url, ca_file = cfg.ca_file, access_key_id = cfg.zl_id,
              access_key_password = cfg.zl_pw, log = false,
              retry = { max_attempts = 3, base_delay = 0.01, max_delay = 0.05 } }
  for k, v in pairs(extra or {}) do o[k] = v end
  if o.ca_file == false then o.ca_file = nil end
  return require("loghaul").zenlayer(o)
end

local function recent()
  local now = os.time()
  return os.date("!%Y-%m-%dT%H:%M:%SZ", now - 86400), os.date("!%Y-%m-%dT%H:%M:%SZ", now - 60)
end

-- refused before sending: the 90-day rule
function M.cases.zl_range(cfg)
  local now = os.time()
  return zl(cfg):describe_logs{ startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 100 * 86400),
                                endTime = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 99 * 86400) }
end

-- the server refuses the signature (401 SIGNATURE_FAILURE), after one request
function M.cases.zl_badkey(cfg)
  local s, e = recent()
  return zl(cfg, { access_key_password = "wrong-password-0000" }):describe_logs{ startTime = s, endTime = e }
end

-- nothing listens: network CURLE_COULDNT_CONNECT after 3 attempts (two waits in between)
function M.cases.refused(cfg)
  local s, e = recent()
  return zl(cfg, { endpoint = "https://127.0.0.1:1" }):describe_logs{ startTime = s, endTime = e }
end

-- the emulator's certificate without its CA: tls
function M.cases.tls(cfg)
  local s, e = recent()
  return zl(cfg, { ca_file = false }):describe_logs{ startTime = s, endTime = e }
end

-- each_log raises the error object of a page that still fails after its retries
-- (the spec arms 429 REQUEST_LIMIT_EXCEEDED on /api/v2/zls for three requests first)
function M.cases.throttled(cfg)
  local s, e = recent()
  local ok, err = pcall(function()
    for _ in zl(cfg):each_log{ start_time = s, end_time = e, page_size = 10 } do end
  end)
  if ok then return true end
  return nil, err
end

-- a download whose answer is a 404: http, never written
function M.cases.notfound(cfg)
  local client = require("loghaul.client").new({ endpoint = cfg.base_url, ca_file = cfg.ca_file, log = false,
    retry = { max_attempts = 2, base_delay = 0.01 } }, { vendor = "test" })
  return require("loghaul.download").fetch(client, { operation = "download", url = cfg.base_url .. "/files/nope.bin",
    dest = cfg.tmp .. "/nope.bin", decode = function() return nil end })
end

--- The fields the spec compares.
function M.fields(err)
  if type(err) ~= "table" then return { raised = tostring(err) } end
  return { kind = err.kind, code = err.code, status = err.status, retryable = err.retryable,
           attempts = err.attempts, vendor = err.vendor, operation = err.operation,
           is_error = require("loghaul.errors").is(err), text = tostring(err) }
end

--- Runs a case, returning its error's fields.
function M.run_case(name, cfg)
  local ok, v, err = pcall(M.cases[name], cfg)
  if not ok then err = v end
  if ok and v ~= nil then return { no_error = true } end
  return M.fields(err)
end

local function cfg_from_env()
  local c = require("loghaul_example.config").get()
  local prefix = ngx.config.prefix():gsub("/$", "")
  return { base_url = c.zenlayer.endpoint, ca_file = c.ca_file, zl_id = c.zenlayer.access_key_id,
           zl_pw = c.zenlayer.access_key_password, tmp = prefix .. "/tmp" }
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(require("cjson").encode(t))
end

--- /error?case=NAME
function M.error_case()
  local name = ngx.var.arg_case
  if not M.cases[name] then ngx.status = 404 return reply{ error = "no such case" } end
  reply(M.run_case(name, cfg_from_env()))
end

local serial = 0

--- /download?name=big.bin[&cut=N][&blocking=1]: downloads the emulator's file, answers
-- `{ ok, bytes, sha256, seconds }` (the file is removed afterwards).
function M.download()
  local cfg = cfg_from_env()
  local name = ngx.var.arg_name or "big.bin"
  local cut = tonumber(ngx.var.arg_cut)
  local url = cfg.base_url .. (cut and ("/cut/" .. name .. "?after=" .. cut) or ("/files/" .. name))
  local pool -- nil: the default pool; false: the blocking path, for comparison
  if ngx.var.arg_blocking == "1" then pool = false end
  local client = require("loghaul.client").new({
    endpoint = cfg.base_url, ca_file = cfg.ca_file, log = false, timeout = 600, thread_pool = pool,
    retry = { max_attempts = 20, base_delay = 0.05, max_delay = 0.2 },
  }, { vendor = "test" })
  serial = serial + 1
  local dest = ("%s/dl-%d-%d.bin"):format(cfg.tmp, ngx.worker.pid(), serial)
  local t0 = ngx.now()
  local file, err = require("loghaul.download").fetch(client, { operation = "download", url = url, dest = dest,
    decode = function() return nil end })
  ngx.update_time()
  local seconds = ngx.now() - t0
  -- unlinking a GiB takes the file system a while: not in the event loop
  ngx.run_worker_thread("loghaul", "loghaul_test", "remove", dest)
  client:close()
  if not file then return reply{ ok = false, error = M.fields(err), seconds = seconds } end
  reply{ ok = true, bytes = file.bytes, sha256 = file.sha256, seconds = seconds }
end

--- /run_all?n=32: `loghaul.run_all` over n tasks, each a client call to the emulator's
-- `/slow?delay=0.5` (light threads; each transfer on the thread pool); answers
-- `{ ok = tasks that got 200, n, seconds }`.
function M.run_all()
  local cfg = cfg_from_env()
  local n = tonumber(ngx.var.arg_n) or 32
  local client = require("loghaul.client").new({ endpoint = cfg.base_url, ca_file = cfg.ca_file, log = false },
                                                { vendor = "test" })
  local tasks = {}
  for i = 1, n do
    tasks[i] = function()
      return client:call{ operation = "slow", url = cfg.base_url .. "/slow?delay=0.5&i=" .. i,
                          decode = function(res) return res.status end }
    end
  end
  local t0 = ngx.now()
  local res = require("loghaul").run_all(tasks, { concurrency = n })
  ngx.update_time()
  local ok = 0
  for _, r in ipairs(res) do
    if r.ok and r.value == 200 then ok = ok + 1 end
  end
  client:close()
  reply{ ok = ok, n = n, seconds = ngx.now() - t0 }
end

--- os.remove, for a worker thread.
function M.remove(path) return (os.remove(path)) end

--- Returns what loghaul.runtime decides here (for the worker-thread side, run in a thread).
function M.probe_runtime()
  local rt = require "loghaul.runtime"
  return { phase = ngx.get_phase(), sleep = rt.ngx_sleep_usable() ~= nil,
           thread = rt.worker_thread_usable() ~= nil, now = rt.now() }
end

--- /runtime: the decisions in this phase and inside a worker thread.
function M.runtime_info()
  local here = M.probe_runtime()
  local ok, there = ngx.run_worker_thread("loghaul", "loghaul_test", "probe_runtime")
  reply{ here = here, thread = ok and there or { failed = tostring(there) } }
end

return M
