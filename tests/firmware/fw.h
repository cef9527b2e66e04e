/* The firmware harness's few services (startup.c). */
#ifndef MN_FW_H
#define MN_FW_H
#include <stddef.h>
#include <stdint.h>

#define MN_FW_PAINT 0xC5A5A5C5u
void mn_fw_write(const char *s);    /* to QEMU's stdout (semihosting) */
void mn_fw_exit(int code);
size_t mn_fw_stack_used(void);     /* bytes of stack ever used since reset */
#endif
