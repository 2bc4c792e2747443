-- Anything no endpoint claims: a JSON 404 (never a file from the working folder).
local json = require "emu.json"

return function()
  ngx.req.discard_body()
  return json.reply({ error = "no such endpoint", path = ngx.var.uri }, 404)
end
