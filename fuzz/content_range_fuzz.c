/* libFuzzer target: the Content-Range check of a resumed download (src/transfer.c,
 * on_range_header, run through lh_headers_parse exactly as choose_sink does). transfer.c
 * is included, not edited, to reach its static functions; the rest of the core is linked. */
#include "../src/transfer.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    range_check_t rc = {0, 0};
    char *copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    lh_headers_parse(copy, size, on_range_header, &rc);
    if (rc.found != 0 && rc.found != 1)
        abort();
    free(copy);
    return 0;
}
