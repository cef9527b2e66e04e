/* Reset and exit for the firmware harness (no C library): copies .data, zeroes .bss,
 * paints the stack with a pattern (the high-water mark is the lowest word that lost it),
 * runs main and leaves QEMU through semihosting. */
#include <stdint.h>

#include "fw.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
int main(void);
void mn_fw_reset(void);
static void mn_fw_fault(void);

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack, mn_fw_reset, mn_fw_fault, mn_fw_fault, mn_fw_fault,
    mn_fw_fault, mn_fw_fault, 0, 0, 0, 0, mn_fw_fault, mn_fw_fault, 0, mn_fw_fault, mn_fw_fault};

static uint32_t semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void mn_fw_write(const char *s) { semihost(0x04, s); /* SYS_WRITE0 */ }

void mn_fw_exit(int code) {
    /* SYS_EXIT: ADP_Stopped_ApplicationExit, or RunTimeErrorUnknown (QEMU exits 1). */
    semihost(0x18, (const void *)(uintptr_t)(code ? 0x20023u : 0x20026u));
    for (;;) {
    }
}

static void mn_fw_fault(void) {
    mn_fw_write("FAULT\n");
    mn_fw_exit(1);
}

size_t mn_fw_stack_used(void) {
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == MN_FW_PAINT) p++;
    return (size_t)((const uint8_t *)&_estack - (const uint8_t *)p);
}

void mn_fw_reset(void) {
    uint32_t *s = &_sidata, *d = &_sdata, *sp;
    while (d < &_edata) *d++ = *s++;
    for (d = &_sbss; d < &_ebss; d++) *d = 0;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (d = &_sstack; d < sp - 8; d++) *d = MN_FW_PAINT; /* below this frame */
    mn_fw_exit(main());
}
