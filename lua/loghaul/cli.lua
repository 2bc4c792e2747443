--- The `loghaul` command (bin/loghaul runs `main`): every vendor chain from a shell or a
-- crontab, over the public API only.
--
--   loghaul cms upload FILE... [--file-type 0]
--   loghaul clouddc export SERVER_ID... | --servers-from FILE --dest DIR [--poll 5s]
--   loghaul yeastar list [--order desc] [--json]
--   loghaul yeastar download DAY... | --last 7d --dest DIR
--   loghaul zenlayer logs --since 7d [--until now] [--output FILE.jsonl|-] [--resume STATE]
--   loghaul emulator start|stop
--
-- Exit codes: 0 all done, 1 an operation failed, 2 bad usage (flags, times, settings),
-- 3 partial (some ids failed; each is listed), 130 interrupted (Ctrl-C).
-- @module loghaul.cli
local args = require "loghaul.cli.args"
local many = require "loghaul.cli.many"
local profiles = require "loghaul.cli.profiles"
local progress = require "loghaul.cli.progress"
local shards = require "loghaul.cli.shards"

local M = {}

M.EXIT_OK, M.EXIT_FAILED, M.EXIT_USAGE, M.EXIT_PARTIAL = 0, 1, 2, 3

--- The vendors and their actions, in the order --help lists them.
M.groups = { "cms", "clouddc", "yeastar", "zenlayer", "emulator" }

local function group(name)
  return require("loghaul.cli." .. name)
end

--- Flags every action takes.
M.common_flags = {
  help = { short = "h", help = "show this help" },
  quiet = { short = "q", help = "print nothing but results and errors" },
  progress = { help = "draw the progress line on stderr even when it is not a terminal" },
  verbose = { short = "v", help = "also print the library's informational messages" },
  profile = { value = "NAME", help = "take settings from [NAME] of the profiles file (its values win)" },
  config = { value = "FILE", help = "the profiles file (default $LOGHAUL_CONFIG or ~/.config/loghaul/config)" },
}

--- Flags of the actions that run over a list of ids.
M.id_flags = {
  json = { help = "print one JSON object per id on stdout (JSON Lines)" },
  shard = { value = "K/N", parse = shards.flag,
            help = "run only part K of N (K from 0) of the ids: a stable hash of each id picks its part" },
  ["shard-from-env"] = { value = "VAR/N", parse = shards.env_flag,
                         help = "as --shard, K read from $VAR (Kubernetes: JOB_COMPLETION_INDEX/N)" },
  ["dry-run"] = { help = "print the ids this run would take (after --shard) and stop" },
  concurrency = { value = "N", parse = args.positive_integer,
                  help = "ids at once (default 16)" },
}

local function version_text()
  local loghaul = require "loghaul"
  local rt = rawget(_G, "jit") and rawget(_G, "jit").version or _VERSION
  local ok, core = pcall(require, "loghaul.core")
  local curl = ok and type(core.curl_version) == "string" and ("; libcurl " .. core.curl_version) or ""
  return ("loghaul %s (%s%s)"):format(loghaul.version, rt, curl)
end

local function top_help()
  local lines = {
    "usage: loghaul VENDOR ACTION [flags]     (loghaul VENDOR ACTION --help for each)",
    "",
  }
  for _, g in ipairs(M.groups) do
    local mod = group(g)
    for _, a in ipairs(mod.order) do
      lines[#lines + 1] = ("  %-62s %s"):format(mod.actions[a].usage, "")
    end
  end
  for i, l in ipairs(lines) do lines[i] = l:gsub("%s+$", "") end
  lines[#lines + 1] = [[

Settings come from LOGHAUL_* environment variables (LOGHAUL_CMS_URL, LOGHAUL_CLOUDDC_URL, ...)
or from a profiles file (~/.config/loghaul/config, mode 0600, [default] or --profile NAME),
never from arguments. Times: now, 7d, 12h, 30m, 45s (before now) or ISO 8601.
Results go to stdout, messages and progress to stderr.
Exit codes: 0 all done, 1 an operation failed, 2 bad usage, 3 some ids failed, 130 interrupted.
  --version    print the version
  --help, -h   this help]]
  return table.concat(lines, "\n")
end

local function action_help(action, flags)
  local text = "usage: " .. action.usage .. "\n\n" .. action.help .. "\n\nflags:\n" .. args.describe(flags)
  if action.settings then text = text .. "\n\nsettings (environment or profile): " .. action.settings end
  return text
end

-- the context an action runs with: output, settings, clients' common options
local Ctx = {}
Ctx.__index = Ctx

--- Prints a message on stderr unless --quiet.
function Ctx:say(fmt, ...)
  if not self.quiet then self.ui:message("loghaul: " .. fmt:format(...)) end
end

--- Prints an error on stderr (always).
function Ctx:error(fmt, ...)
  self.ui:message("loghaul: " .. fmt:format(...))
