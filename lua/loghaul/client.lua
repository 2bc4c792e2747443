--- The request pipeline every operation goes through: build → sign or attach the token →
-- send on the client's reused session → classify (result or error object) → retry what is
-- retryable. Vendor modules describe operations; this module runs them.
-- @module loghaul.client
local errors = require "loghaul.errors"
local retry = require "loghaul.retry"
local runtime = require "loghaul.runtime"
local util = require "loghaul.util"

local M = {}

local Client = {}
Client.__index = Client
M.Client = Client

local function check(opts, name, ty)
  local v = opts[name]
  if v ~= nil and type(v) ~= ty then
    error(("loghaul: option %s must be a %s, got %s"):format(name, ty, type(v)), 4)
  end
  return v
end

local function default_log(level, message)
  if level == "warn" or level == "error" then
    io.stderr:write("loghaul ", level, ": ", message, "\n")
  end
end

local function load_core(opts)
  if opts._core then return opts._core end
  return require "loghaul.core"
end

-- a uniform number in [0, 1) from the CSPRNG when the core has one (LuaJIT's math.random
-- starts from a fixed seed: a fleet of cron jobs would all jitter alike)
local function make_random(core)
  if type(core.random) ~= "function" then return math.random end
  return function()
    local ok, b = pcall(core.random, 4)
    if not ok or type(b) ~= "string" or #b ~= 4 then return math.random() end
    local b1, b2, b3, b4 = b:byte(1, 4)
    return (((b1 * 256 + b2) * 256 + b3) * 256 + b4) / 4294967296
  end
end

