rockspec_format = "3.0"
package = "loghaul"
version = "scm-1"
source = {
  url = "git+https://example.invalid/loghaul.git",
}
description = {
  summary = "Collect logs from vendor HTTP APIs (Huawei CC-CMS and CloudDC, Yeastar, Zenlayer)",
  detailed = [[
loghaul turns four vendor log interfaces into short, safe Lua scripts: a C core on
libcurl and OpenSSL (streamed uploads and downloads, keep-alive, the vendors' request
signers) under a Lua layer with retries, token refresh, resumable downloads and cursor
pagination. Runs on Lua 5.4 and LuaJIT 2.1, including inside OpenResty.
]],
  license = "MIT",
  labels = { "http", "curl", "logs", "huawei", "yeastar", "zenlayer" },
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson",
}
-- Libraries only: Debian keeps curl/curl.h under /usr/include/<multiarch>, which
-- LuaRocks' header search misses, while the compiler finds it by default.
external_dependencies = {
  CURL = { library = "curl" },
  OPENSSL = { library = "crypto" },
}
build = {
  type = "builtin",
  modules = {
    ["loghaul.core"] = {
      sources = {
        "src/clock.c", "src/core.c", "src/crypto.c", "src/curlerr.c", "src/file.c", "src/headers.c", "src/json.c",
        "src/jsonl.c", "src/multi.c", "src/options.c", "src/session.c", "src/sign.c", "src/transfer.c",
      },
      defines = { "_GNU_SOURCE" },
      libraries = { "curl", "crypto", "pthread" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
    },
    -- the Lua modules under lua/ are installed by the builtin backend itself
  },
}
