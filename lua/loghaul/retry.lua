--- The one retry policy: full-jitter exponential backoff, Retry-After honoured but clamped,
-- a cap on attempts, create-vs-read rules, a per-client retry budget (gRPC retry throttling)
-- and a deadline per operation. Sleeping and the clock live here, in one function each.
-- @module loghaul.retry
local M = {}

--- Default policy values (seconds). `deadline` bounds one operation, retries and waits included.
M.defaults = { max_attempts = 5, base_delay = 0.5, max_delay = 20, max_retry_after = 60, deadline = 900 }

local errors = require "loghaul.errors"
local runtime = require "loghaul.runtime"
local util = require "loghaul.util"

--- Sleeps for `seconds`, the only place loghaul waits: `runtime.sleep` (`ngx.sleep` in an
-- nginx phase that can yield, else `core.sleep`, which blocks).
-- @tparam number seconds
function M.sleep(seconds)
  return runtime.sleep(seconds)
end

--- Unix seconds with sub-second resolution: `runtime.now` (`ngx.now` in nginx, else
-- `core.time`, the wall clock).
-- @treturn number
function M.now()
  return runtime.now()
end

local function positive(v, name)
  if v == nil then return nil end
  if type(v) ~= "number" or v < 0 or v ~= v then
    error("loghaul: retry." .. name .. " must be a non-negative number", 4)
  end
  return v
end

--- Builds a policy from the `retry` client option.
-- @tparam[opt] table opts `{ max_attempts, base_delay, max_delay, max_retry_after, deadline }`
-- @treturn table the policy
function M.policy(opts)
  if opts ~= nil and type(opts) ~= "table" then error("loghaul: retry must be a table", 3) end
  opts = opts or {}
  local p = {}
  for k, v in pairs(M.defaults) do
    if not (k == "deadline" and opts.deadline == false) then p[k] = positive(opts[k], k) or v end
  end
  if p.max_attempts == math.huge then error("loghaul: retry.max_attempts must be finite", 3) end
  p.max_attempts = math.max(1, math.floor(p.max_attempts))
  -- a deadline the user chose also bounds attempts that have no time limit (downloads)
  p.deadline_set = opts.deadline ~= nil and opts.deadline ~= false
  return p
end

--- The full-jitter backoff before retry number `n` (1 = the first retry):
-- uniform in [0, min(max_delay, base_delay * 2^(n-1))].
-- @tparam table policy
-- @tparam number n
-- @tparam[opt] function random returns a number in [0, 1)
-- @treturn number seconds
function M.backoff(policy, n, random)
  local cap = math.min(policy.max_delay, policy.base_delay * 2 ^ (n - 1))
  return (random or math.random)() * cap
end

--- Parses a Retry-After header value (delta seconds, or an HTTP date).
-- @tparam string v
-- @tparam[opt] number now Unix seconds, for a date
-- @treturn number|nil seconds
function M.parse_retry_after(v, now)
  if v == nil then return nil end
  v = tostring(v)
  local n = tonumber(v:match("^%s*(%d+%.?%d*)%s*$"))
  if n then return n end
  local d, mon, y, h, mi, s = v:match("%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT")
  if not d then return nil end
  local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9,
                   Oct = 10, Nov = 11, Dec = 12 }
  if not months[mon] then return nil end
  local t = util.parse_utc(("%s-%02d-%sT%s:%s:%sZ"):format(y, months[mon], d, h, mi, s))
  if not t then return nil end
  return math.max(0, t - (now or os.time()))
end

--- The wait before retry `n`: the jittered backoff, or the server's Retry-After when longer,
-- clamped to `max_retry_after`.
-- @tparam table policy
-- @tparam number n
-- @tparam[opt] number retry_after seconds the server asked for
-- @tparam[opt] function random
-- @treturn number seconds
function M.delay(policy, n, retry_after, random)
  local d = M.backoff(policy, n, random)
  if retry_after and retry_after > d then d = retry_after end
  return math.min(d, math.max(policy.max_retry_after, 0))
