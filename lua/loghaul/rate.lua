--- Client-side rate limiting: a token bucket per origin that also adapts to the server's
-- throttling, after the AWS SDKs' "adaptive" retry mode (botocore `retries/adaptive.py`,
-- `bucket.py`, `throttling.py`).
--
-- The bucket refills at `per_second` tokens a second up to `burst` tokens; a request takes
-- one. A throttled answer (HTTP 429, Huawei `APIG.0308`, Zenlayer `REQUEST_LIMIT_EXCEEDED`,
-- Yeastar `70082`) engages the adaptive part (CUBIC congestion control, as in TCP): the
-- sending rate drops to `beta` (0.7) times the rate measured at that moment, the bucket is
-- emptied (the server's just was), and each later answer lets the rate climb back along the
-- cubic curve `scale * (t - K)^3 + w_max` (`scale` 0.4, `w_max` the rate that was throttled,
-- `K` the time it takes to get back to it), never faster than twice the measured sending
-- rate, never above `per_second` when one is given, never below `min_rate` (0.5/s, or
-- `per_second` when that is lower). Without `per_second` nothing is limited until the first
-- throttled answer (as in the AWS SDKs); `adaptive = false` keeps the plain bucket.
--
-- Pure: the clock is a function given to `new`; `acquire` says how long to wait instead of
-- waiting, so one limiter serves blocking calls and scheduler tasks alike (`take` loops over
-- `acquire` with the caller's `sleep`). Waiting callers queue in arrival order; each is told
-- to come back when its token will be there, or in 0.5 s when that is later (the rate may
-- have grown meanwhile), and asks again then.
-- @module loghaul.rate
local M = {}

--- The fields of the `rate` client option (the allow-list for option checking).
M.FIELDS = { "per_second", "burst", "adaptive" }

--- The adaptive constants (those of the AWS SDKs): `beta` multiplicative decrease on a
-- throttle, `scale` CUBIC's scale constant, `min_rate` the floor (requests/s), `smoothing`
-- and `bucket` (seconds) of the measured sending rate, `max_scale` the cap over it.
M.constants = { beta = 0.7, scale = 0.4, min_rate = 0.5, smoothing = 0.8, bucket = 0.5, max_scale = 2 }

-- the shortest wait `acquire` returns (never 0 while no token is there: no spinning on
-- rounding); the longest (a caller told to wait at a low rate asks again this soon, so a
-- rate that has since grown is used within it); how long past its due time a queued caller
-- keeps its place
local MIN_WAIT, MAX_WAIT, GRACE = 0.001, 0.5, 1

--- The error codes that mean "slow down" (besides HTTP 429), by vendor envelope
-- (see `loghaul.envelope`).
M.throttling_codes = { ["APIG.0308"] = true, REQUEST_LIMIT_EXCEEDED = true, ["70082"] = true }

--- Whether an error object is the server asking the client to slow down.
-- @tparam table err
-- @treturn boolean
function M.is_throttle(err)
  if type(err) ~= "table" then return false end
  return err.status == 429 or (err.code ~= nil and M.throttling_codes[err.code] == true)
end

local function bad(msg) error("loghaul: " .. msg, 5) end

local function finite_number(v)
  return type(v) == "number" and v == v and v > -math.huge and v < math.huge
end

--- Validates the `rate` client option.
-- `nil` or `{}`: adaptive only (nothing limited until the server throttles); `false`: no
-- limiting at all; `{ per_second =, burst =, adaptive = }`.
-- @param opt the option's value
-- @treturn table|false `{ per_second =, burst =, adaptive = }` or false (no limiter)
function M.config(opt)
  if opt == false then return false end
  if opt == nil then opt = {} end
  if type(opt) ~= "table" then bad("option rate must be a table { per_second =, burst = } or false") end
  local known = {}
  for _, k in ipairs(M.FIELDS) do known[k] = true end
  for k in pairs(opt) do
    if not known[k] then
      bad(("rate.%s is not an option (rate takes %s)"):format(tostring(k), table.concat(M.FIELDS, ", ")))
    end
  end
  local ps, burst, adaptive = opt.per_second, opt.burst, opt.adaptive
  if ps ~= nil and not (finite_number(ps) and ps > 0) then
    bad("rate.per_second must be a positive number (requests per second)")
  end
  if burst ~= nil then
    if not (finite_number(burst) and burst >= 1) then bad("rate.burst must be a number >= 1") end
    if ps == nil then bad("rate.burst needs rate.per_second") end
  end
  if adaptive ~= nil and type(adaptive) ~= "boolean" then bad("rate.adaptive must be true or false") end
  if adaptive == nil then adaptive = true end
  if ps == nil and not adaptive then return false end
  return { per_second = ps, burst = ps and (burst or math.max(1, ps)) or nil, adaptive = adaptive }
end

local Limiter = {}
Limiter.__index = Limiter
M.Limiter = Limiter

--- A limiter.
-- @tparam table cfg from `config` (or the same fields by hand)
-- @tparam function now the clock, seconds
-- @treturn table the limiter
function M.new(cfg, now)
  assert(type(now) == "function", "rate.new: now must be a function")
  cfg = cfg or {}
  local k = M.constants
  local t = now()
  local self = setmetatable({
    now = now, user_rate = cfg.per_second, burst = cfg.burst, adaptive = cfg.adaptive ~= false,
    floor = math.min(k.min_rate, cfg.per_second or k.min_rate),
    fill = cfg.per_second, capacity = cfg.burst or (cfg.per_second and math.max(1, cfg.per_second)),
    tokens = 0, last = t, queue = {},
    engaged = false, throttles = 0,
    -- CUBIC: the rate that was throttled, the time to get back to it, the throttle's time
    w_max = 0, cubic_k = 0, last_fail = t,
    -- measured sending rate: answers counted per `bucket` seconds, smoothed
    measured = 0, count = 0, last_bucket = math.floor(t / k.bucket) * k.bucket,
  }, Limiter)
  self.tokens = self.capacity or 0
  return self
end

function Limiter:refill(t)
  if self.fill and t > self.last then
    self.tokens = math.min(self.capacity, self.tokens + (t - self.last) * self.fill)
  end
  if t > self.last then self.last = t end
end

-- sets the refill rate (after refilling at the old one), within [floor, per_second]
function Limiter:set_rate(r, t)
  self:refill(t)
  r = math.max(self.floor, r)
  if self.user_rate then r = math.min(self.user_rate, r) end
  self.fill = r
  self.capacity = math.max(1, math.min(self.burst or math.huge, r))
  self.tokens = math.min(self.tokens, self.capacity)
end

local function index_of(queue, ticket)
  if ticket == nil then return nil end
  for i = 1, #queue do
    if queue[i] == ticket then return i end
  end
  return nil
end

--- Takes a token, or says how long to wait for one.
-- Returns 0 when the request may go now; else the seconds to wait and a ticket (the caller's
-- place in the queue) to give back on the next `acquire`, after waiting.
-- @tparam[opt] table ticket from the previous `acquire` of the same request
-- @treturn number seconds to wait (0: send now)
-- @treturn[opt] table ticket
-- @treturn[opt] number seconds until this caller's token comes at the present rate
function Limiter:acquire(ticket)
  local t = self.now()
  local q = self.queue
  if not self.fill then -- unlimited (adaptive, not engaged yet)
    local i = index_of(q, ticket)
    if i then table.remove(q, i) end
    return 0
  end
  self:refill(t)
  -- a caller that never came back (its task ended) gives up its place
  local grace = GRACE + 2 / self.fill
  for i = #q, 1, -1 do
    if q[i] ~= ticket and q[i].due < t - grace then table.remove(q, i) end
  end
  local pos = index_of(q, ticket)
  -- a queued caller takes a token when there is one; a newcomer only when nobody queues
  if self.tokens >= 1 and (pos or #q == 0) then
    self.tokens = self.tokens - 1
    if pos then table.remove(q, pos) end
    return 0
  end
  if not pos then
    ticket = ticket or {}
    q[#q + 1] = ticket
    pos = #q
  end
  -- come back when the tokens for everyone ahead and for this caller will have been made
  local eta = math.max(MIN_WAIT, (pos - self.tokens) / self.fill)
  local wait = math.min(MAX_WAIT, eta)
  ticket.due = t + wait
  return wait, ticket, eta
end

--- Waits for a token with `sleep` (the client's: a scheduler timer inside `loghaul.run_all`,
-- `ngx.sleep` in nginx, else a blocking sleep).
-- @tparam function sleep
-- @tparam[opt] number within seconds: rather than wait past them, give up (an operation's deadline)
-- @treturn number|nil the seconds waited in all; nil when, at the present rate, the token
-- would come after `within` (given up at once, not at the limit)
function Limiter:take(sleep, within)
  local waited = 0
  local give_up_at = within and self.now() + within
  local wait, ticket, eta = self:acquire()
  while wait > 0 do
    if give_up_at and self.now() + eta > give_up_at then
      local i = index_of(self.queue, ticket)
      if i then table.remove(self.queue, i) end -- its place goes to those behind it
      return nil
    end
    sleep(wait)
    waited = waited + wait
    wait, ticket, eta = self:acquire(ticket)
  end
  return waited
end

-- counts one answer; returns the smoothed sending rate (requests/s)
function Limiter:record(t)
  local k = M.constants
  local b = math.floor(t / k.bucket) * k.bucket
  self.count = self.count + 1
  if b > self.last_bucket then
    local current = self.count / (b - self.last_bucket)
    self.measured = current * k.smoothing + self.measured * (1 - k.smoothing)
    self.count = 0
    self.last_bucket = b
  end
  return self.measured
end

--- Tells the limiter how an answer went: `throttled` when the server asked to slow down.
-- A throttle lowers the rate (and engages the adaptive part), once per congestion event: the
-- throttles of requests sent before the last decrease (concurrent requests refused together)
-- are counted but lower nothing more. Other answers let the rate recover.
-- @tparam boolean throttled
-- @tparam[opt] number sent_at the clock when the request was sent
-- @treturn[opt] number the new rate (requests/s) after a throttle that lowered it, else nil
function Limiter:feedback(throttled, sent_at)
  local t = self.now()
  local measured = self:record(t)
  if not self.adaptive then return nil end
  local k = M.constants
  local r
  if throttled and self.engaged and sent_at and sent_at <= self.last_fail then
    self.throttles = self.throttles + 1
    return nil
  elseif throttled then
    -- the rate that was too much: what was measured, or the bucket's rate when lower
    local base = measured
    if self.fill then base = math.min(measured, self.fill) end
    self.w_max = base
    self.cubic_k = (base * (1 - k.beta) / k.scale) ^ (1 / 3)
    self.last_fail = t
    r = base * k.beta
    self.engaged = true
    self.throttles = self.throttles + 1
  elseif self.engaged then
    r = k.scale * (t - self.last_fail - self.cubic_k) ^ 3 + self.w_max
  else
    return nil
  end
  self:set_rate(math.min(r, k.max_scale * measured), t)
  if throttled then
    self.tokens = 0 -- the server's bucket is empty: no burst right after a throttle
    return self.fill
  end
  return nil
end

--- A snapshot for logs and tests: `rate` (requests/s, nil = unlimited), `tokens`, `capacity`,
-- `measured`, `engaged` (adaptive engaged), `throttles` (count), `queued`.
-- @treturn table
function Limiter:state()
  return { rate = self.fill, tokens = self.tokens, capacity = self.capacity, measured = self.measured,
           engaged = self.engaged, throttles = self.throttles, queued = #self.queue }
end

return M
