# Embeds kernel files into a C file (run with cmake -P):
#   cmake -DOUT=file.c "-DSOURCES=a.cl;b.cl" [-DNAME=symbol] -P embed.cmake
# The sources, concatenated in the order of SOURCES, become one NUL-terminated char array
# (bytes in hex, so no escaping can go wrong, and binary images such as a CUDA fatbin
# work too) named NAME (default mn_ocl_kernel_source), with its length in NAME_len.
if(NOT NAME)
  set(NAME mn_ocl_kernel_source)
endif()
set(body "/* Generated from the kernels directory by kernels/embed.cmake; do not edit. */\n#include <stddef.h>\n\n")
set(all "")
foreach(src ${SOURCES})
  file(READ ${src} hex HEX)
  string(APPEND all "${hex}")
endforeach()
string(LENGTH "${all}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," arr "${all}")
# 16 bytes per line keeps the file readable for tools.
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" arr "${arr}")
string(APPEND body "const char ${NAME}[] = {\n${arr}0x00};\n")
string(APPEND body "const size_t ${NAME}_len = ${bytes};\n")
file(WRITE ${OUT}.tmp "${body}")
file(RENAME ${OUT}.tmp ${OUT})
