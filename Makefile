# Entry points. `make demo` and `make test` each install the Debian packages magrq needs
# (scripts/setup-deps), configure and build first, so they work on a fresh machine.
BUILD ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release
# ctest runs two test programs at a time (one per core), each single-threaded, so that
# OpenBLAS and OpenMP threads do not oversubscribe the cores.
TEST_JOBS ?= 2

.PHONY: deps configure build demo test bench clean

deps:
	scripts/setup-deps

configure: deps
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD)

demo: build
	scripts/demo $(BUILD)

test: build
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 ctest --test-dir $(BUILD) --output-on-failure -j $(TEST_JOBS)

bench: build
	scripts/bench $(BUILD)

clean:
	rm -rf $(BUILD)
