--- One token request in flight per provider. Under `loghaul.run_all` many tasks share one
-- client, and the first of them all find no token at once: without this they would all log in
-- (Yeastar allows 8 live tokens per application and blocks an IP after 5 failed logins; IAM
-- rate-limits token creation). The first caller fetches; the others wait for its answer (the
-- client's sleep: a scheduler timer in a task, `ngx.sleep` in nginx) and share it, failure
-- included. Outside a scheduler there is never a second caller, so nothing ever waits.
-- @module loghaul.auth.single_flight
local M = {}

--- How often a waiting caller looks again (seconds).
M.poll = 0.05

--- Runs `fetch()` unless one is in flight for `owner`, in which case it waits for that one.
-- @tparam table owner the provider (its `client` gives the sleep)
-- @tparam function fetch returns the token, or nil, err (may raise)
-- @return the token, or nil, err
function M.run(owner, fetch)
  local flight = owner._flight
  if flight then
    while not flight.done do owner.client.sleep(M.poll) end
    if flight.raised ~= nil then error(flight.raised, 0) end
    return flight.token, flight.err
  end
  flight = { done = false }
  owner._flight = flight
  local ok, token, err = pcall(fetch)
  owner._flight = nil
  flight.done = true
  if not ok then
    flight.raised = token
    error(token, 0)
  end
  flight.token, flight.err = token, err
  return token, err
end

return M