end

local Budget = {}
Budget.__index = Budget

--- A per-client retry budget with gRPC's retry-throttling semantics (also the shape of the
-- AWS SDKs' retry quota and Finagle's RetryBudget): a bucket of `max_tokens` tokens, full on
-- a new client; every failed attempt that could be retried costs one token, every success
-- gives back `refill` (a tenth of a token), and a retry is allowed only while more than
-- `threshold` (half the bucket) is left. An attempt that moved a download forward
-- (`err.progress`) is progress, not a failure: it costs nothing. With the defaults
-- (max_attempts 5: 10 tokens, threshold 5) one operation on a fresh client gets all its
-- retries, and a run of calls against a server that only fails soon sends one request each.
-- @tparam table policy
-- @tparam[opt] table opts `{ max_tokens =, refill = }`
-- @treturn table the budget
function M.budget(policy, opts)
  opts = opts or {}
  -- more than 2 * (max_attempts - 1) tokens: the first operation's retries all pass the threshold
  local max = math.max(opts.max_tokens or 10, 2 * policy.max_attempts)
  return setmetatable({ max_tokens = max, tokens = max, threshold = max / 2, refill = opts.refill or 0.1 }, Budget)
end

--- Records a success: gives back `refill` tokens.
function Budget:success()
  self.tokens = math.min(self.max_tokens, self.tokens + self.refill)
end

--- Records a failed attempt (one token), unless it made progress.
-- @tparam table err the attempt's error
function Budget:failure(err)
  if err and err.progress then return end
  self.tokens = math.max(0, self.tokens - 1)
end

--- Whether a retry is allowed now.
-- @treturn boolean
function Budget:allows()
  return self.tokens > self.threshold
end

--- Runs an operation's attempts under the policy.
-- `attempt(n)` returns the value, or `nil, err[, final]`; `err.retryable`, `err.reached`
-- (false when the request provably never reached the server) and `err.retry_after` guide
-- the decision; `final` stops at once. Reads retry every retryable failure; a `create`
-- retries only what never reached the server; any other `write` retries all but timeouts
-- (a timed-out write may have been carried out). The budget sees every success and every
-- retryable failure (`err.progress`: an attempt that moved a download forward, free).
-- @tparam table ctx `{ policy, budget, now, sleep, random, create, write, deadline_at, log }`
-- @tparam function attempt
-- @return the value, or nil, err (with `err.gave_up` saying why retries stopped)
function M.run(ctx, attempt)
  local policy = ctx.policy
  local now, sleep = ctx.now or M.now, ctx.sleep or M.sleep
  local n = 0
  while true do
    n = n + 1
    local value, err, final = attempt(n)
    if value ~= nil then
      if ctx.budget then ctx.budget:success() end
      return value
    end
    if final or not err.retryable then return nil, err end
    if ctx.budget then ctx.budget:failure(err) end
    if ctx.create and err.reached ~= false then
      err.gave_up = "not retried: the create request may have reached the server"
      return nil, err
    end
    if ctx.write and err.kind == "timeout" and err.reached ~= false then
      err.gave_up = "not retried: a timed-out write may have been carried out"
      return nil, err
    end
    if n >= policy.max_attempts then
      err.gave_up = "max_attempts reached"
      return nil, err
    end
    local wait = M.delay(policy, n, err.retry_after, ctx.random)
    if ctx.deadline_at and now() + wait > ctx.deadline_at then
      err.gave_up = "operation deadline reached"
      return nil, err
    end
    if ctx.budget and not ctx.budget:allows() then
      err.gave_up = "client retry budget exhausted"
      return nil, err
    end
    if ctx.log then
      ctx.log("info", ("retrying in %.2fs after %s (attempt %d of %d)"):format(
        wait, errors.brief(err), n, policy.max_attempts))
    end
    sleep(wait)
  end
end

return M
