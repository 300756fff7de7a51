/*
 * protocol/peek.c — the key of a leading GET request (see peek.h).
 *
 *   *2\r\n$3\r\n GET \r\n $ <digits> \r\n <key> \r\n
 *   └ 8 bytes ┘└ 3 ┘└ 2┘   └ <= 10 ┘
 */
#include "protocol/peek.h"

#include <string.h>
#include <strings.h>

#define PEEK_HEAD "*2\r\n$3\r\n"        /* two arguments, the first of 3 bytes */
#define PEEK_HEAD_LEN 8
#define PEEK_MAX_DIGITS 10              /* a key length beyond this is not worth a prefetch */

size_t reqpeek_get(const char *p, size_t n, const char **key, size_t *klen)
{
    size_t i = PEEK_HEAD_LEN + 5, len = 0, digits = 0;

    if (n < i + 1 || memcmp(p, PEEK_HEAD, PEEK_HEAD_LEN) != 0 || strncasecmp(p + PEEK_HEAD_LEN, "GET", 3) != 0 ||
        p[PEEK_HEAD_LEN + 3] != '\r' || p[PEEK_HEAD_LEN + 4] != '\n' || p[i] != '$')
        return 0;
    for (i++; i < n && p[i] >= '0' && p[i] <= '9' && digits < PEEK_MAX_DIGITS; i++, digits++)
        len = len * 10 + (size_t)(p[i] - '0');
    if (digits == 0 || n - i < 2 || p[i] != '\r' || p[i + 1] != '\n')
        return 0;
    i += 2;
    if (len > n - i || n - i - len < 2 || p[i + len] != '\r' || p[i + len + 1] != '\n')
        return 0;
    *key = p + i;
    *klen = len;
    return i + len + 2;
}
