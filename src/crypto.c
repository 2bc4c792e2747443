/* crypto.c: SHA-256, HMAC-SHA256, hex, base64 and random bytes from OpenSSL. (stub: being written) */
#include "loghaul.h"

void lh_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void lh_open_crypto(lua_State *L)
{
    (void)L;
}
