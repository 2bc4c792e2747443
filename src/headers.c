/* headers.c: split a raw header block into lower-cased names and trimmed values. */
#include <string.h>

#include "headers.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 token characters: anything else in a name makes the line malformed. */
static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static size_t parse_line(char *line, size_t n, lh_header_fn fn, void *ud)
{
    size_t colon = 0, v, e, i;
    while (colon < n && line[colon] != ':')
        colon++;
    if (colon == 0 || colon == n)
        return 0; /* the status line, a blank line, or no colon */
    for (i = 0; i < colon; i++) {
        unsigned char c = (unsigned char)line[i];
        if (!is_tchar(c))
            return 0;
        if (c >= 'A' && c <= 'Z')
            line[i] = (char)(c - 'A' + 'a');
    }
    v = colon + 1;
    e = n;
    /* RFC 9112 2.2: a bare CR is invalid; replace it with SP (then it is trimmed like one) */
    for (i = v; i < e; i++)
        if (line[i] == '\r')
            line[i] = ' ';
    while (v < e && is_space(line[v]))
        v++;
    while (e > v && is_space(line[e - 1]))
        e--;
    fn(ud, line, colon, line + v, e - v);
    return 1;
}

size_t lh_headers_parse(char *buf, size_t len, lh_header_fn fn, void *ud)
{
    size_t count = 0, start = 0;
    while (start < len) {
        char *nl = memchr(buf + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t n = end - start;
        if (n > 0 && buf[start + n - 1] == '\r')
            n--;
        count += parse_line(buf + start, n, fn, ud);
        start = end + 1;
    }
    return count;
}
