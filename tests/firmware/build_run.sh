#!/bin/sh
# Builds a generated model (DIR/model.c, model.h) with the harness and DIR/images.h for a
# Cortex-M core and runs it under QEMU with semihosting:
#   build_run.sh cortex-m4|cortex-m3 DIR
# Writes DIR/fw-CORE.elf, DIR/size-CORE.txt (arm-none-eabi-size -A) and DIR/run-CORE.txt
# (the harness's report). The model is compiled on its own, with -nostdlib: a call into any
# library would fail the link. Cortex-M4 runs on mps2-an386, Cortex-M3 on mps2-an385;
# -icount shift=0 makes one instruction one nanosecond of the virtual clock.
set -eu
core=$1
dir=$2
here=$(cd "$(dirname "$0")" && pwd)
case $core in
  cortex-m4) machine=mps2-an386 ;;
  cortex-m3) machine=mps2-an385 ;;
  *) echo "build_run.sh: unknown core $core" >&2; exit 2 ;;
esac
cc=arm-none-eabi-gcc
flags="-mcpu=$core -mthumb -Os -ffunction-sections -fdata-sections -Wall -Wextra -Werror"
o=$dir/obj-$core
mkdir -p "$o"
$cc $flags -std=c99 -pedantic -c "$dir/model.c" -o "$o/model.o"
# The harness avoids memcpy/memset (no C library): keep gcc from creating calls to them.
hflags="$flags -std=gnu99 -fno-tree-loop-distribute-patterns -I$here -I$dir"
$cc $hflags -c "$here/startup.c" -o "$o/startup.o"
$cc $hflags -c "$here/harness.c" -o "$o/harness.o"
$cc -mcpu=$core -mthumb -nostdlib -nostartfiles -T "$here/link.ld" -Wl,--gc-sections \
    "$o/startup.o" "$o/harness.o" "$o/model.o" -lgcc -o "$dir/fw-$core.elf"
arm-none-eabi-size -A "$dir/fw-$core.elf" > "$dir/size-$core.txt"
rm -f "$dir/run-$core.txt"
timeout 300 qemu-system-arm -M $machine -display none -monitor none -serial null \
    -chardev file,id=report,path="$dir/run-$core.txt" \
    -semihosting-config enable=on,target=native,chardev=report -icount shift=0 \
    -kernel "$dir/fw-$core.elf"
