-- /echo, any method: what the server received, so specs can check what a client sent.
-- The body is streamed and hashed; only a small body (<= 64 KiB) is returned as text.
local body = require "emu.body"
local crypto = require "emu.crypto"
local json = require "emu.json"

local KEEP = 64 * 1024

return function()
  local h = crypto.new("sha256")
  local kept = {}
  for chunk in body.chunks() do
    h:update(chunk)
    if h.size <= KEEP then kept[#kept + 1] = chunk end
  end
  json.reply {
    method = ngx.req.get_method(),
    uri = ngx.var.request_uri,
    path = ngx.var.uri,
    scheme = ngx.var.scheme,
    http_version = ngx.req.http_version(),
    args = ngx.req.get_uri_args(0),
    headers = ngx.req.get_headers(0),
    body_bytes = h.size,
    body_sha256 = h:hexdigest(),
    body = h.size <= KEEP and table.concat(kept) or nil,
  }
end
