# pinhole front door. Every target installs the Debian packages it needs first (idempotent).
#   make run    build and start pinhole (today: pinhole-parse on udp 127.0.0.1:5060, see README)
#   make test   build the asan preset (clang, ASan+UBSan, fuzz smoke) and the release preset (gcc -O2), run every test
#   make bench  build the release preset and run the benchmarks
#   make fuzz   run every fuzz target for FUZZ_SECONDS (default 300)
#   make format clang-format the sources

JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 300
RUN_PORT ?= 5060

.PHONY: all deps build test run bench fuzz format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

# Two configurations on purpose: clang with ASan+UBSan and the fuzz smoke, then the gcc -O2
# release build, which once miscompiled code the sanitizer build ran fine (see common/result.h).
test: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)
	cmake --preset release
	cmake --build --preset release -j $(JOBS)
	ctest --preset release -j $(JOBS)

run: deps
	cmake --preset release
	cmake --build --preset release --target pinhole-parse
	./build/release/src/app/pinhole-parse --listen $(RUN_PORT)

bench: deps
	cmake --preset release
	cmake --build --preset release --target bench_parser
	./build/release/bench/bench_parser

fuzz: deps
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build
