/*
 * base/log.h — log lines in Redis's style.
 *
 *   <pid>:X 21 Nov 2026 23:55:11.123 * message
 *
 * X is the role letter ('P' for proxy); the level mark is '.' debug, '-'
 * verbose, '*' notice, '#' warning, as redis-server writes them.
 *
 * Contract: log_init() may be called again (reopen, new level); before it,
 * lines go to stderr at notice level. Logging never fails the caller: a
 * line that cannot be written is dropped.
 */
#ifndef REDSNANO_BASE_LOG_H
#define REDSNANO_BASE_LOG_H

enum loglevel { LL_DEBUG = 0, LL_VERBOSE, LL_NOTICE, LL_WARNING, LL_NOTHING };

/* Open logfile (NULL or "" = stderr) at this level. Returns 0 or -errno. */
int log_init(const char *logfile, enum loglevel level);

/* Is a line of this level written? Use to skip building expensive lines. */
int log_enabled(enum loglevel level);

/* Write one line (no newline needed). */
void log_line(enum loglevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)   do { if (log_enabled(LL_DEBUG)) log_line(LL_DEBUG, __VA_ARGS__); } while (0)
#define log_verbose(...) do { if (log_enabled(LL_VERBOSE)) log_line(LL_VERBOSE, __VA_ARGS__); } while (0)
#define log_notice(...)  log_line(LL_NOTICE, __VA_ARGS__)
#define log_warn(...)    log_line(LL_WARNING, __VA_ARGS__)

#endif
