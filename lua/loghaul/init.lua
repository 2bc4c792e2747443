--- loghaul: collect logs from vendor HTTP APIs (Huawei CC-CMS and CloudDC, Yeastar P-Series,
-- Zenlayer ZLS). The vendor modules load on first use.
-- @module loghaul
local M = {}

--- The version of this module.
M.version = "0.1.0"

--- The error module (`loghaul.errors`): error objects, `errors.is`, `errors.redact`.
M.errors = require "loghaul.errors"

--- Runs many tasks at once (see `loghaul.run_all.run_all`): `loghaul.run_all(tasks, { concurrency = 16,
-- on_result = function(i, ok, value_or_err) end })` returns, in task order, `{ ok = true, value = }`
-- or `{ ok = false, err = }`.
-- @function run_all
M.run_all = require("loghaul.run_all").run_all

--- A Huawei CC-CMS client (see `loghaul.cms.new`).
-- @tparam table opts
-- @treturn table
function M.cms(opts) return require("loghaul.cms").new(opts) end

--- A Huawei Cloud CloudDC client (see `loghaul.clouddc.new`).
-- @tparam table opts
-- @treturn table
function M.clouddc(opts) return require("loghaul.clouddc").new(opts) end

--- A Yeastar P-Series client (see `loghaul.yeastar.new`).
-- @tparam table opts
-- @treturn table
function M.yeastar(opts) return require("loghaul.yeastar").new(opts) end

--- A Zenlayer ZLS client (see `loghaul.zenlayer.new`).
-- @tparam table opts
-- @treturn table
function M.zenlayer(opts) return require("loghaul.zenlayer").new(opts) end

return M
