-- /slow?delay=S: wait S seconds (without blocking the worker), then answer.
local json = require "emu.json"

return function()
  ngx.req.discard_body()
  local delay = tonumber(ngx.req.get_uri_args().delay) or 1
  ngx.sleep(delay)
  return json.reply { slept = delay }
end
