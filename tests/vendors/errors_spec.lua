local errors = require "loghaul.errors"

describe("loghaul.errors", function()
  it("renders kind, code, status, request id and attempts", function()
    local e = errors.new{ kind = "api", code = "APIG.0308", status = 429, message = "throttled",
                          request_id = "req-1", vendor = "clouddc", operation = "ExportServerLogs",
                          retryable = true, attempts = 3, history = { "HTTP 429", "HTTP 429", "HTTP 429" } }
    local s = tostring(e)
    assert.matches("clouddc ExportServerLogs: api APIG.0308 %(HTTP 429%): throttled", s)
    assert.matches("req%-1", s)
    assert.matches("after 3 attempts", s)
    assert.is_true(errors.is(e))
    assert.is_false(errors.is({}))
  end)

  it("redacts access_token values, JSON secrets and literal secrets", function()
    local s = errors.redact('GET https://pbx/openapi/v1.0/x?files=1&access_token=abcDEF123 '
      .. '{"password":"hunter22","refresh_token":"rt-999"} key=SUPERSECRETKEY', { "SUPERSECRETKEY" })
    assert.not_matches("abcDEF123", s)
    assert.not_matches("hunter22", s)
    assert.not_matches("rt%-999", s)
    assert.not_matches("SUPERSECRETKEY", s)
    assert.matches("access_token=%*%*%*", s)
  end)

  it("never shows a token in tostring even when a message carries one", function()
    local e = errors.new{ kind = "http", message = "url /api/download/x.tar?access_token=tok123456" }
    assert.not_matches("tok123456", tostring(e))
    assert.not_matches("tok123456", e.message)
  end)

  it("maps core errors and knows which never reached the server", function()
    local e = errors.from_core{ kind = "network", code = "CURLE_COULDNT_CONNECT", message = "refused" }
    assert.equal("network", e.kind)
    assert.is_true(e.retryable)
    assert.is_false(e.reached)
    local t = errors.from_core{ kind = "timeout", code = "CURLE_OPERATION_TIMEDOUT", message = "slow" }
    assert.equal("timeout", t.kind)
    assert.is_true(t.retryable)
    assert.is_true(t.reached)
    -- request_sent (CURLINFO_REQUEST_SIZE) settles it either way
    local ct = errors.from_core{ kind = "timeout", code = "CURLE_OPERATION_TIMEDOUT", message = "connect",
                                 request_sent = false }
    assert.is_false(ct.reached)
    local sent = errors.from_core{ kind = "network", code = "CURLE_COULDNT_CONNECT", message = "odd",
                                   request_sent = true }
    assert.is_true(sent.reached)
    local tls = errors.from_core{ kind = "tls", code = "CURLE_PEER_FAILED_VERIFICATION", message = "bad cert" }
    assert.equal("tls", tls.kind)
    assert.is_false(tls.retryable)
  end)
end)
