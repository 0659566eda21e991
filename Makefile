# tailbus — one entry point for set-up, build, run and test.
#   make run    install missing packages, build, start `tailbus serve` on ./data/tailbus.db
#   make test   install missing packages, build with -Werror + ASan/UBSan, run every test,
#               then every fuzz target for FUZZ_SECONDS (make fuzz-run)
#   make bench  build optimised and run the benchmarks
#   make soak   build optimised and run the soak (minutes; not in CI): SOAK_SECONDS, SOAK_CLIENTS, SOAK_RATE
#   make format clang-format every source file

SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD_RELEASE := build/release
BUILD_TEST := build/test
BUILD_FUZZ := build/fuzz
# Seconds each libFuzzer target runs in `make test` / `make fuzz-run`.
FUZZ_SECONDS ?= 30

# Debian packages the build, the tests and the benchmarks need.
PACKAGES := cmake make g++ pkg-config libsqlite3-dev rapidjson-dev libfmt-dev libgtest-dev \
            libgmock-dev libcli11-dev libbenchmark-dev libwebsockets-dev python3-websockets \
            sqlite3 libev-dev libwebsockets-evlib-ev libssl-dev openssl clang libclang-rt-14-dev

.PHONY: deps web-deps run test bench bench-deps soak build build-test build-fuzz fuzz-run format clean

deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# The web tests' tools (web/package-lock.json: playwright-core, axe-core, ws) and
# Debian's Chromium for the browser tests (never a downloaded browser).
web-deps:
	@web/test/deps.sh

build: deps
	@cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=Release -DTAILBUS_BUILD_TESTS=OFF -DTAILBUS_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(BUILD_RELEASE) -j $(JOBS)

build-test: deps web-deps
	@cmake -S . -B $(BUILD_TEST) -DCMAKE_BUILD_TYPE=Debug -DTAILBUS_WERROR=ON -DTAILBUS_SANITIZE=ON -DTAILBUS_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(BUILD_TEST) -j $(JOBS)

LISTEN ?= 127.0.0.1:8080

run: build
	@mkdir -p data
	@echo "tailbus: open http://$(LISTEN)/ (UI), ws://$(LISTEN)/ws (WebSocket), http://$(LISTEN)/api/status"
	$(BUILD_RELEASE)/cli/tailbus serve --db ./data/tailbus.db --listen $(LISTEN)

test: build-test
	cd $(BUILD_TEST) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory fuzz-run

# libFuzzer targets (fuzz/): clang 14 with ASan + UBSan, a build directory of their own.
build-fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DTAILBUS_FUZZ=ON \
	  -DTAILBUS_WERROR=ON -DTAILBUS_BUILD_TESTS=OFF -DTAILBUS_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_targets

# make fuzz-run [FUZZ_SECONDS=30] [FUZZ_TARGETS="filter_fuzz ..."]: each target on a
# temporary copy of fuzz/corpus/<target>/; fails on any crash (input kept in build/fuzz/artifacts).
fuzz-run: build-fuzz
	@BUILD=$(BUILD_FUZZ) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS="$(FUZZ_TARGETS)" fuzz/run.sh

# The benchmarks' peers and their clients (bench/ only); linux-perf is optional.
BENCH_PACKAGES := nats-server redis-server libnats-dev libhiredis-dev

bench-deps:
	@missing=""; for p in $(BENCH_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi; \
	if ! dpkg-query -W -f='$${Status}' linux-perf 2>/dev/null | grep -q "install ok installed" && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null 2>&1 || echo "linux-perf not installed (optional)"; \
	fi

# make bench [QUICK=1] [BENCH_ARGS="--system tailbus ..."]: Release build into
# build/release, tailbus + NATS JetStream + Redis Streams, every scenario;
# tables to stdout and docs/BENCHMARKS.md. QUICK=1 takes under 3 minutes.
bench: deps bench-deps
	@cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=Release -DTAILBUS_BUILD_TESTS=OFF -DTAILBUS_BUILD_BENCH=ON >/dev/null
	@cmake --build $(BUILD_RELEASE) -j $(JOBS)
	@BUILD=$(BUILD_RELEASE) QUICK=$(QUICK) BENCH_ARGS="$(BENCH_ARGS)" bench/run_bench.sh

# make soak [SOAK_SECONDS=300] [SOAK_CLIENTS=1000] [SOAK_RATE=5000] [SOAK_ARGS="--seed 1 ..."]:
# Release build into build/release, then bench/soak.cc against `tailbus serve`:
# churning subscribers that resume from their last offset while producers
# publish; server RSS over time, gaps, duplicates, errors. Not part of `make
# test`. Results: docs/RELIABILITY.md.
SOAK_SECONDS ?= 300
SOAK_CLIENTS ?= 1000
SOAK_RATE ?= 5000

soak: deps
	@cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=Release -DTAILBUS_BUILD_TESTS=OFF -DTAILBUS_BUILD_BENCH=ON >/dev/null
	@cmake --build $(BUILD_RELEASE) -j $(JOBS) --target tailbus tailbus-soak
	$(BUILD_RELEASE)/bench/tailbus-soak --tailbus-bin $(BUILD_RELEASE)/cli/tailbus \
	  --seconds $(SOAK_SECONDS) --clients $(SOAK_CLIENTS) --rate $(SOAK_RATE) $(SOAK_ARGS)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
