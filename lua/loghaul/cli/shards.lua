--- Shards: the K-th of N disjoint parts of an id list, so an existing scheduler (a Kubernetes
-- Indexed Job, GNU parallel, a Slurm array) spreads one list over many machines.
-- An id's shard depends on the id alone (SHA-256 of it, modulo N): adding or removing ids
-- moves none of the others, and every machine computes the same split without talking.
-- @module loghaul.cli.shards
local args = require "loghaul.cli.args"

local M = {}

--- The shard (0 .. n-1) an id belongs to.
-- @tparam string id
-- @tparam number n the number of shards
-- @treturn number
function M.of(id, n)
  local core = require "loghaul.core"
  local d = core.sha256(id)
  -- the first 6 bytes (48 bits): exact in a double, so Lua 5.4 and LuaJIT agree
  local v = 0
  for i = 1, 6 do v = v * 256 + d:byte(i) end
  return v % n
end

--- The ids of shard k of n, in their original order.
-- @tparam table ids
-- @tparam number k 0 .. n-1
-- @tparam number n
-- @treturn table
function M.select(ids, k, n)
  local out = {}
  for _, id in ipairs(ids) do
    if M.of(id, n) == k then out[#out + 1] = id end
  end
  return out
end

local function parse_kn(k, n, flag, text)
  k, n = tonumber(k), tonumber(n)
  if not k or not n or n < 1 or k >= n then
    args.fail("%s: %q must be K/N with N >= 1 and K from 0 to N-1 (as JOB_COMPLETION_INDEX counts)", flag, text)
  end
  return { k = k, n = n }
end

--- Flag parser for `--shard K/N` (K counts from 0).
-- @tparam string text
-- @tparam string flag
-- @treturn table `{ k =, n = }`
function M.flag(text, flag)
  local k, n = text:match("^(%d+)/(%d+)$")
  return parse_kn(k, n, flag, text)
end

--- Flag parser for `--shard-from-env VAR/N`: K is read from the environment variable VAR
-- (Kubernetes Indexed Jobs set JOB_COMPLETION_INDEX).
-- @tparam string text
-- @tparam string flag
-- @treturn table `{ k =, n =, var = }`
function M.env_flag(text, flag)
  local var, n = text:match("^([%a_][%w_]*)/(%d+)$")
  if not var then args.fail("%s: %q must be VAR/N, e.g. JOB_COMPLETION_INDEX/8", flag, text) end
  local k = os.getenv(var)
  if not k or not k:match("^%d+$") then
    args.fail("%s: the environment variable %s is %s, not a shard index", flag, var,
      k and ("%q"):format(k) or "not set")
  end
  local s = parse_kn(k, n, flag, text)
  s.var = var
  return s
end

return M