end

--- A setting (`CMS_URL` is `LOGHAUL_CMS_URL` or `cms_url` in the profile), nil when unset.
function Ctx:setting(name)
  if not self.get then
    self.get = profiles.open{ profile = self.flags.profile, config = self.flags.config, getenv = self.getenv,
                              warn = function(m) self:say("%s", m) end }
  end
  return self.get(name)
end

--- A required setting: missing is a usage error that says where to set it.
function Ctx:need(name)
  local v = self:setting(name)
  if not v then
    args.fail("%s: LOGHAUL_%s is not set (set it in the environment, or %s = ... in a profile of %s)",
      self.where, name, name:lower(), profiles.default_path(self.getenv) or "~/.config/loghaul/config")
  end
  return v
end

--- The options every client gets: CA file, progress, log.
function Ctx:client_options(t)
  t = t or {}
  t.ca_file = self:setting("CA_FILE")
  t.on_progress = self.ui.enabled and self.ui:callback() or nil
  t.log = function(level, message)
    if level == "error" or (level == "warn" and not self.quiet) or self.verbose then
      self.ui:message("loghaul " .. level .. ": " .. message)
    end
  end
  return t
end

--- The token cache file of a vendor's logins (`~/.cache/loghaul/<name>-tokens.json`; the
-- library keeps one entry per endpoint and user in it, locked, 0600), or nil when the cache
-- folder cannot be used safely (then every run logs in again).
function Ctx:token_cache(name)
  local dir, why = profiles.cache_dir(self.getenv)
  if not dir then
    self:say("tokens are not cached: %s", why)
    return nil
  end
  return dir .. "/" .. name .. "-tokens.json"
end

--- Calls a client constructor; a constructor that raises on our settings is a usage error,
-- and a library without `token_cache` (in `where`: the options or their `auth`) gets the
-- option removed (said once).
function Ctx:construct(ctor, opts, where)
  where = where or opts
  local ok, c = pcall(ctor, opts)
  if not ok and where.token_cache and tostring(c):find("token_cache", 1, true) then
    where.token_cache = nil
    self:say("this loghaul has no token_cache: every run logs in again")
    ok, c = pcall(ctor, opts)
  end
  if not ok then args.fail("%s: %s", self.where, tostring(c)) end
  return c
end

