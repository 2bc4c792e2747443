# loghaul: build the C core for Lua 5.4 and LuaJIT, run the specs, the demo, the sanitizers.
# `make test` and `make demo` install missing Debian packages first (make deps).

SHELL   := /bin/bash
CC      ?= cc
SRCS    := $(wildcard src/*.c)
HDRS    := $(wildcard src/*.h)
WARN    := -std=c99 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wpointer-arith
OPT     ?= -O2 -g
# Recursive (=) so pkg-config runs only when a recipe needs it, after `make deps`.
DEPCFLAGS = $(shell pkg-config --cflags libcurl libcrypto)
DEPLIBS   = $(shell pkg-config --libs libcurl libcrypto) -lpthread
LUA54_CFLAGS  = $(shell pkg-config --cflags lua5.4)
LUAJIT_CFLAGS = $(shell pkg-config --cflags luajit)

CORE54  := build/lua5.4/loghaul/core.so
COREJIT := build/luajit/loghaul/core.so

# The Debian packages the build, tests, demo and benchmarks need (DEVELOPERS.md explains each).
DEB_PACKAGES := lua5.4 liblua5.4-dev lua-cjson luarocks lua-busted lua-check lua-ldoc \
  lua-socket lua-sec lua-http lua-luaossl luajit2 libluajit2-5.1-dev libcurl4-openssl-dev libssl-dev curl \
  openssl nginx libnginx-mod-http-lua clang libclang-rt-14-dev valgrind time pkg-config make \
  iproute2 procps lua-markdown ca-certificates gcc libc6-dev

BUSTED    := /usr/bin/busted
LUA_ENV54  = LUA_PATH='lua/?.lua;lua/?/init.lua;tests/?.lua;;' LUA_CPATH='build/lua5.4/?.so;;'
LUA_ENVJIT = LUA_PATH='lua/?.lua;lua/?/init.lua;tests/?.lua;;' LUA_CPATH='build/luajit/?.so;;'
SPECS     ?= tests

.PHONY: all deps deps-build test unit lint rockcheck demo asan tsan valgrind fuzz doc bench bench-openresty clean emulator-start emulator-stop

all: $(CORE54) $(COREJIT)

$(CORE54): $(SRCS) $(HDRS) | deps-build
	@mkdir -p $(@D)
	$(CC) $(WARN) $(OPT) -fPIC -shared $(LUA54_CFLAGS) $(DEPCFLAGS) $(SRCS) -o $@ $(DEPLIBS)

$(COREJIT): $(SRCS) $(HDRS) | deps-build
	@mkdir -p $(@D)
	$(CC) $(WARN) $(OPT) -fPIC -shared $(LUAJIT_CFLAGS) $(DEPCFLAGS) $(SRCS) -o $@ $(DEPLIBS)

# Installs only what is missing; apt-get update first, since a fresh machine has no lists.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing" $$missing; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi

# The build itself only needs pkg-config to find its headers; `deps` brings everything.
deps-build:
	@command -v pkg-config >/dev/null && pkg-config --exists libcurl libcrypto lua5.4 luajit || $(MAKE) --no-print-directory deps

test: deps all lint unit rockcheck

lint:
	luacheck lua tests examples bench

# The two runtimes at once (tests/run_runtimes; UNIT_JOBS=1: one after the other).
unit: all
	tests/run_runtimes unit "$(LUA_ENV54) lua5.4 $(BUSTED) $(SPECS)" "$(LUA_ENVJIT) luajit $(BUSTED) $(SPECS)"

# The rockspec must build on Debian as it is: no hand-set CURL_INCDIR and the like.
rockcheck:
	tests/rockcheck

demo: deps all
	$(LUA_ENV54) lua5.4 examples/run_demo.lua

# AddressSanitizer + UBSan: the core built instrumented. The interpreters are not, so the
# runtime is preloaded; tests/asan_env.c then drops LD_PRELOAD so curl and nginx started
# by the tests run plain, and LUA_INIT loads the core before any spec runs.
ASAN_RT    = $(shell clang -print-file-name=libclang_rt.asan-x86_64.so)
ASAN_CC    = clang $(WARN) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -fPIC -shared
ASAN_RUN   = LD_PRELOAD=$(ASAN_RT) LOGHAUL_ASAN_RT=$(ASAN_RT) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LUA_INIT='require[[loghaul.core]]' \
  LUA_PATH='lua/?.lua;lua/?/init.lua;tests/?.lua;;'
asan: deps
	@mkdir -p build/asan/lua5.4/loghaul build/asan/luajit/loghaul
	$(ASAN_CC) $(LUA54_CFLAGS) $(DEPCFLAGS) $(SRCS) tests/asan_env.c -o build/asan/lua5.4/loghaul/core.so $(DEPLIBS)
	$(ASAN_CC) $(LUAJIT_CFLAGS) $(DEPCFLAGS) $(SRCS) tests/asan_env.c -o build/asan/luajit/loghaul/core.so $(DEPLIBS)
	tests/run_runtimes asan "$(ASAN_RUN) LUA_CPATH='build/asan/lua5.4/?.so;;' lua5.4 $(BUSTED) $(SPECS)" \
	  "$(ASAN_RUN) LUA_CPATH='build/asan/luajit/?.so;;' luajit $(BUSTED) $(SPECS)"

# ThreadSanitizer: tests/tsan_load.c starts threads that each create a Lua state, load the
# TSan-built core at the same moment and call it, as nginx worker threads do; once for Lua
# 5.4 and once for LuaJIT. (nginx itself cannot run under TSan: the runtime cannot be
# preloaded into an uninstrumented binary.)
TSAN_CC = clang $(WARN) -O1 -g -fno-omit-frame-pointer -fsanitize=thread
tsan: deps
	@mkdir -p build/tsan/lua5.4/loghaul build/tsan/luajit/loghaul
	$(TSAN_CC) -fPIC -shared $(LUA54_CFLAGS) $(DEPCFLAGS) $(SRCS) -o build/tsan/lua5.4/loghaul/core.so $(DEPLIBS)
	$(TSAN_CC) -fPIC -shared $(LUAJIT_CFLAGS) $(DEPCFLAGS) $(SRCS) -o build/tsan/luajit/loghaul/core.so $(DEPLIBS)
	$(TSAN_CC) -rdynamic $(LUA54_CFLAGS) $(DEPCFLAGS) tests/tsan_load.c -o build/tsan/load54 $(shell pkg-config --libs lua5.4) $(DEPLIBS) -ldl
	$(TSAN_CC) -rdynamic $(LUAJIT_CFLAGS) $(DEPCFLAGS) tests/tsan_load.c -o build/tsan/loadjit $(shell pkg-config --libs luajit) $(DEPLIBS) -ldl
	TSAN_OPTIONS=halt_on_error=1:exitcode=66 build/tsan/load54 'build/tsan/lua5.4/?.so'
	TSAN_OPTIONS=halt_on_error=1:exitcode=66 build/tsan/loadjit 'build/tsan/luajit/?.so'

# The core and vendor specs at small sizes under memcheck. --keep-debuginfo: Lua unloads the
# module at exit, and a leak report without symbols names nobody.
VALGRIND = valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --keep-debuginfo=yes --quiet
valgrind: all
	$(LUA_ENV54) LOGHAUL_TEST_SMALL=1 $(VALGRIND) lua5.4 $(BUSTED) tests/core tests/vendors

# libFuzzer targets (fuzz/*_fuzz.c) for the C that takes untrusted bytes: the response
# header parser, the Content-Range check of a resume, base64_decode, the JSON scanner. Each runs for
# FUZZ_SECONDS from the seeds in fuzz/corpus/<target>; what it finds new is kept in
# build/fuzz/corpus/<target>, crashes in build/fuzz/crash-<target>-*.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := headers content_range base64 json
FUZZ_CC = clang $(WARN) -Wno-unused-function -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# What each target links besides fuzz/<target>_fuzz.c (which includes the one file it tests):
# the header parser stands alone, the other two need the rest of the core and Lua.
FUZZ_CORE = $(LUA54_CFLAGS) $(DEPCFLAGS) $(filter-out $(1),$(SRCS)) $(shell pkg-config --libs lua5.4) $(DEPLIBS)
FUZZ_LINK_headers       := src/headers.c
FUZZ_LINK_content_range  = $(call FUZZ_CORE,src/transfer.c)
FUZZ_LINK_base64         = $(call FUZZ_CORE,src/crypto.c)
# json: the scanner differential against lua-cjson (the Debian module, loaded by the target)
FUZZ_LINK_json           = $(call FUZZ_CORE,src/json.c)
fuzz: deps
	@mkdir -p build/fuzz
	@set -e; $(foreach t,$(FUZZ_TARGETS),echo "fuzz: building $(t)"; \
	  $(FUZZ_CC) fuzz/$(t)_fuzz.c $(FUZZ_LINK_$(t)) -o build/fuzz/$(t);)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  echo "fuzz: running $$t for $(FUZZ_SECONDS)s"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/crash-$$t- \
	    build/fuzz/corpus/$$t fuzz/corpus/$$t 2>build/fuzz/$$t.log || { tail -50 build/fuzz/$$t.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^stat::new_units_added' build/fuzz/$$t.log | sed "s/^/fuzz: $$t /"; \
	  echo "fuzz: $$t corpus $$(ls build/fuzz/corpus/$$t | wc -l) units"; \
	done

# LDoc HTML into doc/html (config.ld): the Lua layer, and the C core's `///` comments as the
# module loghaul.core (doc/core_module.c is its @module header, prepended to src/*.c).
doc: deps
	@mkdir -p build/doc
	{ cat doc/core_module.c; echo; cat $(SRCS); } > build/doc/loghaul.core.c
	ldoc .

# bench/transfer, bench/cursor, then bench/fleet; writes bench/RESULTS.md (bench/report)
bench: all
	bench/report

# a 1 GiB download inside nginx: probe latency with and without the thread pool
bench-openresty: all
	bench/openresty

emulator-start: all
	tests/emulator/emulator start
emulator-stop:
	tests/emulator/emulator stop

clean:
	rm -rf build doc/html
