#include "core/jsonutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence starting at s, 0 when there is none (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s) {
    unsigned c = s[0], cp;
    size_t n;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the terminating NUL */
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

json_t *mn_json_string_new(const char *s) {
    json_t *v = json_string(s);
    if (v) return v;
    /* not valid UTF-8 (json_string refuses it): re-encode the stray bytes as Latin-1 */
    size_t len = strlen(s);
    char *u = malloc(2 * len + 1);
    if (!u) return NULL;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n) {
            memcpy(u + o, p, n);
            o += n;
            p += n;
        } else {
            u[o++] = (char)(0xc0 | *p >> 6);
            u[o++] = (char)(0x80 | (*p & 0x3f));
            p++;
        }
    }
    u[o] = '\0';
    v = json_string(u);
    free(u);
    return v;
}

json_t *mn_json_real_new(double v, int places) {
    if (!isfinite(v)) return json_null();
    double scale = pow(10.0, places);
    double r = round(v * scale) / scale;
    return json_real(isfinite(r) ? r : v); /* huge values: v*scale overflowed, keep v */
}

int mn_json_string_copy(const json_t *v, char *buf, size_t size) {
    if (!json_is_string(v) || size == 0) return 0;
    size_t len = json_string_length(v);
    if (len >= size) {
        len = size - 1;
        /* back off to the start of a sequence so the copy stays valid UTF-8 */
        const unsigned char *s = (const unsigned char *)json_string_value(v);
        while (len > 0 && (s[len] & 0xc0) == 0x80) len--;
    }
    memcpy(buf, json_string_value(v), len);
    buf[len] = '\0';
    return 1;
}