-- ids: positional words plus what the action reads (files), unique, then the shard
local function collect_ids(ctx, action, a)
  local ids, seen = {}, {}
  local function add(id)
    if not seen[id] then seen[id] = true ids[#ids + 1] = id end
  end
  for _, w in ipairs(a.positional) do add(w) end
  if action.more_ids then
    for _, id in ipairs(action.more_ids(ctx, a)) do add(id) end
  end
  if #ids == 0 then args.fail("%s: %s", ctx.where, action.no_ids) end
  if a.shard and a["shard-from-env"] then args.fail("--shard and --shard-from-env: give one of them") end
  local s = a.shard or a["shard-from-env"]
  if s then ids = shards.select(ids, s.k, s.n) end
  return ids
end

local function run_ids(ctx, action, a)
  local cjson = require "cjson"
  local ids = collect_ids(ctx, action, a)
  if a["dry-run"] then
    for _, id in ipairs(ids) do ctx.out:write(id, "\n") end
    return M.EXIT_OK
  end
  if #ids == 0 then
    ctx:say("no ids in this shard: nothing to do")
    return M.EXIT_OK
  end
  local op, close = action.prepare(ctx, a, ids)
  local results = many.run(ids, op, {
    ui = ctx.ui, concurrency = a.concurrency,
    on_result = function(id, ok, v)
      if ok then
        if a.json then
          local t = action.record(id, v)
          t.id, t.ok = id, true
          ctx.out:write(cjson.encode(t), "\n")
        else
          ctx.out:write(action.line(id, v), "\n")
        end
        ctx.out:flush()
      else
        ctx:error("%s failed: %s", id, many.describe(v))
        if a.json then
          ctx.out:write(cjson.encode{ id = id, ok = false, error = many.error_table(v) }, "\n")
          ctx.out:flush()
        end
      end
    end,
  })
  if close then pcall(close) end
  local code, failed = many.exit_code(results)
  if code == M.EXIT_PARTIAL or (#results > 1 and code ~= M.EXIT_OK) then
    local list = {}
    for _, r in ipairs(failed) do
      list[#list + 1] = r.id .. (type(r.err) == "table" and r.err.code and (" (" .. tostring(r.err.code) .. ")") or "")
    end
    ctx:error("%d of %d done; failed: %s", #results - #failed, #results, table.concat(list, ", "))
  elseif #results > 1 then
    ctx:say("%d of %d done", #results, #results)
  end
  return code
end

-- the checkout this file lives in (lua/loghaul/cli.lua), or nil when installed elsewhere
local function checkout_root()
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) ~= "@" then return nil end
  local dir = src:sub(2):match("^(.*)/lua/loghaul/cli%.lua$")
  if not dir then return nil end
  if dir == "" then dir = "/" end
  local f = io.open(dir .. "/tests/emulator/emulator", "rb")
  if not f then return nil end
  f:close()
  return dir
end

-- leading common flags (`loghaul --profile prod clouddc export ...`) move after the action
local function split_leading(argv)
  local pre, i = {}, 1
  while argv[i] and argv[i]:sub(1, 1) == "-" do
    local w = argv[i]
    if w == "--version" or w == "-V" or w == "--help" or w == "-h" then return pre, i, w end
    local name = w:match("^%-%-([^=]+)") or ""
    local f = M.common_flags[name]
    if not f then
      args.fail("unknown flag %s before the vendor (usage: loghaul VENDOR ACTION [flags]; see loghaul --help)", w)
    end
    pre[#pre + 1] = w
    if f.value and not w:find("=", 1, true) then
      i = i + 1
      if not argv[i] then args.fail("flag %s needs a value (%s)", w, f.value) end
      pre[#pre + 1] = argv[i]
    end
    i = i + 1
  end
  return pre, i
end

local function dispatch(argv, env)
  local out, err = env.stdout or io.stdout, env.stderr or io.stderr
  local pre, i, special = split_leading(argv)
  if special == "--version" or special == "-V" then
    out:write(version_text(), "\n")
    return M.EXIT_OK
  end
  local gname = argv[i]
  if gname == "help" then special = "--help" end
  if special or gname == nil then
    local to = special and out or err
    to:write(top_help(), "\n")
    return special and M.EXIT_OK or M.EXIT_USAGE
  end
  local known = {}
  for _, g in ipairs(M.groups) do known[g] = true end
  if not known[gname] then
    args.fail("unknown vendor %q (one of: %s; see loghaul --help)", gname, table.concat(M.groups, ", "))
  end
  local mod = group(gname)
  local aname = argv[i + 1]
  if aname == nil or aname == "--help" or aname == "-h" then
    local lines = {}
    for _, a in ipairs(mod.order) do lines[#lines + 1] = "usage: " .. mod.actions[a].usage end
    local to = aname and out or err
    to:write(table.concat(lines, "\n"), "\n")
    return aname and M.EXIT_OK or M.EXIT_USAGE
  end
  local action = mod.actions[aname]
  if not action then
    args.fail("unknown action %q for loghaul %s (one of: %s)", aname, gname, table.concat(mod.order, ", "))
  end
  local where = "loghaul " .. gname .. " " .. aname
  local flags = args.merge(M.common_flags, action.ids and M.id_flags or {}, action.flags or {})
  local words = {}
  for _, w in ipairs(pre) do words[#words + 1] = w end
  for j = i + 2, #argv do words[#words + 1] = argv[j] end
  local a = args.parse(words, flags, where)
  if a.help then
    out:write(action_help(action, flags), "\n")
    return M.EXIT_OK
  end
  local quiet = a.quiet and true or false
  local ui = progress.new{ enabled = not quiet and (a.progress or progress.stderr_is_tty()), out = err }
  local ctx = setmetatable({ out = out, err = err, ui = ui, quiet = quiet, verbose = a.verbose,
                             flags = a, where = where, getenv = env.getenv or os.getenv,
                             now = env.now or os.time, root = env.root or checkout_root() }, Ctx)
  local code
  if action.ids then
    code = run_ids(ctx, action, a)
  else
    if #a.positional > (action.max_positional or 0) then
      args.fail("%s: unexpected argument %q (see %s --help)", where, a.positional[(action.max_positional or 0) + 1],
        where)
    end
    code = action.run(ctx, a)
  end
  ui:clear()
  return code
end

--- Runs the command line and returns its exit code (never raises).
-- @tparam table argv the arguments (arg of the script)
-- @tparam[opt] table env `{ stdout =, stderr =, getenv =, now = }` (for tests)
-- @treturn number the exit code
function M.main(argv, env)
  env = env or {}
  local list = {}
  for i = 1, #(argv or {}) do list[i] = argv[i] end
  local ok, code = xpcall(dispatch, function(e)
    if args.is_usage(e) then return e end
    return { internal = true, message = tostring(e), trace = debug.traceback("", 2) }
  end, list, env)
  if ok then return code end
  local err = env.stderr or io.stderr
  if args.is_usage(code) then
    err:write("\rloghaul: ", code.message, "\n")
    return code.exit or M.EXIT_USAGE
  end
  if code.message:find("interrupted!", 1, true) then   -- Ctrl-C: the shell's convention, 128 + SIGINT
    err:write("\rloghaul: interrupted\n")
    return 130
  end
  err:write("\rloghaul: internal error: ", code.message, code.trace, "\n")
  return M.EXIT_FAILED
end

return M
