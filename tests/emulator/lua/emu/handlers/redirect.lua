-- /redirect?to=<url-or-path>[&status=301|302|303|307|308]: a redirect (302 by default).
local json = require "emu.json"

return function()
  ngx.req.discard_body()
  local args = ngx.req.get_uri_args()
  local to = args.to
  if type(to) ~= "string" or to == "" then return json.reply({ error = "to= required" }, 400) end
  local status = tonumber(args.status) or 302
  return ngx.redirect(to, status)
end
