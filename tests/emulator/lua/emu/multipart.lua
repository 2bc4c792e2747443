-- Streaming multipart/form-data parser (RFC 7578). lua-resty-upload is not in Debian,
-- and the 1 GiB upload benchmark needs constant memory: the parser is fed chunks and
-- calls back with each part's headers and body pieces, keeping between feeds only a tail
-- that could begin a delimiter (less than one delimiter's length).
-- The vendor emulator reuses it (Huawei CC-CMS uploads).
--
--   local p = multipart.new(boundary, {
--     part_begin = function(part) end,
--       -- part = { headers = { lower-name = value }, name =, filename =, content_type = }
--     part_data  = function(part, s) end,
--     part_end   = function(part) end,
--   })
--   p:feed(chunk) ... ; local ok, err = p:finish()
local M = {}

local find, sub = string.find, string.sub

--- Boundary from a Content-Type header value, or nil.
function M.boundary(content_type)
  if not content_type or not content_type:lower():find("^%s*multipart/") then return nil end
  local b = content_type:match('[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]%s*=%s*"([^"]+)"')
         or content_type:match("[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]%s*=%s*([^%s;]+)")
  return b
end

-- Content-Disposition parameters: name="x"; filename="y" (quoted or token).
-- Browsers percent-encode quotes in file names, so a quoted value ends at the next quote.
local function disposition(v)
  local r = {}
  for k, q in v:gmatch('([%w%*]+)%s*=%s*"([^"]*)"') do r[k:lower()] = q end
  for k, t in v:gsub('"[^"]*"', '""'):gmatch('([%w%*]+)%s*=%s*([^";%s][^;%s]*)') do
    k = k:lower()
    if r[k] == nil then r[k] = t end
  end
  return r
end

local function parse_headers(block)
  local h = {}
  for line in (block .. "\r\n"):gmatch("(.-)\r\n") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then h[k:lower()] = v end
  end
  local part = { headers = h, content_type = h["content-type"] }
  if h["content-disposition"] then
    local d = disposition(h["content-disposition"])
    part.name, part.filename = d.name, d.filename
  end
  return part
end

local Parser = {}
Parser.__index = Parser

function M.new(boundary, cb)
  assert(type(boundary) == "string" and #boundary > 0, "multipart boundary required")
  return setmetatable({
    cb = cb or {},
    first = "--" .. boundary,          -- the first delimiter may start the body (no CRLF)
    delim = "\r\n--" .. boundary,      -- every later one follows the part's CRLF
    buf = "\r\n",                      -- so the first delimiter also matches `delim`
    state = "preamble",
    part = nil,
    parts = 0,
  }, Parser)
end

local MAX_HEADERS = 16 * 1024

-- Length of the longest suffix of s that is a proper prefix of delim (delim starts with \r).
local function tail_len(s, delim)
  local n = #s
  local pos = find(s, "\r", math.max(1, n - #delim + 2), true)
  while pos do
    if sub(s, pos) == sub(delim, 1, n - pos + 1) then return n - pos + 1 end
    pos = find(s, "\r", pos + 1, true)
  end
  return 0
end

-- Run the state machine on self.buf as far as it goes; return when it needs more bytes.
function Parser:step()
  local buf, delim = self.buf, self.delim
  while true do
    local st = self.state
    if st == "preamble" then
      local i = find(buf, delim, 1, true)
      if not i then
        if #buf >= #delim then buf = sub(buf, -(#delim - 1)) end
        break
      end
      buf = sub(buf, i + #delim)
      self.state = "after_delim"
    elseif st == "after_delim" then
      if #buf < 2 then break end
      local two = sub(buf, 1, 2)
      if two == "--" then
        self.state = "done"; buf = ""
        break
      end
      -- transport padding (spaces/tabs) may follow the boundary before its CRLF
      local e = find(buf, "\r\n", 1, true)
      if not e then
        if #buf > 1024 then self.err = "malformed boundary line"; break end
        break
      end
      buf = sub(buf, e + 2)
      self.state = "headers"
    elseif st == "headers" then
      local e = find(buf, "\r\n\r\n", 1, true)
      local block
      if sub(buf, 1, 2) == "\r\n" then          -- a part without headers
        block, buf = "", sub(buf, 3)
      elseif e then
        block, buf = sub(buf, 1, e - 1), sub(buf, e + 4)
      else
        if #buf > MAX_HEADERS then self.err = "part headers too long"; break end
        break
      end
      self.part = parse_headers(block)
      self.parts = self.parts + 1
      if self.cb.part_begin then self.cb.part_begin(self.part) end
      self.state = "body"
    elseif st == "body" then
      local i = find(buf, delim, 1, true)
      if i then
        if i > 1 and self.cb.part_data then self.cb.part_data(self.part, sub(buf, 1, i - 1)) end
        if self.cb.part_end then self.cb.part_end(self.part) end
        self.part = nil
        buf = sub(buf, i + #delim)
        self.state = "after_delim"
      else
        -- keep only a tail that could start a delimiter split across feeds (usually none,
        -- and then the data is passed on without a copy)
        local keep = tail_len(buf, delim)
        if #buf > keep and self.cb.part_data then
          self.cb.part_data(self.part, keep == 0 and buf or sub(buf, 1, #buf - keep))
        end
        buf = keep == 0 and "" or sub(buf, -keep)
        break
      end
    else -- done: ignore the epilogue
      buf = ""
      break
    end
  end
  self.buf = buf
end

--- Feed the next chunk of the body.
function Parser:feed(chunk)
  if self.err or self.state == "done" or #chunk == 0 then return end
  -- Fast path for the bulk of a big part: nothing pending and no delimiter in this chunk,
  -- so the chunk goes to part_data as it is (no concatenation, usually no copy).
  if self.state == "body" and self.buf == "" and not find(chunk, self.delim, 1, true) then
    local keep = tail_len(chunk, self.delim)
    if #chunk > keep and self.cb.part_data then
      self.cb.part_data(self.part, keep == 0 and chunk or sub(chunk, 1, #chunk - keep))
    end
    if keep > 0 then self.buf = sub(chunk, -keep) end
    return
  end
  self.buf = (#self.buf > 0) and (self.buf .. chunk) or chunk
  self:step()
end

--- End of body: true when the closing delimiter was seen, else nil, err.
function Parser:finish()
  if self.err then return nil, self.err end
  if self.state ~= "done" then
    return nil, "multipart body ended in state " .. self.state .. " (no closing boundary)"
  end
  return true
end

return M
