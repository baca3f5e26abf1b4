# psdm-socket front door. Everything real happens in CMake (CMakeLists.txt) and in
# the test harness (tests/integration); these targets only chain the steps.
#
#   make          build everything into build/
#   make test     install what is missing, check the formatting, build, run unit + integration tests
#   make format   clang-format every tracked C/C++ source in place (.clang-format)
#   make format-check  fail, naming the files, if `make format` would change anything
#   make test-asan  the same under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   make fuzz     every libFuzzer target of tests/fuzz/ for FUZZ_SECONDS each (clang, build-fuzz/)
#   make test-fuzz  the short fuzz check make test runs (every seed plus 10 000 new inputs each)
#   make demo     install what is missing, build, run the stack on embedded defaults
#   make bench    benchmarks (not tests)
#   make install  install the module, the worker and the example config
#   make deb      the Debian package psdm-socket_<version>_<arch>.deb (+ -dbgsym) in build-deb/, lintian-checked
#   make deps     install the Debian and npm packages everything needs (as root)
#   make clean

BUILD     ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
# FUZZ_RUNS=N: stop each target after N inputs instead (FUZZ_SECONDS still bounds it).
FUZZ_RUNS ?=
FUZZ_TARGETS ?= $(sort $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c tests/fuzz/fuzz_*.cpp))))
JOBS      ?= $(shell nproc)
DEMO_PORT ?= 8080
PREFIX    ?= /usr
# Debian's python3-* packages are visible only to /usr/bin/python3.
PYTHON    := /usr/bin/python3
PYTEST    := $(PYTHON) -m pytest -p no:cacheprovider
CLANG_FORMAT ?= clang-format
# The C and C++ sources git tracks (node_modules is not ours).
FORMAT_FILES ?= $(shell git ls-files '*.c' '*.cpp' '*.h' ':!:node_modules/*' ':!:**/node_modules/*' 2>/dev/null)

.PHONY: all build configure test test-unit test-integration test-asan demo bench install deps clean format format-check
.PHONY: fuzz fuzz-build test-fuzz
.PHONY: deb

all: build

$(BUILD)/CMakeCache.txt:
	@scripts/deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

deps:
	scripts/deps.sh all

test:
	scripts/deps.sh test
	$(MAKE) format-check
	$(MAKE) build
	$(MAKE) test-unit test-integration
	$(MAKE) test-fuzz

test-unit:
	ctest --test-dir $(BUILD) --output-on-failure -L unit

test-integration:
	PSDM_BUILD_DIR=$(abspath $(BUILD)) $(PYTEST) -v tests/integration

test-asan:
	scripts/deps.sh test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPSDM_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -L unit
	PSDM_BUILD_DIR=$(abspath $(ASAN_BUILD)) $(PYTEST) -v tests/integration

# The fuzz targets need clang (libFuzzer); their build directory builds nothing else.
$(FUZZ_BUILD)/CMakeCache.txt:
	@scripts/deps.sh fuzz
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSDM_FUZZ=ON \
	    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++

fuzz-build: $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target psdm_fuzz

test-fuzz: fuzz-build
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -L fuzz

# One target at a time, at nice 10, on a copy of its seeds (tests/fuzz/run.sh).
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do tests/fuzz/run.sh fuzz $(FUZZ_BUILD) $$t $(FUZZ_SECONDS) $(FUZZ_RUNS) || exit 1; done

demo:
	scripts/deps.sh demo
	$(MAKE) build
	$(PYTHON) scripts/demo.py --build-dir $(abspath $(BUILD)) --port $(DEMO_PORT)

bench:
	scripts/deps.sh bench
	$(MAKE) build
	$(PYTHON) bench/run_bench.py --build-dir $(abspath $(BUILD)) $(BENCH_ARGS)
	$(PYTHON) bench/resume_bench.py --build-dir $(abspath $(BUILD)) $(RESUME_BENCH_ARGS)
	$(PYTHON) bench/yardsticks.py --build-dir $(abspath $(BUILD)) \
	    --handshake-results $(abspath $(BUILD))/bench/results-latest.json $(YARD_ARGS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The Debian package (debian/), built from a copy of the files git tracks or would track
# (untracked but not ignored) in $(DEB_BUILD)/src, so the tree stays clean; the .deb, the
# -dbgsym .deb, .buildinfo and .changes end in $(DEB_BUILD)/. DEB_BUILD_OPTIONS=nocheck
# skips the unit tests. The version is the project's (CMakeLists.txt), which
# debian/changelog must carry.
DEB_BUILD ?= build-deb
DEB_VERSION = $(shell sed -n 's/^project.psdm_socket VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)

deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || { \
	    echo "make deb: needs the Debian packages dpkg-dev debhelper fakeroot (scripts/deps.sh test, as root)" >&2; exit 1; }
	@v=$$(dpkg-parsechangelog -l debian/changelog -S Version); [ "$$v" = "$(DEB_VERSION)" ] || { \
	    echo "make deb: debian/changelog has version '$$v' but CMakeLists.txt has '$(DEB_VERSION)': add a changelog entry (dch -v $(DEB_VERSION))" >&2; exit 1; }
	rm -rf $(DEB_BUILD)
	mkdir -p $(DEB_BUILD)/src
	git ls-files -z --cached --others --exclude-standard | \
	    tar --null --ignore-failed-read -T - -cf - | tar -xf - -C $(DEB_BUILD)/src
	cd $(DEB_BUILD)/src && dpkg-buildpackage -us -uc -b -J$(JOBS)
	@if command -v lintian >/dev/null; then \
	    echo "lintian $(DEB_BUILD)/psdm-socket_$(DEB_VERSION)_*.changes"; \
	    lintian --fail-on error $(DEB_BUILD)/psdm-socket_$(DEB_VERSION)_*.changes; \
	else echo "make deb: lintian not installed, package not checked" >&2; fi
	@ls -1 $(DEB_BUILD)/*.deb

# Stops make when there is nothing to name (clang-format would then wait on stdin).
need_format_files = $(if $(strip $(FORMAT_FILES)),,$(error $@: no tracked C/C++ sources (not a git checkout?)))

format:
	$(need_format_files)$(CLANG_FORMAT) -i $(FORMAT_FILES)

# --dry-run --Werror: one "code should be clang-formatted" error per place, exit 1.
format-check:
	$(need_format_files)@$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES) || { \
	    echo "format-check: the files named above are not formatted as .clang-format says; run 'make format'" >&2; \
	    exit 1; }

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
