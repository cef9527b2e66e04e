#!/bin/sh
# RAM and flash of NanoNAS's VWW architectures, TFLM vs mcunas's C runtime (see
# runtime_ram.c and docs/cost-model.md). Needs a build in BUILD (default ./build) and the
# firmware toolchain (scripts/setup). Writes the table to stdout.
#   benchmarks/runtime_ram/run.sh [BUILD]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -std=c11 -D_GNU_SOURCE -O2 -I"$root/include" -I"$root/tests/support" $(pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial) \
   "$root/benchmarks/runtime_ram/runtime_ram.c" "$root/tests/support/testutil.c" \
   -L"$build" -lmcunas \
   $(pkg-config --libs hdf5 openblas jansson stb zlib 2>/dev/null || echo -lhdf5_serial -lopenblas -ljansson -lstb -lz) \
   -fopenmp -lm -o "$work/runtime_ram"
"$work/runtime_ram" "$root/tests/firmware" "$work"
