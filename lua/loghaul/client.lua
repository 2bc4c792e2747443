--- The request pipeline every operation goes through: build → sign or attach the token →
-- send on the client's reused session → classify (result or error object) → retry what is
-- retryable. Vendor modules describe operations; this module runs them.
-- @module loghaul.client
local errors = require "loghaul.errors"
local rate = require "loghaul.rate"
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
    util.raise(("loghaul: option %s must be a %s, got %s"):format(name, ty, type(v)))
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

--- The options every client takes; a vendor constructor adds its own with `M.options`.
-- (`_core`, `_session`, `_sleep`, `_random`: test doubles.)
M.common_options = { "endpoint", "base_url", "ca_file", "insecure", "timeout", "connect_timeout", "retry",
                     "on_progress", "log", "user_agent", "proxy", "max_body", "now", "thread_pool", "rate",
                     "_core", "_session", "_sleep", "_random" }

--- The set of names a vendor constructor takes: the common options and the vendor's own.
-- @tparam {string,...} own the vendor's options
-- @treturn table a set for `util.check_options`
function M.options(own)
  return util.set(M.common_options, own)
end

--- Checks a vendor constructor's options table: a table, every key known (the common
-- options and `allowed`), and `retry` too. Raises at the user's line.
-- @param opts what the user passed
-- @tparam table allowed `M.options{...}` of the vendor
-- @tparam string where `loghaul.cms`, ...
function M.check_new(opts, allowed, where)
  if type(opts) ~= "table" then
    util.raise(("%s: options table expected (%s{ ... }), got %s"):format(where, where, type(opts)))
  end
  util.check_options(opts, allowed, where)
  if type(opts.retry) == "table" then
    local names = {}
    for k in pairs(retry.defaults) do names[#names + 1] = k end
    util.check_options(opts.retry, util.set(names), where .. " retry")
  end
end

--- Creates a client (used by the vendor constructors).
-- Common options (all optional): `endpoint`/`base_url`, `ca_file`, `insecure`, `timeout`,
-- `connect_timeout`, `retry`, `rate`, `on_progress`, `log`, `user_agent`, `proxy`, `max_body`,
-- `now` (a clock in Unix seconds, for signers and deadlines), and `thread_pool` (in nginx: the
-- `thread_pool` transfers run on, default "loghaul"; false runs them in the worker, blocking).
-- `timeout` (default 300 s) limits each attempt of an API call; downloads run with no total
-- limit (the session's low-speed abort still ends a stalled one) unless `timeout` is given,
-- which then limits every attempt of a download too (`client.timeout`, nil when not given).
-- `rate = { per_second =, burst =, adaptive = }` paces the requests: one `loghaul.rate` token
-- bucket per origin the client sends to (the API endpoint; a token endpoint on another host
-- has its own), shared by every call and task of the client, lowered when the server
-- throttles; `rate = false` turns it off, adaptive part included.
-- @tparam table opts the user's options
-- @tparam table spec `{ vendor =, default_endpoint =, user_agent =, adds = (the API's paths,
--   for the message refusing an endpoint with a path) }`
-- @treturn table the client
function M.new(opts, spec)
  if type(opts) ~= "table" then util.raise("loghaul: options table expected") end
  local base = opts.endpoint or opts.base_url or spec.default_endpoint
  if base == nil then util.raise("loghaul: " .. spec.vendor .. " needs endpoint (or base_url)") end
  local c = setmetatable({}, Client)
  c.vendor = spec.vendor
  c.base_url = util.base_url(base, opts.endpoint == nil and opts.base_url ~= nil and "base_url" or "endpoint",
                             spec.adds)
  c.on_progress = check(opts, "on_progress", "function")
  c.user_log = opts.log
  if c.user_log ~= nil and c.user_log ~= false and type(c.user_log) ~= "function" then
    util.raise("loghaul: option log must be a function")
  end
  for _, n in ipairs{ "ca_file", "user_agent", "proxy" } do check(opts, n, "string") end
  for _, n in ipairs{ "timeout", "connect_timeout", "max_body" } do check(opts, n, "number") end
  check(opts, "now", "function")
  if opts.insecure ~= nil and opts.insecure ~= true and opts.insecure ~= false then
    util.raise("loghaul: option insecure must be true or false")
  end
  c.secrets = {}
  c.timeout = opts.timeout
  c.core = load_core(opts)
  -- retry's own checks raise too: again at the user's line, without retry.lua's position
  local pok, policy = pcall(retry.policy, opts.retry)
  if not pok then util.raise((tostring(policy):gsub("^[^:]*:%d+: ", ""))) end
  c.policy = policy
  c.budget = retry.budget(c.policy)
  c.now = opts.now or runtime.now
  c.sleep = opts._sleep or runtime.sleep
  c.random = opts._random or make_random(c.core)
  c.rate = rate.config(opts.rate) -- false, or the limiters' settings
  -- the limiters' clock must be the one their sleep advances: the monotonic clock (not the
  -- user's `now`, which may be coarse or frozen), or a test's fake clock with its fake sleep
  c.rate_clock = opts._sleep and c.now or runtime.monotonic
  c.limiters = {}
  if opts.thread_pool ~= nil and opts.thread_pool ~= false and type(opts.thread_pool) ~= "string" then
    util.raise("loghaul: option thread_pool must be a string (an nginx thread_pool name) or false")
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

--- Logs through the user's `log` option, secrets redacted. An error the log function raises
-- is not caught: it stops the operation and reaches the caller, as on_progress's do.
-- @tparam string level "debug" | "info" | "warn" | "error"
-- @tparam string message
function Client:log(level, message)
  local f = self.user_log
  if f == false then return end
  f = f or default_log
  f(level, self:redact(message))
end

--- A URL on this client's endpoint.
-- @tparam string path starting with `/`
-- @tparam[opt] table query
-- @treturn string
function Client:url(path, query)
  return util.add_query(self.base_url .. path, util.encode_query(query))
end

local MAX_REDIRECTS = 5

-- error objects already logged by a call (weak keys): each is logged once
local logged = setmetatable({}, { __mode = "k" })
local default_ports = { http = 80, https = 443 }

local function origin(url)
  local u = util.parse_url(url)
  if not u then return nil end
  return u.scheme .. "://" .. u.host:lower() .. ":" .. tostring(u.port or default_ports[u.scheme])
end

--- The rate limiter for requests to `url`'s origin (created on first use), or nil when the
-- client has `rate = false`. One per origin: the vendors count requests per account and API,
-- and a client talks to one API host (plus, for Huawei, the IAM token host).
-- @tparam string url
-- @treturn table|nil a `loghaul.rate` limiter
function Client:limiter(url)
  if not self.rate then return nil end
  local key = origin(url)
  if not key then return nil end
  local lim = self.limiters[key]
  if not lim then
    lim = rate.new(self.rate, self.rate_clock)
    lim.origin = key
    self.limiters[key] = lim
  end
  return lim
end

-- after an answer from a limited origin: tell its limiter, log a throttle
local function rate_feedback(self, lim, sent_at, err)
  local throttled = err ~= nil and rate.is_throttle(err)
  local r = lim:feedback(throttled, sent_at)
  if r then
    self:log("info", ("throttled by %s (%s): sending at most %.2f requests/s"):format(
      lim.origin, errors.brief(err), r))
  end
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
  local last_method, last_url -- of the last request sent, for a 404's message
  local deadline = op.deadline or self.policy.deadline
  local deadline_at = deadline and self.now() + deadline or nil
  local explicit_deadline = op.deadline ~= nil or self.policy.deadline_set
  local function attempt(n)
    -- redirects: followed here, not by libcurl, so that credentials (auth headers, signed
    -- requests, Yeastar's access_token) go only to the operation's own origin; another
    -- origin gets a plain GET without them, and a body is never sent there
    local url, method, body, form, hops, foreign = op.url, op.method or "GET", op.body, op.form, 0, false
    while true do
      -- the rate limit of the operation's origin (not of a host a redirect sent us to), waited
      -- for before signing: a signature's timestamp or a token must not age in the queue
      local lim = not foreign and self:limiter(op.url)
      if lim then
        local waited = lim:take(self.sleep, deadline_at and deadline_at - self.now())
        if not waited then
          return nil, errors.new{ kind = "timeout", code = "DEADLINE", retryable = false, reached = false,
            message = ("the operation's deadline (%gs) would pass while waiting for the rate limit"):format(deadline) },
            true
        end
        if waited > 0 then self:log("debug", ("%s: waited %.3fs for the rate limit"):format(op.operation, waited)) end
      end
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
      local sent_at = lim and lim.now()
      sent = sent + 1
      last_method, last_url = req.method, req.url
      self:log("debug", ("%s %s (attempt %d)"):format(req.method, req.url, sent))
      M.transfers_running = M.transfers_running + 1
      local tok, res, cerr = pcall(runtime.transfer, self.session, req, self.transfer_ctx)
      M.transfers_running = M.transfers_running - 1
      if not tok then error(res, 0) end
      local value, err
      local target = res and redirect_target(res, req.url)
      if target and hops < MAX_REDIRECTS then
        if lim then rate_feedback(self, lim, sent_at) end
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
        if lim then rate_feedback(self, lim, sent_at, value == nil and err or nil) end
        if value ~= nil then return value end
      else
        err = errors.from_core(cerr, self.secrets)
      end
      history[#history + 1] = errors.brief(err)
      if op.on_error then op.on_error(err, n) end
      if err.kind == "auth" and op.auth and op.auth.renew and not renewed then
        renewed = true
        self:log("info", op.operation .. ": " .. errors.brief(err) .. ", renewing credentials once")
        local ok, rerr = op.auth:renew(err, self, req)
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
  if err.status == 404 and err.url_path == nil and last_url then
    -- what was not found: the method and path, never the query (Yeastar's token is there)
    local u = util.parse_url(last_url)
    err.method, err.url_path = last_method, u and u.path:match("^[^?#]*") or nil
  end
  -- once: a login that failed inside another call's attempt comes back through that call
  if not logged[err] then
    logged[err] = true
    self:log("info", tostring(err))
  end
  return nil, err
end

--- Closes the client's session (its kept-alive connections).
function Client:close()
  if self.session and self.session.close then self.session:close() end
end

return M
