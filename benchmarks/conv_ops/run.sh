#!/usr/bin/env bash
# The CPU backend's convolution kernels against each other, op by op, on the conv layers of
# the reference networks (A(4,3), A(8,4), A(16,4) on 50x50x3 and 28x28x1) that oneDNN takes
# when built with it: for each layer and thread count, two backends in one process (the
# kernels of A and of B), calls alternated (conv_ab.c). Prints "A / B ms (B/A)" per op.
#
# Usage: benchmarks/conv_ops/run.sh [A] [B] [BATCH]   (default: direct dnnl 16)
#   BUILD=build (a configured and built tree: its libmcunas.a and compile settings)
set -euo pipefail
cd "$(dirname "$0")/../.."
A=${1:-direct} B=${2:-dnnl} N=${3:-16}
BUILD=${BUILD:-build}
[ -f "$BUILD/libmcunas.a" ] || { echo "conv_ops: no $BUILD/libmcunas.a; build first (README)" >&2; exit 1; }
libs=(-fopenmp -lopenblas -lm -ldl)
grep -q 'MN_HAVE_DNNL=1' "$BUILD/CMakeFiles/mcunas.dir/flags.make" && libs+=(-ldnnl)
bin=$BUILD/conv_ab
cc -O2 -Iinclude benchmarks/conv_ops/conv_ab.c "$BUILD/libmcunas.a" "${libs[@]}" -o "$bin"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
# H W C K: the wide layers of the reference networks on maps of 6x6 and up.
layers=("25 25 8 16" "12 12 16 24" "6 6 24 30"      # A(8,4) 50x50x3
        "25 25 16 32" "12 12 32 48" "6 6 48 60"     # A(16,4) 50x50x3
        "12 12 8 12" "14 14 8 16" "7 7 16 24"       # A(4,3) 50x50x3, A(8,4) 28x28x1
        "14 14 16 32" "7 7 32 48")                  # A(16,4) 28x28x1
for t in 1 2; do
  for l in "${layers[@]}"; do
    set -- $l
    "$bin" "$N" "$1" "$2" "$3" "$4" "$t" "$A" "$B" 21
  done
done
