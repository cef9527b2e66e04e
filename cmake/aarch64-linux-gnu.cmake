# Cross build for 64-bit Arm Linux (Raspberry Pi 3/4/5 with a 64-bit OS, Jetson, Graviton)
# from an x86-64 Debian/Ubuntu host with the multiarch :arm64 -dev packages installed
# (scripts/test-arm64 installs them):
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# Built binaries run on the host through qemu-user: ctest does that by itself
# (CMAKE_CROSSCOMPILING_EMULATOR), the CLI as `qemu-aarch64 build-arm64/mcunas ...`.
#
# MN_ARM64_SYSROOT (optional): a folder holding extracted :arm64 -dev packages that cannot be
# installed next to their amd64 twins (Debian 12's libhdf5-dev is not Multi-Arch: same); it
# is searched before the host's /usr/lib/aarch64-linux-gnu and /usr/include.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(MN_CROSS_TRIPLE aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${MN_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${MN_CROSS_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${MN_CROSS_TRIPLE})

set(MN_ARM64_SYSROOT "" CACHE PATH "Folder of extracted :arm64 -dev packages searched first")
# Libraries and headers come from the target's side only; programs (pkg-config, the
# embedding scripts) from the host.
set(CMAKE_FIND_ROOT_PATH ${MN_ARM64_SYSROOT} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config reads the target's .pc files only (multiarch paths; the sysroot's first).
set(_mn_pc_dirs /usr/lib/${MN_CROSS_TRIPLE}/pkgconfig /usr/share/pkgconfig)
if(MN_ARM64_SYSROOT)
  list(PREPEND _mn_pc_dirs ${MN_ARM64_SYSROOT}/usr/lib/${MN_CROSS_TRIPLE}/pkgconfig)
endif()
string(REPLACE ";" ":" _mn_pc_path "${_mn_pc_dirs}")
set(ENV{PKG_CONFIG_LIBDIR} "${_mn_pc_path}")
set(ENV{PKG_CONFIG_PATH} "")

# The host's h5cc wrapper would report the host's (x86-64) HDF5: search headers and the
# library instead (FindHDF5 falls back to that when it has no wrapper to ask).
set(HDF5_C_COMPILER_EXECUTABLE "" CACHE FILEPATH "no HDF5 wrapper when cross-compiling")
set(HDF5_NO_FIND_PACKAGE_CONFIG_FILE ON)

# Tests (ctest) and try_run go through user-mode QEMU; the target's loader and libraries are
# the host's multiarch ones (libc6:arm64 puts /lib/ld-linux-aarch64.so.1 in place).
find_program(MN_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(MN_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${MN_QEMU_AARCH64})
endif()
