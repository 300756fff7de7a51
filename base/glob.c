/*
 * base/glob.c — Redis's glob (see glob.h), moved here from proxy/acl.c so
 * that every layer uses the one matcher.
 */
#include "base/glob.h"

/* ------------------------------------------------------------------------
 * Glob matching with Redis's stringmatchlen() semantics (case-sensitive):
 * '*' any run (also empty, but an empty string is only matched by an empty
 * pattern: Redis never enters its loop then), '?' one byte, '[...]' a set
 * with '^' negation, 'a-z' ranges (either order, compared as signed char as
 * Redis does on x86), '\x' escapes; a '[' left open takes the bytes up to
 * the end as its set; a trailing '\' is a literal backslash.
 * ------------------------------------------------------------------------ */

/* The bracket set starting just after '[' at p[0..plen). Sets *matched and
 * returns how many pattern bytes the set used up to and including the
 * closing ']' (or the last byte when unterminated). */
static size_t glob_set(const char *p, size_t plen, char c, int *matched)
{
    size_t i = 0;
    int neg = 0, in = 0;

    if (i < plen && p[i] == '^') {
        neg = 1;
        i++;
    }
    for (;;) {
        if (i + 1 < plen && p[i] == '\\') {
            i++;
            in |= p[i] == c;
        } else if (i < plen && p[i] == ']') {
            break;
        } else if (i >= plen) {
            i--;                /* unterminated: the set ends at the last byte */
            break;
        } else if (i + 2 < plen && p[i + 1] == '-') {
            int lo = (signed char)p[i], hi = (signed char)p[i + 2], x = (signed char)c;

            if (lo > hi) {
                int t = lo;
                lo = hi;
                hi = t;
            }
            in |= x >= lo && x <= hi;
            i += 2;
        } else {
            in |= p[i] == c;
        }
        i++;
    }
    *matched = neg ? !in : in;
    return i + 1;
}

/*
 * Match p[0..plen) against s[0..slen). *give_up is set when a '*' found no
 * place for the rest of the pattern: no longer match of an earlier '*' can
 * do better, which keeps patterns like "a*a*a*a*b" linear-ish.
 */
static int glob(const char *p, size_t plen, const char *s, size_t slen, int *give_up)
{
    while (plen > 0 && slen > 0) {
        size_t used = 1;

        if (p[0] == '*') {
            while (plen > 1 && p[1] == '*') {
                p++;
                plen--;
            }
            if (plen == 1) {
                return 1;
            }
            for (; slen > 0; s++, slen--) {
                if (glob(p + 1, plen - 1, s, slen, give_up)) {
                    return 1;
                }
                if (*give_up) {
                    return 0;
                }
            }
            *give_up = 1;
            return 0;
        } else if (p[0] == '?') {
            /* any byte */
        } else if (p[0] == '[') {
            int m;

            used = 1 + glob_set(p + 1, plen - 1, s[0], &m);
            if (!m) {
                return 0;
            }
        } else {
            if (p[0] == '\\' && plen >= 2) {
                p++;
                plen--;
            }
            if (p[0] != s[0]) {
                return 0;
            }
        }
        p += used;
        plen -= used;
        s++;
        slen--;
        if (slen == 0) {
            while (plen > 0 && p[0] == '*') {
                p++;
                plen--;
            }
        }
    }
    return plen == 0 && slen == 0;
}

int glob_match(const char *pattern, size_t plen, const char *string, size_t slen)
{
    int give_up = 0;

    return glob(pattern, plen, string, slen, &give_up);
}
