-- /status/<code>[?retry_after=N]: answer that status with a small JSON body.
local json = require "emu.json"

return function()
  ngx.req.discard_body()
  local code = tonumber(ngx.var.uri:match("^/status/(%d%d%d)$"))
  if not code or code < 200 or code > 599 then
    return json.reply({ error = "use /status/<200..599>" }, 400)
  end
  local args = ngx.req.get_uri_args()
  local headers = {}
  if args.retry_after then headers["Retry-After"] = tostring(args.retry_after) end
  if code == 204 or code == 304 then
    ngx.status = code
    for k, v in pairs(headers) do ngx.header[k] = v end
    return ngx.exit(ngx.HTTP_OK)
  end
  return json.reply({ status = code }, code, headers)
end
