/*
 * protocol/info.c — replies of the proxy's control queries (see info.h).
 */
#include "protocol/info.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

struct redisReply *reply_object(const char *p, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *obj = NULL;

    if (rd == NULL)
        return NULL;
    if (redisReaderFeed(rd, p, len) != REDIS_OK || redisReaderGetReply(rd, &obj) != REDIS_OK)
        obj = NULL;
    redisReaderFree(rd);
    return obj;
}

/* Copy [v, v + n) into out as a string (truncated to cap - 1). */
static void copy_value(const char *v, size_t n, char *out, size_t cap)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

int info_field(const char *info, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *p = info, *end = info + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > n && memcmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t vlen = (size_t)(line_end - v);
            if (vlen > 0 && v[vlen - 1] == '\r')
                vlen--;
            copy_value(v, vlen, out, cap);
            return 0;
        }
        p = line_end + 1;
    }
    return -1;
}

long long info_number(const char *info, size_t len, const char *name)
{
    char v[32];
    char *end;

    if (info_field(info, len, name, v, sizeof(v)) < 0)
        return -1;
    long long x = strtoll(v, &end, 10);
    return end == v || *end != '\0' || x < 0 ? -1 : x;
}

int info_kv(const char *list, const char *key, char *out, size_t cap)
{
    size_t n = strlen(key);

    for (const char *p = list; *p;) {
        size_t item = strcspn(p, ",");
        if (item > n && memcmp(p, key, n) == 0 && p[n] == '=') {
            copy_value(p + n + 1, item - n - 1, out, cap);
            return 0;
        }
        p += item;
        if (*p == ',')
            p++;
    }
    return -1;
}
