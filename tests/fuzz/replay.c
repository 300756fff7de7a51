/*
 * tests/fuzz/replay.c — a main() that replays stored fuzz inputs without libFuzzer.
 *
 *   meson test ──▶ fuzz_replay_<target> DIR PREFIX
 *                      └─ every regular file DIR/PREFIX* (sorted by name)
 *                            └─▶ LLVMFuzzerTestOneInput(bytes, len)   (fuzz_<target>.c)
 *
 * Linked with one fuzz target in place of libFuzzer's own main, so the
 * reproducers in tests/fuzz/regress/ run in every build (gcc or clang,
 * plain or ASan+UBSan).  A target reports a finding by aborting (ASan,
 * UBSan with -fno-sanitize-recover, or its own checks), which fails the
 * meson test.
 *
 * Contract: exit 0 when at least one file matched and every input returned;
 * exit 1 when the directory cannot be read, a file cannot be read, or no
 * file has the prefix (a wrong path must not pass silently).  One line per
 * input on stdout names what ran.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#define REPLAY_MAX_INPUT (16u * 1024 * 1024)  /* larger files are not fuzz inputs */

/* Read path whole into *out (malloc'd, at exactly its length; 1 byte if empty).  0 or -errno. */
static int replay_read(const char *path, uint8_t **out, size_t *len)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    uint8_t *buf;

    if (f == NULL)
        return -errno;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (size_t)st.st_size > REPLAY_MAX_INPUT) {
        fclose(f);
        return -EFBIG;
    }
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(buf);
        fclose(f);
        return -EIO;
    }
    fclose(f);
    *out = buf;
    *len = (size_t)st.st_size;
    return 0;
}

static int replay_by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    struct dirent **names;
    int n, ran = 0, rc = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR PREFIX\n", argv[0]);
        return 1;
    }
    n = scandir(argv[1], &names, NULL, replay_by_name);
    if (n < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char path[4096];
        struct stat st;
        uint8_t *data = NULL;
        size_t len = 0;
        int err;

        if (strncmp(name, argv[2], strlen(argv[2])) != 0)
            goto next;
        snprintf(path, sizeof(path), "%s/%s", argv[1], name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            goto next;
        err = replay_read(path, &data, &len);
        if (err < 0) {
            fprintf(stderr, "%s: %s\n", path, strerror(-err));
            rc = 1;
            goto next;
        }
        printf("replay %s (%zu bytes)\n", name, len);
        fflush(stdout);
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        ran++;
    next:
        free(names[i]);
    }
    free(names);
    if (ran == 0) {
        fprintf(stderr, "no file %s/%s* to replay\n", argv[1], argv[2]);
        return 1;
    }
    printf("%d inputs replayed\n", ran);
    return rc;
}
