# tailbus — one entry point for set-up, build, run and test.
#   make run    install missing packages, build, start tailbus on ./data/tailbus.db
#   make test   install missing packages, build with -Werror + ASan/UBSan, run every test
#   make bench  build optimised and run the benchmarks
#   make format clang-format every source file

SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD_RELEASE := build/release
BUILD_TEST := build/test

# Debian packages the build, the tests and the benchmarks need.
PACKAGES := cmake make g++ pkg-config libsqlite3-dev rapidjson-dev libfmt-dev libgtest-dev \
            libgmock-dev libcli11-dev libbenchmark-dev libwebsockets-dev python3-websockets \
            sqlite3

.PHONY: deps run test bench build build-test format clean

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

build: deps
	@cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=Release -DTAILBUS_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(BUILD_RELEASE) -j $(JOBS)

build-test: deps
	@cmake -S . -B $(BUILD_TEST) -DCMAKE_BUILD_TYPE=Debug -DTAILBUS_WERROR=ON -DTAILBUS_SANITIZE=ON -DTAILBUS_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(BUILD_TEST) -j $(JOBS)

run: build
	@mkdir -p data
	$(BUILD_RELEASE)/cli/tailbus demo --db ./data/tailbus.db

test: build-test
	cd $(BUILD_TEST) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

bench: build
	$(BUILD_RELEASE)/bench/tailbus-bench-log $(BENCH_ARGS)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
