-- Where this emulator instance keeps its files. Set once in init_by_lua (master),
-- inherited by the workers through fork.
local M = {}

function M.init(opts)
  M.dir = assert(opts.dir, "emu.config.init: dir required")
  M.files_dir = M.dir .. "/www/files"   -- served by nginx at /files/ (root is <dir>/www)
  M.uploads_dir = M.dir .. "/uploads"   -- where POST /upload writes each part
end

return M
