# pinhole front door. Every target installs the Debian packages it needs first (idempotent).
#   make run    build and start pinhole as a registrar on examples/pinhole.yaml (127.0.0.1, see README)
#   make test   build the asan preset (clang, ASan+UBSan, fuzz smoke) and the release preset (gcc -O2), run every test
#   make bench  build the release preset and run the parser benchmark
#   make bench-signaling  pinhole vs Kamailio 5.6, CPU per REGISTER and per call (bench/signaling.sh)
#   make bench-registrar  pinhole vs Kamailio 5.6 as registrars, CPU per authenticated REGISTER (bench/registrar.sh)
#   make bench-media  pinhole-media vs rtpengine (userspace), CPU per relayed RTP packet, loss, latency (bench/media.sh)
#   make fuzz   run every fuzz target for FUZZ_SECONDS (default 300)
#   make format clang-format the sources

JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 300

.PHONY: all deps build test run bench bench-signaling bench-registrar bench-media fuzz format clean

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
	cmake --build --preset release --target pinhole
	bash scripts/run-local.sh

bench: deps
	cmake --preset release
	cmake --build --preset release --target bench_parser
	./build/release/bench/bench_parser

bench-signaling: deps
	cmake --preset release
	cmake --build --preset release --target pinhole
	PINHOLE_BIN=build/release/src/app/pinhole bash bench/signaling.sh

bench-registrar: deps
	cmake --preset release
	cmake --build --preset release --target pinhole
	PINHOLE_BIN=build/release/src/app/pinhole bash bench/registrar.sh

bench-media: deps
	cmake --preset release
	cmake --build --preset release --target pinhole-media pinhole-bench
	BENCH_BIN=build/release/bench/pinhole-bench MEDIA_BIN=build/release/src/app/pinhole-media bash bench/media.sh

fuzz: deps
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build
