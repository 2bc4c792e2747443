-- /trickle?bytes=N&interval=S[&chunk=K]: N bytes (Content-Length N) sent K at a time
-- (default 1) with S seconds (default 1) between pieces, to trigger low-speed aborts.
return function()
  ngx.req.discard_body()
  local args = ngx.req.get_uri_args()
  local n = math.floor(tonumber(args.bytes) or 10)
  local interval = tonumber(args.interval) or 1
  local piece = math.max(1, math.floor(tonumber(args.chunk) or 1))
  ngx.header["Content-Type"] = "application/octet-stream"
  ngx.header["Content-Length"] = n
  ngx.send_headers()
  ngx.flush(true)
  local sent = 0
  while sent < n do
    local k = math.min(piece, n - sent)
    ngx.print(string.rep("x", k))
    local ok = ngx.flush(true)
    if not ok then return ngx.exit(444) end   -- the client went away
    sent = sent + k
    if sent < n then ngx.sleep(interval) end
  end
  return ngx.exit(ngx.HTTP_OK)
end
