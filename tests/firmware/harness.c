/* Runs the generated model on the test images of images.h (written by tests/test_cruntime.c)
 * and reports over semihosting:
 *   OUT <image> <output bytes in hex>
 *   TICKS <SysTick ticks of the first inference>   (QEMU -icount: instructions / 40 at 25 MHz)
 *   STACK <stack high-water mark in bytes>
 * Each image is first copied into a RAM buffer, as a camera driver would leave it. */
#include <stdint.h>

#include "fw.h"
#include "images.h"
#include "model.h"

static uint8_t input[MCUNAS_MODEL_INPUT_BYTES];
static uint8_t output[MCUNAS_MODEL_OUTPUT_BYTES];

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static void put_uint(char *p, uint32_t v) {
    char t[12];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) *p++ = t[--n];
    *p++ = '\n';
    *p = 0;
}

int main(void) {
    static const char hex[] = "0123456789abcdef";
    char line[48]; /* fixed: the stack figure must not depend on the model */
    uint32_t ticks = 0;
    for (int i = 0; i < MN_FW_N_IMAGES; i++) {
        for (int j = 0; j < MCUNAS_MODEL_INPUT_BYTES; j++) input[j] = mn_fw_images[i][j];
        if (i == 0) {
            SYST_RVR = 0xFFFFFFu;
            SYST_CVR = 0;
            SYST_CSR = 5u; /* processor clock, enabled, no interrupt */
        }
        if (mcunas_model_invoke(input, output)) return 1;
        if (i == 0) {
            uint32_t now = SYST_CVR, csr = SYST_CSR;
            if (csr & 0x10000u) { /* wrapped: too long to count */
                mn_fw_write("TICKS overflow\n");
                return 1;
            }
            ticks = 0xFFFFFFu - now;
            SYST_CSR = 0;
        }
        char *p = line;
        *p++ = 'O', *p++ = 'U', *p++ = 'T', *p++ = ' ';
        *p++ = (char)('0' + i / 10), *p++ = (char)('0' + i % 10), *p++ = ' ';
        for (int k = 0; k < MCUNAS_MODEL_OUTPUT_BYTES; k++) {
            *p++ = hex[output[k] >> 4];
            *p++ = hex[output[k] & 15];
            if (p - line >= 40) { /* in pieces */
                *p = 0;
                mn_fw_write(line);
                p = line;
            }
        }
        *p++ = '\n';
        *p = 0;
        mn_fw_write(line);
    }
    mn_fw_write("TICKS ");
    put_uint(line, ticks);
    mn_fw_write(line);
    mn_fw_write("STACK ");
    put_uint(line, (uint32_t)mn_fw_stack_used());
    mn_fw_write(line);
    return 0;
}
