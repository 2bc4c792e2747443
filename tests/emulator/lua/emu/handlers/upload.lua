-- POST /upload: a multipart/form-data receiver. Each part is written to
-- <dir>/uploads/<n>-<i>-<safe name> while it is hashed, in constant memory.
local body = require "emu.body"
local config = require "emu.config"
local crypto = require "emu.crypto"
local json = require "emu.json"
local multipart = require "emu.multipart"

local VALUE_MAX = 64 * 1024   -- a small field's value is echoed back as text

local M = {}

local function safe(name)
  name = (name or "field"):gsub("[^%w%._%-]", "_"):sub(1, 100)
  if name == "" or name:match("^%.+$") then name = "_" end
  return name
end

--- Receive the current request's multipart body into <dir>/uploads. Returns the parts list
-- or nil, err. Reused by the Huawei CC-CMS endpoint.
function M.receive()
  local boundary = multipart.boundary(ngx.var.content_type)
  if not boundary then return nil, "Content-Type is not multipart/form-data with a boundary" end
  local dir = config.uploads_dir
  local seq = ngx.shared.emu:incr("upload_seq", 1, 0)
  local parts = {}
  local p = multipart.new(boundary, {
    part_begin = function(part)
      part.hash = crypto.new("sha256")
      part.index = #parts + 1
      part.path = string.format("%s/%d-%d-%s", dir, seq, part.index, safe(part.filename or part.name))
      part.file = assert(io.open(part.path, "wb"))
      part.kept = {}
      parts[#parts + 1] = part
    end,
    part_data = function(part, s)
      part.hash:update(s)
      assert(part.file:write(s))
      if part.hash.size <= VALUE_MAX then part.kept[#part.kept + 1] = s end
    end,
    part_end = function(part)
      part.file:close()
      part.file = nil
    end,
  })
  local ok, err = pcall(function()
    for chunk in body.chunks() do p:feed(chunk) end
  end)
  for _, part in ipairs(parts) do
    if part.file then part.file:close() end
  end
  if not ok then return nil, err end
  local done, perr = p:finish()
  if not done then return nil, perr end
  local out = {}
  for i, part in ipairs(parts) do
    local size = part.hash.size
    out[i] = {
      name = part.name, filename = part.filename, content_type = part.content_type,
      size = size, sha256 = part.hash:hexdigest(), path = part.path,
      headers = part.headers,
      value = (not part.filename and size <= VALUE_MAX) and table.concat(part.kept) or nil,
    }
  end
  return out
end

function M.handle()
  if ngx.req.get_method() ~= "POST" then
    ngx.req.discard_body()
    return json.reply({ error = "POST a multipart/form-data body" }, 405, { Allow = "POST" })
  end
  local parts, err = M.receive()
  if not parts then return json.reply({ error = err }, 400) end
  return json.reply { parts = #parts > 0 and parts or json.empty_array, headers = ngx.req.get_headers(0) }
end

return M
