std = "max"
max_line_length = 120
files["tests"] = { std = "+busted" }
files["tests/emulator"] = { globals = { "ngx" } }
files["examples/openresty"] = { globals = { "ngx" } }
exclude_files = { "build", ".luarocks", "doc" }
