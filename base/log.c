/*
 * base/log.c — Redis-style log lines to stderr or a file.
 */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static FILE *log_fp;                      /* NULL = stderr */
static enum loglevel log_level = LL_NOTICE;

int log_init(const char *logfile, enum loglevel level)
{
    log_level = level;
    if (log_fp != NULL && log_fp != stderr) {
        fclose(log_fp);
        log_fp = NULL;
    }
    if (logfile == NULL || logfile[0] == '\0')
        return 0;
    log_fp = fopen(logfile, "a");
    if (log_fp == NULL)
        return -errno;
    return 0;
}

int log_enabled(enum loglevel level)
{
    return level >= log_level && level != LL_NOTHING;
}

void log_line(enum loglevel level, const char *fmt, ...)
{
    static const char marks[] = ".-*#";
    FILE *fp = log_fp ? log_fp : stderr;
    struct timeval tv;
    struct tm tm;
    char when[64];
    va_list ap;

    if (!log_enabled(level))
        return;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    size_t off = strftime(when, sizeof(when), "%d %b %Y %H:%M:%S.", &tm);
    snprintf(when + off, sizeof(when) - off, "%03d", (int)(tv.tv_usec / 1000));

    /* One line, one write: lines from a dying process stay whole. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "%d:P %s %c ", (int)getpid(), when, marks[level]);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + ((size_t)m < sizeof(line) - (size_t)n - 1 ? (size_t)m : sizeof(line) - (size_t)n - 2);
    line[len++] = '\n';
    fwrite(line, 1, len, fp);
    fflush(fp);
}
