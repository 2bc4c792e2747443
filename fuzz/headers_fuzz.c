/* libFuzzer target: lh_headers_parse (src/headers.c) on arbitrary bytes.
 * Checks what callers rely on: every name is a non-empty lower-case RFC 9110 token, every
 * value is trimmed and lies inside the buffer, no value holds a CR or LF (a bare CR would
 * otherwise reach an If-Range header or a file name). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/headers.h"

typedef struct {
    const char *buf;
    size_t len;
    size_t calls;
} ctx_t;

static void check(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
    ctx_t *c = ud;
    size_t i;
    if (nlen == 0 || name < c->buf || name + nlen > c->buf + c->len)
        abort();
    if (value < c->buf || value + vlen > c->buf + c->len)
        abort();
    for (i = 0; i < nlen; i++) {
        unsigned char ch = (unsigned char)name[i];
        if ((ch >= 'A' && ch <= 'Z') || ch <= 32 || ch >= 127 || ch == ':')
            abort();
    }
    if (vlen > 0 && (value[0] == ' ' || value[0] == '\t' || value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
        abort();
    if (memchr(value, '\n', vlen) != NULL || memchr(value, '\r', vlen) != NULL)
        abort();
    c->calls++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy: ASan sees any read or write past the end */
    char *buf = malloc(size ? size : 1);
    ctx_t c;
    size_t n;
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    c.buf = buf, c.len = size, c.calls = 0;
    n = lh_headers_parse(buf, size, check, &c);
    if (n != c.calls)
        abort();
    free(buf);
    return 0;
}
