--- `loghaul cms upload FILE...`: Huawei CC-CMS client log uploads.
-- @module loghaul.cli.cms
local args = require "loghaul.cli.args"

local M = { order = { "upload" }, actions = {} }

M.actions.upload = {
  usage = "loghaul cms upload FILE... [--file-type 0]",
  help = "Uploads each client log archive (uploadClientLog, multipart, auth-v2 signed).\n"
    .. "Prints FILE <tab> uploaded <tab> status for each, or one JSON object each with --json.",
  settings = "LOGHAUL_CMS_URL, LOGHAUL_CMS_AK, LOGHAUL_CMS_SK, LOGHAUL_CA_FILE",
  ids = true,
  no_ids = "give the FILE(s) to upload",
  flags = {
    ["file-type"] = { value = "N", help = "the FileType header (default 0, the only value defined)",
                      parse = function(text, flag)
                        if not text:match("^%d+$") then args.fail("%s: %q is not a whole number", flag, text) end
                        return tonumber(text)
                      end },
  },
  prepare = function(ctx, a)
    local loghaul = require "loghaul"
    local cms = ctx:construct(loghaul.cms, ctx:client_options{
      base_url = ctx:need("CMS_URL"), access_key = ctx:need("CMS_AK"), secret_key = ctx:need("CMS_SK") })
    return function(file)
      return cms:upload_client_log(file, { file_type = a["file-type"] or 0 })
    end
  end,
  line = function(file, res) return ("%s\tuploaded\tstatus %s"):format(file, tostring(res.status)) end,
  record = function(_, res) return { status = res.status and tostring(res.status) or nil } end,
}

return M
