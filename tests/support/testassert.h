/* Assertions on mn_status results that print the status names and the library's message
 * when they fail. Include after <cmocka.h>. */
#ifndef MN_TESTASSERT_H
#define MN_TESTASSERT_H

#include <string.h>

#include "mcunas/status.h"

#define assert_status(expr, want)                                                       \
    do {                                                                                \
        mn_status s_ = (expr);                                                          \
        if (s_ != (want)) {                                                             \
            print_error("%s: got %s, want %s: %s\n", #expr, mn_status_name(s_),         \
                        mn_status_name(want), mn_error_message());                      \
            fail();                                                                     \
        }                                                                               \
    } while (0)

#define assert_msg_has(needle)                                                          \
    do {                                                                                \
        const char *m_ = mn_error_message();                                            \
        if (!strstr(m_, (needle))) {                                                    \
            print_error("message \"%s\" does not contain \"%s\"\n", m_, (needle));      \
            fail();                                                                     \
        }                                                                               \
    } while (0)

#endif
