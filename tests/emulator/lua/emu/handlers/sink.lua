-- POST /sink: reads the request body and throws it away, answering { bytes = N }.
-- For upload benchmarks: /upload parses, hashes and writes every part to disk, which
-- caps every client at the server's pace; the sink measures the client.
local body = require "emu.body"
local json = require "emu.json"

return function()
  local n = 0
  for piece in body.chunks(1024 * 1024) do n = n + #piece end
  json.reply({ bytes = n }, 200)
end
