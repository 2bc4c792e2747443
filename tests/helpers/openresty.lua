--- A second nginx running examples/openresty/nginx.conf (one worker, thread_pool loghaul)
-- with tests/openresty/locations.conf included, against the emulator; and probes that time
-- small requests on a fixed clock. Used by tests/openresty/openresty_spec.lua and
-- bench/openresty.
--
--   local openresty = require "helpers.openresty"
--   local ngx_ = openresty.start{ emu = emu.start(), env = { CLOUDDC_EVERY = "0" } }
--   -- ngx_.url = "http://127.0.0.1:PORT", ngx_.dir, ngx_.port, ngx_.error_log()
--   openresty.get(ngx_.url .. "/probe")     -- body, status (curl)
--   ngx_:stop()
local shell = require "helpers.shell"

local M = {}

-- run: a command's output (stdout+stderr) and exit status; read: a file's content or nil
local q, run, read = shell.quote, shell.capture, shell.read_file
M.run, M.q = run, q

--- The checkout's root.
M.root = shell.root

local function plain(s) return (s:gsub("%%", "%%%%")) end

--- Starts nginx. `opts`: `emu` (the emulator's table), `env` (extra variables), `threads`.
-- @treturn table `{ url, port, dir, pid, stop = function, error_log = function }`
function M.start(opts)
  local e = assert(opts.emu, "openresty.start: emu")
  local F = dofile(M.root .. "/tests/emulator/lua/emu/fixtures.lua")
  local dir = run("mktemp -d /tmp/loghaul-openresty.XXXXXX"):gsub("%s+$", "")
  assert(run("mkdir -p " .. q(dir .. "/tmp") .. " " .. q(dir .. "/downloads")) == "")
  local template = assert(read(M.root .. "/examples/openresty/nginx.conf"))
  local env = {
    ZLS_ENDPOINT = e.base_url, ZLS_ACCESS_KEY_ID = F.zenlayer.access_key_id,
    ZLS_ACCESS_KEY_PASSWORD = F.zenlayer.access_key_password,
    CLOUDDC_ENDPOINT = e.base_url, CLOUDDC_PROJECT_ID = F.clouddc.project_id,
    CLOUDDC_ACCESS_KEY = F.clouddc.access_key, CLOUDDC_SECRET_KEY = F.clouddc.secret_key,
    CLOUDDC_SERVER_ID = F.clouddc.server_id, CLOUDDC_DEST = dir .. "/downloads/",
    CLOUDDC_EVERY = "0", CLOUDDC_POLL_INTERVAL = "0.2", LOGHAUL_CA_FILE = e.ca_file,
  }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local envs = {}
  for k, v in pairs(env) do envs[#envs + 1] = k .. "=" .. q(v) end
  local user = run("id -u"):match("^0") and "user root;" or ""
  local pid_self = run("echo $PPID"):match("%d+")
  for _ = 1, 10 do
    local port = 20000 + math.random(0, 39999)
    local conf = template:gsub("@LOGHAUL@", plain(M.root)):gsub("@PREFIX@", plain(dir))
      :gsub("@LISTEN@", "127.0.0.1:" .. port):gsub("@USER@", plain(user))
      :gsub("#@INCLUDE@", plain("include " .. M.root .. "/tests/openresty/locations.conf;"))
      :gsub('lua_package_path "', plain('lua_package_path "' .. M.root .. "/tests/openresty/lua/?.lua;"))
    if opts.threads then
      conf = conf:gsub("thread_pool loghaul threads=%d+", "thread_pool loghaul threads=" .. opts.threads)
    end
    local f = assert(io.open(dir .. "/nginx.conf", "wb"))
    f:write(conf)
    f:close()
    local out, rc = run("env " .. table.concat(envs, " ") .. " nginx -p " .. q(dir) .. " -c " .. q(dir .. "/nginx.conf")
      .. " -e " .. q(dir .. "/error.log") .. " </dev/null")
    if rc == 0 then
      local pid
      for _ = 1, 100 do
        pid = tonumber((read(dir .. "/nginx.pid") or ""):match("%d+"))
        local _, prc = run("curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:" .. port .. "/probe")
        if pid and prc == 0 then break end
        pid = nil
        run("sleep 0.05")
      end
      if not pid then error("nginx did not answer:\n" .. (read(dir .. "/error.log") or "")) end
      -- a watchdog stops this nginx when the test process dies without stop()
      run("setsid bash -c 'while kill -0 " .. pid_self .. " 2>/dev/null && [ -e " .. q(dir .. "/nginx.conf")
        .. " ]; do sleep 0.5; done; kill -TERM " .. pid .. " 2>/dev/null' </dev/null >/dev/null 2>&1 &")
      local t = { url = "http://127.0.0.1:" .. port, port = port, dir = dir, pid = pid }
      function t.error_log() return read(dir .. "/error.log") or "" end
      function t.stop()
        if t.stopped then return end
        t.stopped = true
        run("kill -TERM " .. pid .. "; for i in $(seq 100); do kill -0 " .. pid
          .. " 2>/dev/null || break; sleep 0.05; done; kill -0 " .. pid .. " 2>/dev/null && kill -KILL " .. pid)
        run("rm -rf " .. q(dir))
      end
      return t
    end
    if not (out .. (read(dir .. "/error.log") or "")):find("Address already in use", 1, true) then
      run("rm -rf " .. q(dir))
      error("nginx did not start:\n" .. out)
    end
  end
  run("rm -rf " .. q(dir))
  error("nginx: no free port after 10 tries")
end

--- GET with the curl command line: body, HTTP status.
function M.get(url, max_time)
  local out, rc = run("curl -sS --max-time " .. (max_time or 60) .. " -w '\\n%{http_code}' " .. q(url))
  local body, code = out:match("^(.*)\n(%d+)$")
  if rc ~= 0 or not code then error("GET " .. url .. " failed: " .. out, 2) end
  return body, tonumber(code)
end

--- Starts `curl URL` in the background; returns a handle with `done()` and `result()`
-- (body, status, seconds).
function M.background(url, dir, name)
  local base = dir .. "/" .. name
  os.execute("( curl -sS --max-time 600 -o " .. q(base .. ".body") .. " -w '%{http_code} %{time_total}' " .. q(url)
    .. " > " .. q(base .. ".code") .. " 2>&1; touch " .. q(base .. ".done") .. " ) </dev/null >/dev/null 2>&1 &")
  local h = {}
  function h.done() return read(base .. ".done") ~= nil end
  function h.result()
    local code, secs = (read(base .. ".code") or ""):match("^(%d+) ([%d%.]+)")
    return read(base .. ".body"), tonumber(code), tonumber(secs)
  end
  return h
end

--- Sends `GET path` to 127.0.0.1:port every `interval` seconds (a fixed clock: each probe's
-- latency counts from its scheduled time, so a stalled worker shows in every probe it held
-- back) until `stop()` is true or `max_time` passed. Returns the latencies in seconds.
function M.probe(port, path, interval, stop, max_time)
  local socket = require "socket"
  local now = socket.gettime
  local lat, t0, i = {}, now(), 0
  local req = "GET " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
  while true do
    local sched = t0 + i * interval
    local d = sched - now()
    if d > 0 then socket.sleep(d) end
    local c = socket.tcp()
    c:settimeout(30)
    local ok, err = c:connect("127.0.0.1", port)
    if ok then ok, err = c:send(req) end
    local body
    if ok then body, err = c:receive("*a") end
    c:close()
    if not body or not body:find("\r\n\r\nok", 1, true) then error("probe failed: " .. tostring(err or body)) end
    lat[#lat + 1] = now() - sched
    i = i + 1
    if stop() or now() - t0 > max_time then break end
  end
  return lat
end

--- p50, p99 and max of a list of numbers.
function M.summary(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local function pct(p) return s[math.max(1, math.ceil(#s * p))] or 0 end
  return { n = #s, p50 = pct(0.5), p90 = pct(0.9), p99 = pct(0.99), max = s[#s] or 0 }
end

return M
