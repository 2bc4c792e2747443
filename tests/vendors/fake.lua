-- Test doubles for the vendor specs: a fake core session that records requests and plays
-- scripted answers (writing `output` files like the real core), and an instant clock.
local shell = require "helpers.shell"

local M = {}

local write_file = shell.write_file

--- A fake session. `script` is a list; each entry is a response table, a function(req) → res | nil, err,
-- or `{ err = { kind =, code =, message = } }`. Response fields: status, headers, body, file (bytes the
-- server sends for a 2xx with output), cut (write only this many bytes then fail with a network error).
function M.session(script)
  local s = { requests = {}, closed = false }
  local i = 0
  function s:request(req)
    assert(type(req.url) == "string", "url")
    i = i + 1
    local copy = {}
    for k, v in pairs(req) do copy[k] = v end
    local h = {}
    for k, v in pairs(req.headers or {}) do h[k] = v end
    copy.headers = h
    self.requests[#self.requests + 1] = copy
    local entry = script[i] or script.default
    if entry == nil then error("fake session: no answer scripted for request " .. i .. " " .. req.url) end
    if type(entry) == "function" then return entry(req, i) end
    if entry.err then return nil, entry.err end
    local res = { status = entry.status or 200, headers = {}, url = req.url, reused = i > 1 }
    for k, v in pairs(entry.headers or {}) do res.headers[k:lower()] = v end
    local ok2xx = res.status >= 200 and res.status < 300
    if req.output and ok2xx then
      local data = entry.file or entry.body or ""
      local append = req.resume_from and req.resume_from > 0 and res.status == 206
      if entry.cut then
        write_file(req.output, data:sub(1, entry.cut), append)
        -- like the real core: a cut answer's status, headers and bytes come with the error
        return nil, { kind = "network", code = "CURLE_PARTIAL_FILE", message = "transfer closed with bytes remaining",
                      status = res.status, headers = res.headers, bytes = entry.cut }
      end
      write_file(req.output, data, append)
      res.bytes = #data
    else
      res.body = entry.body
      res.bytes = entry.body and #entry.body or 0
    end
    return res
  end
  function s:close() self.closed = true end
  return s
end

--- An instant clock: now() returns t; sleep(s) records s and advances t.
function M.clock(t0)
  local c = { t = t0 or 1700000000, sleeps = {} }
  c.now = function() return c.t end
  c.sleep = function(s) c.sleeps[#c.sleeps + 1] = s; c.t = c.t + s end
  return c
end

--- Common options for a client under test.
function M.opts(extra, script, clock)
  clock = clock or M.clock()
  local o = { _session = M.session(script or {}), now = clock.now, _sleep = clock.sleep,
              _random = function() return 0.5 end, log = false }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o, o._session, clock
end

function M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. p))
  return p
end

--- A file's content, or nil.
M.read = shell.read_file

function M.ls(dir)
  local p = io.popen("ls -A " .. dir)
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

function M.json(s) return require("cjson").decode(s) end

return M
