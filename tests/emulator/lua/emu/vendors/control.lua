-- /_emu/vendors: the vendor endpoints' control (never counted, never faulted).
--   GET    state: per-vendor counters, CC-CMS uploads received (cms.received), live Yeastar tokens, settings
--   POST   settings JSON { vendor = { key = value } } merged in (null restores a default);
--          { "reset": true } first forgets everything (like DELETE)
--   DELETE forget settings, counters, tokens, exports and issued cursors
local archive = require "emu.vendors.archive"
local common = require "emu.vendors.common"
local json = require "emu.json"
local rate = require "emu.vendors.rate"

return function()
  local method = ngx.req.get_method()
  if method == "GET" then
    return json.reply(rate.into(archive.into(common.state())))
  elseif method == "DELETE" then
    ngx.req.discard_body()
    common.reset()
    return json.reply { ok = true }
  elseif method == "POST" then
    local body = common.body()
    local v = body ~= "" and json.decode(body) or {}
    if type(v) ~= "table" then return json.reply({ error = "settings must be a JSON object" }, 400) end
    if v.reset then common.reset() end
    v.reset = nil
    local ok, err = common.configure(v)
    if not ok then return json.reply({ error = err }, 400) end
    return json.reply { ok = true, settings = common.state().settings }
  end
  ngx.req.discard_body()
  return json.reply({ error = "GET, POST or DELETE" }, 405)
end
