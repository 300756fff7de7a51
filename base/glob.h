/*
 * base/glob.h — Redis's glob pattern matching (stringmatchlen), once.
 *
 *   proxy/acl.c (key and channel permissions) ──┐
 *   l1/ (REDSNANO L1 INVALIDATE pattern) ───────┴─> glob_match
 *
 * Contract: pure, case-sensitive, binary-safe (lengths, not NUL ends).
 * '*' any run, '?' one byte, '[set]' / '[^set]' / '[a-z]', '\x' escapes,
 * exactly as Redis 7.0 matches KEYS / SCAN MATCH / ACL patterns (an empty
 * string is only matched by an empty pattern, as in Redis).
 * Patterns like "a*a*a*a*b" stay linear-ish (no exponential backtracking).
 */
#ifndef REDSNANO_BASE_GLOB_H
#define REDSNANO_BASE_GLOB_H

#include <stddef.h>

/* 1 if string[0..slen) matches pattern[0..plen), else 0. */
int glob_match(const char *pattern, size_t plen, const char *string, size_t slen);

#endif
