/// The C core: libcurl sessions (kept-alive connections, multipart uploads streamed from
// files, downloads streamed to files with Range resume, progress callbacks), the three vendor
// request signers, and SHA-256/HMAC/hex/base64 from OpenSSL.
//
// Doc-only: `make doc` writes this header followed by `src/*.c` into `build/doc/loghaul.core.c`,
// the file LDoc reads, so the `///` comments of the C sources appear as this one module.
//
//     local core = require "loghaul.core"
//     local s = core.session{ timeout = 60, ca_file = "ca.pem" }
//     local res, err = s:request{ url = "https://example.com/x.tar.gz", output = "x.tar.gz.part" }
//     -- res = { status =, headers = { lower-cased }, body = (nil when output), bytes =, url =, reused = }
//     -- err = { kind = "network"|"timeout"|"tls"|"io"|"invalid"|"aborted"|"http", code = "CURLE_...", message = }
//
// Failures met at run time return `nil, err`; programming errors (a wrong argument type) raise.
// @module loghaul.core