--- Creates a client (used by the vendor constructors).
-- Common options (all optional): `endpoint`/`base_url`, `ca_file`, `insecure`, `timeout`,
-- `connect_timeout`, `retry`, `on_progress`, `log`, `user_agent`, `proxy`, `max_body`,
-- `now` (a clock in Unix seconds, for signers and deadlines), and `thread_pool` (in nginx: the
-- `thread_pool` transfers run on, default "loghaul"; false runs them in the worker, blocking).
-- `timeout` (default 300 s) limits each attempt of an API call; downloads run with no total
-- limit (the session's low-speed abort still ends a stalled one) unless `timeout` is given,
-- which then limits every attempt of a download too (`client.timeout`, nil when not given).
-- @tparam table opts the user's options
-- @tparam table spec `{ vendor =, default_endpoint =, user_agent = }`
-- @treturn table the client
function M.new(opts, spec)
  if type(opts) ~= "table" then error("loghaul: options table expected", 3) end
  local base = opts.endpoint or opts.base_url or spec.default_endpoint
  if base == nil then error("loghaul: " .. spec.vendor .. " needs endpoint (or base_url)", 3) end
  local c = setmetatable({}, Client)
  c.vendor = spec.vendor
  c.base_url = util.base_url(base, "endpoint")
  c.on_progress = check(opts, "on_progress", "function")
  c.user_log = opts.log
  if c.user_log ~= nil and c.user_log ~= false and type(c.user_log) ~= "function" then
    error("loghaul: option log must be a function", 3)
  end
  for _, n in ipairs{ "ca_file", "user_agent", "proxy" } do check(opts, n, "string") end
  for _, n in ipairs{ "timeout", "connect_timeout", "max_body" } do check(opts, n, "number") end
  check(opts, "now", "function")
  if opts.insecure ~= nil and opts.insecure ~= true and opts.insecure ~= false then
    error("loghaul: option insecure must be true or false", 3)
  end
  c.secrets = {}
  c.timeout = opts.timeout
  c.core = load_core(opts)
  c.policy = retry.policy(opts.retry)
  c.budget = retry.budget(c.policy)
  c.now = opts.now or runtime.now
  c.sleep = opts._sleep or runtime.sleep
  c.random = opts._random or make_random(c.core)
  if opts.thread_pool ~= nil and opts.thread_pool ~= false and type(opts.thread_pool) ~= "string" then
    error("loghaul: option thread_pool must be a string (an nginx thread_pool name) or false", 3)
  end
  local session_opts = {
    timeout = opts.timeout or 300, connect_timeout = opts.connect_timeout or 15,
    ca_file = opts.ca_file, insecure = opts.insecure or nil, proxy = opts.proxy,
    user_agent = opts.user_agent or spec.user_agent or ("loghaul/" .. M.version),
    max_body = opts.max_body,
    -- redirects are followed by Client:call, which keeps credentials on the same origin
    follow_redirects = false,
  }
  c.session = opts._session or c.core.session(session_opts)
  -- in nginx, transfers rerun these options on a session of a worker thread (loghaul.runtime);
  -- an injected session (a test double) always runs in place
  if not opts._session then c.transfer_ctx = { session_opts = session_opts, thread_pool = opts.thread_pool } end
  if opts.insecure then
    c:log("warn", "TLS verification is OFF for " .. c.base_url .. " (insecure = true)")
  end
  return c
end

M.version = "0.1.0"

--- Transfers under way in this Lua state: a finalizer (a Yeastar client's `__gc`) may run
-- inside one, in a libcurl callback, where it must not start a transfer of its own.
M.transfers_running = 0

--- Registers a literal secret (key, password, token) so that it is redacted everywhere.
-- @tparam string s
function Client:secret(s)
  if type(s) == "string" and #s >= 4 then self.secrets[s] = true end
end

--- Forgets a secret that is no longer in use (an old token).
-- @tparam string s
function Client:forget(s)
  if s then self.secrets[s] = nil end
end

--- Redacts a text with this client's secrets.
-- @tparam string s
-- @treturn string
function Client:redact(s)
  return errors.redact(s, self.secrets)
end

--- Logs through the user's `log` option, secrets redacted.
-- @tparam string level "debug" | "info" | "warn" | "error"
-- @tparam string message
function Client:log(level, message)
  local f = self.user_log
  if f == false then return end
  f = f or default_log
  local ok, err = pcall(f, level, self:redact(message))
  if not ok then io.stderr:write("loghaul: log function raised: ", tostring(err), "\n") end
end

--- A URL on this client's endpoint.
-- @tparam string path starting with `/`
-- @tparam[opt] table query
-- @treturn string
function Client:url(path, query)
  return util.add_query(self.base_url .. path, util.encode_query(query))
end

local MAX_REDIRECTS = 5
local default_ports = { http = 80, https = 443 }

local function origin(url)
  local u = util.parse_url(url)
  if not u then return nil end
  return u.scheme .. "://" .. u.host:lower() .. ":" .. tostring(u.port or default_ports[u.scheme])
end

-- The absolute URL a 3xx answer points to, or nil.
local function redirect_target(res, base)
  if not (res.status == 301 or res.status == 302 or res.status == 303 or res.status == 307
          or res.status == 308) then return nil end
  local loc = res.headers and res.headers.location
  if type(loc) ~= "string" or loc == "" or loc:find("[%c%s]") then return nil end
  if loc:find("^[%a][%w+.-]*://") then
    local u = util.parse_url(loc)
    if not u or (u.scheme ~= "http" and u.scheme ~= "https") then return nil end
    return loc
  end
  local b = util.parse_url(base)
  if not b then return nil end
  local root = b.scheme .. "://" .. util.host_header(base)
  if loc:sub(1, 2) == "//" then return b.scheme .. ":" .. loc end
  if loc:sub(1, 1) == "/" then return root .. loc end
  local dirpath = (b.path:match("^[^?#]*") or "/"):match("^(.*/)") or "/"
  return root .. dirpath .. loc
end

--- Runs one operation through the pipeline.
-- `op` fields: `operation` (name for errors), `method`, `url`, `headers`, `body` | `form`,
-- `prepare(req, n)` (per attempt: output, resume, progress; may return nil, err),
-- `auth` (an object with `apply(self, req, client)` and optionally `renew(self, err, client)`:
-- a token or a signature, applied to every attempt; an `auth` error is renewed once, and the
-- request after the renewal starts again from `op`'s own URL, method and body),
-- `decode(res, op, secrets)` (an envelope decoder), `create` (retry only when the request
-- provably never reached the server), `write` (not read-only: a timeout is not retried),
-- `on_error(err, n)` (sees each failed attempt's error, e.g. a cut answer's `partial`
-- headers for a resume), `deadline` (seconds for the whole operation: an attempt's `timeout`
-- is cut to what is left of it, so the last attempt ends at the deadline).
-- @tparam table op
-- @return the decoded value, or nil, err
function Client:call(op)
  local sent, renewed, history = 0, false, {}
  local deadline = op.deadline or self.policy.deadline
  local deadline_at = deadline and self.now() + deadline or nil
  local explicit_deadline = op.deadline ~= nil or self.policy.deadline_set
  local function attempt(n)
    -- redirects: followed here, not by libcurl, so that credentials (auth headers, signed
    -- requests, Yeastar's access_token) go only to the operation's own origin; another
    -- origin gets a plain GET without them, and a body is never sent there
    local url, method, body, form, hops, foreign = op.url, op.method or "GET", op.body, op.form, 0, false
    while true do
      local req = { method = method, url = url, headers = util.copy(op.headers), body = body, form = form }
      if op.prepare then
        local ok, perr = op.prepare(req, n)
        if not ok then return nil, perr, true end
      end
      -- API answers (JSON) may come gzip/deflate, decoded by libcurl; a download never asks
      -- for an encoding (its Range must address the file's own bytes)
      if req.output == nil then req.compressed = true end
      if op.auth and not foreign then
        local ok, aerr = op.auth:apply(req, self)
        if not ok then return nil, aerr, true end
      end
      if deadline_at then
        local left = deadline_at - self.now()
        if left <= 0 then
          return nil, errors.new{ kind = "timeout", code = "DEADLINE", retryable = false, reached = false,
            message = ("the operation's deadline (%gs) passed before this attempt"):format(deadline) }, true
        end
        -- the last attempt ends at the deadline instead of running past it; an attempt with
        -- no time limit (a download, 0) is cut only by a deadline the caller chose, not by
        -- the default one (a big file may take longer than 15 minutes)
        local limit = req.timeout
        if limit == nil then limit = self.timeout or 300 end
        if (limit == 0 and explicit_deadline) or (limit > 0 and left < limit) then
          req.timeout = math.max(left, 0.001)
        end
      end
      sent = sent + 1
      self:log("debug", ("%s %s (attempt %d)"):format(req.method, req.url, sent))
      M.transfers_running = M.transfers_running + 1
      local tok, res, cerr = pcall(runtime.transfer, self.session, req, self.transfer_ctx)
      M.transfers_running = M.transfers_running - 1
      if not tok then error(res, 0) end
      local value, err
      local target = res and redirect_target(res, req.url)
      if target and hops < MAX_REDIRECTS then
        hops = hops + 1
        if res.status == 303 or ((res.status == 301 or res.status == 302) and method == "POST") then
          method, body, form = "GET", nil, nil
        end
        foreign = foreign or origin(target) ~= origin(op.url)
        if foreign and (body ~= nil or form ~= nil or method ~= "GET") then
          return nil, errors.new{ kind = "http", code = "REDIRECT_REFUSED", status = res.status,
            message = "refused to send a " .. method .. " body to another host (" .. tostring(origin(target)) .. ")" },
            true
        end
        self:log("debug", ("%s: HTTP %d redirect to %s"):format(op.operation, res.status, target))
        url = target
        goto continue
      end
      if res then
        value, err = op.decode(res, op, self.secrets)
        if value ~= nil then return value end
      else
        err = errors.from_core(cerr, self.secrets)
      end
      history[#history + 1] = errors.brief(err)
      if op.on_error then op.on_error(err, n) end
      if err.kind == "auth" and op.auth and op.auth.renew and not renewed then
        renewed = true
        self:log("info", op.operation .. ": " .. errors.brief(err) .. ", renewing credentials once")
        local ok, rerr = op.auth:renew(err, self)
        if not ok then return nil, rerr or err, true end
        -- start over from the operation itself: a redirect's URL, hop count or rewritten
        -- method (a 303 turns a POST into a GET) belonged to the request that failed
        url, method, body, form, hops, foreign = op.url, op.method or "GET", op.body, op.form, 0, false
      else
        return nil, err
      end
      ::continue::
    end
  end
  local value, err = retry.run({
    policy = self.policy, budget = self.budget, now = self.now, sleep = self.sleep,
    random = self.random, create = op.create, write = op.write,
    deadline_at = deadline_at,
    log = function(level, msg) self:log(level, op.operation .. ": " .. msg) end,
  }, attempt)
  if value ~= nil then return value end
  if err.vendor == nil then err.vendor = self.vendor end
  if err.operation == nil then err.operation = op.operation end
  if err.attempts == nil then
    err.attempts = sent
    err.history = history
  end
  self:log("info", tostring(err))
  return nil, err
end

--- Closes the client's session (its kept-alive connections).
function Client:close()
  if self.session and self.session.close then self.session:close() end
end

return M
