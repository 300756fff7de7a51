/*
 * tests/unit/test_config.c — the configuration as a Redis user expects it.
 *
 * Each test runs in its own temporary directory (made in the suite's init,
 * removed with its files in fini). config_load() is always given an explicit
 * environment, so the tests do not depend on the caller's REDSNANO_*.
 * Under ASan every test ends with a leak check (in the suite's fini), which
 * is how config_free() is shown to free everything config_load() made.
 */
#define _GNU_SOURCE                             /* asprintf */
#include "proxy/config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#endif

#define MAX_TMP_FILES 16

static char tmpdir[PATH_MAX];                  /* this test's directory */
static char *tmpfiles[MAX_TMP_FILES];          /* files made in it, to remove */
static int ntmpfiles;
static char *no_env[] = { NULL };              /* an empty environment */

static void tmp_setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/redsnano-test-config-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    ntmpfiles = 0;
}

static void tmp_teardown(void)
{
    for (int i = 0; i < ntmpfiles; i++) {
        unlink(tmpfiles[i]);
        free(tmpfiles[i]);
    }
    ntmpfiles = 0;
    rmdir(tmpdir);
}

TestSuite(config, .init = tmp_setup, .fini = tmp_teardown);

/* Under ASan, fail the test that leaked. LeakSanitizer's own report at exit
 * comes after Criterion has counted the test as passed, and a failure in a
 * suite's fini is only a warning: so the check ends every test body. */
static void leak_check(void)
{
#ifdef HAVE_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked: see the report above");
#endif
}

/* A test of the config suite, ending with leak_check(). */
#define CONFIG_TEST(name)                                                      \
    static void name##_body(void);                                             \
    Test(config, name) { name##_body(); leak_check(); }                        \
    static void name##_body(void)

/* Write text to tmpdir/name; returns the path (freed in teardown). */
static const char *write_file(const char *name, const char *text)
{
    char *path = NULL;
    FILE *fp;

    cr_assert(ntmpfiles < MAX_TMP_FILES);
    cr_assert(asprintf(&path, "%s/%s", tmpdir, name) > 0);
    tmpfiles[ntmpfiles++] = path;
    fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* config_load with a NULL-ended argv (argv[0] added) and environment. */
static int load(struct config *cfg, char *err, const char *const *args, char **envp)
{
    char *argv[64] = { "redsnano" };
    int argc = 1;

    for (; args != NULL && args[argc - 1] != NULL; argc++) {
        cr_assert(argc < 63);
        argv[argc] = (char *)args[argc - 1];
    }
    argv[argc] = NULL;
    err[0] = '\0';
    return config_load(cfg, argc, argv, envp ? envp : no_env, err, CONFIG_ERR_LEN);
}

/* Load a file holding text; returns config_load's result. */
static int load_text(struct config *cfg, char *err, const char *text)
{
    const char *path = write_file("redsnano.conf", text);
    const char *args[] = { path, NULL };

    return load(cfg, err, args, NULL);
}

/* Expect loading text to fail with "<file>:<line>: <msg>". */
static void expect_file_error(const char *text, int line, const char *msg)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN], want[CONFIG_ERR_LEN + PATH_MAX];

    cr_assert_eq(load_text(&cfg, err, text), -1, "accepted: %s", text);
    snprintf(want, sizeof(want), "%s/redsnano.conf:%d: %s", tmpdir, line, msg);
    cr_assert_str_eq(err, want);
    cr_assert_null(cfg.bind, "a failed load leaves the config freed");
    unlink(tmpfiles[--ntmpfiles]);
    free(tmpfiles[ntmpfiles]);
}

/* Expect a one-line file to load; returns the config (caller frees). */
static struct config load_line_ok(const char *text)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];

    cr_assert_eq(load_text(&cfg, err, text), 0, "%s: %s", text, err);
    unlink(tmpfiles[--ntmpfiles]);
    free(tmpfiles[ntmpfiles]);
    return cfg;
}

static void assert_addr(const struct hostport *a, const char *host, int port)
{
    cr_assert_str_eq(a->host, host);
    cr_assert_eq(a->port, port);
}

static void assert_str_or_null_eq(const char *a, const char *b, const char *what)
{
    if (a == NULL || b == NULL)
        cr_assert(a == b, "%s: %s vs %s", what, a ? a : "NULL", b ? b : "NULL");
    else
        cr_assert_str_eq(a, b, "%s", what);
}

/* Every directive field of a equals b's. */
static void assert_config_eq(const struct config *a, const struct config *b)
{
    cr_assert_eq(a->port, b->port);
    assert_str_or_null_eq(a->bind, b->bind, "bind");
    assert_str_or_null_eq(a->unixsocket, b->unixsocket, "unixsocket");
    assert_addr(&a->primary, b->primary.host, b->primary.port);
    cr_assert_eq(a->backend_connections, b->backend_connections);
    cr_assert_eq(a->backend_timeout, b->backend_timeout);
    cr_assert_eq(a->connect_timeout, b->connect_timeout);
    cr_assert_eq(a->loglevel, b->loglevel);
    assert_str_or_null_eq(a->logfile, b->logfile, "logfile");
    cr_assert_eq(a->maxclients, b->maxclients);
    cr_assert_eq(a->timeout, b->timeout);
    cr_assert_eq(a->proto_max_bulk_len, b->proto_max_bulk_len);
    cr_assert_eq(a->client_query_buffer_limit, b->client_query_buffer_limit);
    cr_assert_eq(a->allow_admin_commands, b->allow_admin_commands);
    for (int i = 0; i < OBUF_CLASSES; i++) {
        cr_assert_eq(a->client_obuf[i].hard, b->client_obuf[i].hard);
        cr_assert_eq(a->client_obuf[i].soft, b->client_obuf[i].soft);
        cr_assert_eq(a->client_obuf[i].soft_seconds, b->client_obuf[i].soft_seconds);
    }
    cr_assert_eq(a->client_backpressure, b->client_backpressure);
    cr_assert_eq(a->maxmemory_clients.bytes, b->maxmemory_clients.bytes);
    cr_assert_eq(a->maxmemory_clients.percent, b->maxmemory_clients.percent);
    cr_assert_eq(a->nreplicas, b->nreplicas);
    for (int i = 0; i < a->nreplicas; i++)
        assert_addr(&a->replicas[i], b->replicas[i].host, b->replicas[i].port);
    cr_assert_eq(a->nsentinels, b->nsentinels);
    for (int i = 0; i < a->nsentinels; i++)
        assert_addr(&a->sentinels[i], b->sentinels[i].host, b->sentinels[i].port);
    assert_str_or_null_eq(a->sentinel_master, b->sentinel_master, "sentinel-master");
    assert_str_or_null_eq(a->sentinel_password, b->sentinel_password, "sentinel-password");
    cr_assert_eq(a->read_policy, b->read_policy);
    cr_assert_eq(a->health_interval, b->health_interval);
    cr_assert_eq(a->health_timeout, b->health_timeout);
    cr_assert_eq(a->replica_max_lag, b->replica_max_lag);
    cr_assert_eq(a->read_your_writes, b->read_your_writes);
    cr_assert_eq(a->l1_maxmemory, b->l1_maxmemory);
    cr_assert_eq(a->l1_mode, b->l1_mode);
    cr_assert_eq(a->l1_max_ttl, b->l1_max_ttl);
    assert_str_or_null_eq(a->l1_commands, b->l1_commands, "l1-commands");
    cr_assert_eq(a->l1_serve_stale, b->l1_serve_stale);
    cr_assert_eq(a->l1_revalidate_after, b->l1_revalidate_after);
    assert_str_or_null_eq(a->backend_user, b->backend_user, "backend-user");
    assert_str_or_null_eq(a->backend_password, b->backend_password, "backend-password");
    assert_str_or_null_eq(a->requirepass, b->requirepass, "requirepass");
    cr_assert_eq(a->users.n, b->users.n, "user lines");
    cr_assert_eq(a->protected_mode, b->protected_mode);
    cr_assert_eq(a->tls_port, b->tls_port);
    assert_str_or_null_eq(a->tls_cert_file, b->tls_cert_file, "tls-cert-file");
    assert_str_or_null_eq(a->tls_key_file, b->tls_key_file, "tls-key-file");
    assert_str_or_null_eq(a->tls_ca_cert_file, b->tls_ca_cert_file, "tls-ca-cert-file");
    cr_assert_eq(a->tls_auth_clients, b->tls_auth_clients);
    assert_str_or_null_eq(a->tls_protocols, b->tls_protocols, "tls-protocols");
    assert_str_or_null_eq(a->tls_ciphers, b->tls_ciphers, "tls-ciphers");
    assert_str_or_null_eq(a->tls_ciphersuites, b->tls_ciphersuites, "tls-ciphersuites");
    cr_assert_eq(a->backend_tls, b->backend_tls);
    assert_str_or_null_eq(a->backend_tls_ca_cert_file, b->backend_tls_ca_cert_file, "backend-tls-ca-cert-file");
    assert_str_or_null_eq(a->backend_tls_cert_file, b->backend_tls_cert_file, "backend-tls-cert-file");
    assert_str_or_null_eq(a->backend_tls_key_file, b->backend_tls_key_file, "backend-tls-key-file");
    assert_str_or_null_eq(a->backend_tls_server_name, b->backend_tls_server_name, "backend-tls-server-name");
}

/* Run config_load with stdout sent to a file; returns its result and what
 * was printed (malloc'ed, caller frees). */
static int load_capturing_stdout(const char *const *args, char **printed)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *path = write_file("stdout.txt", "");
    int saved = dup(STDOUT_FILENO), fd = open(path, O_WRONLY | O_TRUNC), rc;
    FILE *fp;
    long len;

    cr_assert(saved >= 0 && fd >= 0);
    fflush(stdout);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    rc = load(&cfg, err, args, NULL);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    if (rc == 0)
        config_free(&cfg);

    fp = fopen(path, "r");
    cr_assert_not_null(fp);
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    rewind(fp);
    *printed = calloc(1, (size_t)len + 1);
    cr_assert_eq(fread(*printed, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    return rc;
}

/* The directive names, read from config_print_directives() (each entry
 * starts with two spaces and the name). Returns how many. */
#define CONFIG_T_MAX_DIRECTIVES 96      /* room for the directive names read back */

static int directive_names(char names[][64], int max)
{
    char *text = NULL, *line, *save = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int n = 0;

    config_print_directives(mem);
    fclose(mem);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == ' ' && line[1] == ' ' && line[2] != ' ') {
            cr_assert(n < max);
            sscanf(line + 2, "%63s", names[n++]);
        }
    }
    free(text);
    return n;
}

/* ------------------------------------------------------------ defaults */

CONFIG_TEST(defaults_are_documented_values)
{
    struct config cfg;

    config_defaults(&cfg);
    cr_assert_eq(cfg.port, 7379);
    cr_assert_str_eq(cfg.bind, "127.0.0.1");
    cr_assert_null(cfg.unixsocket);
    assert_addr(&cfg.primary, "127.0.0.1", 6379);
    cr_assert_eq(cfg.backend_connections, 1);
    cr_assert_eq(cfg.backend_timeout, 5000);
    cr_assert_eq(cfg.connect_timeout, 1000);
    cr_assert_eq(cfg.loglevel, LL_NOTICE);
    cr_assert(cfg.logfile == NULL || cfg.logfile[0] == '\0');
    cr_assert_eq(cfg.maxclients, 10000);
    cr_assert_eq(cfg.timeout, 0);
    cr_assert_eq(cfg.proto_max_bulk_len, 512LL * 1024 * 1024);
    cr_assert_eq(cfg.client_query_buffer_limit, 1024LL * 1024 * 1024);
    cr_assert_not(cfg.allow_admin_commands);
    cr_assert_eq(cfg.nreplicas, 0);
    cr_assert_eq(cfg.nsentinels, 0);
    cr_assert_null(cfg.sentinel_master);
    cr_assert_null(cfg.sentinel_password);
    cr_assert_eq(cfg.read_policy, READ_PREFER_REPLICA);
    cr_assert_eq(cfg.health_interval, 1000);
    cr_assert_eq(cfg.health_timeout, 500);
    cr_assert_eq(cfg.replica_max_lag, 1024 * 1024);
    cr_assert_eq(cfg.read_your_writes, 1000);
    cr_assert_eq(cfg.l1_maxmemory, 0);
    cr_assert_eq(cfg.l1_mode, L1_TRACKING);
    cr_assert_eq(cfg.l1_max_ttl, 60000);
    cr_assert_str_eq(cfg.l1_commands, "GET");
    cr_assert_not(cfg.l1_serve_stale);
    cr_assert_eq(cfg.l1_revalidate_after, 0);
    cr_assert_null(cfg.config_file);
    cr_assert_not(cfg.test_config);
    config_free(&cfg);
}

CONFIG_TEST(no_arguments_load_the_defaults)
{
    struct config cfg, def;
    char err[CONFIG_ERR_LEN];

    cr_assert_eq(load(&cfg, err, NULL, NULL), 0, "%s", err);
    config_defaults(&def);
    assert_config_eq(&cfg, &def);
    cr_assert_null(cfg.config_file);
    config_free(&cfg);
    config_free(&def);
}

/* ------------------------------------------------------------ file syntax */

CONFIG_TEST(file_with_comments_blank_lines_and_quotes)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *text =
        "# redsnano test\n"
        "\n"
        "   \t\n"
        "    # an indented comment with \"unbalanced quotes\n"
        "port 6380\n"
        "  bind   \"::1\"   \n"
        "logfile \"/tmp/a dir/log\\tfile\\x41\\n\"\n"
        "sentinel-password 'it''s'\n"
        "sentinel-master 'my \\'master\\''\r\n"
        "sentinel 127.0.0.1:26379\n"
        "LogLevel WARNING\n"
        "unixsocket \"\"\n";

    cr_assert_eq(load_text(&cfg, err, text), -1, "'it''s' must be rejected");
    cr_assert(strstr(err, ":8: a closing quote must be followed by a space") != NULL, "%s", err);

    text = "# redsnano test\n"
           "\n"
           "   \t\n"
           "    # an indented comment with \"unbalanced quotes\n"
           "port 6380\n"
           "  bind   \"::1\"   \n"
           "logfile \"/tmp/a dir/log\\tfile\\x41\\n\"\n"
           "sentinel-password 'it\\'s \\n raw'\n"
           "sentinel-master 'my master'\r\n"
           "sentinel 127.0.0.1:26379\n"
           "LogLevel WARNING\n"
           "unixsocket \"\"\n"
           "# last line without a newline\n"
           "timeout 30";
    cr_assert_eq(load_text(&cfg, err, text), 0, "%s", err);
    cr_assert_eq(cfg.port, 6380);
    cr_assert_str_eq(cfg.bind, "::1");
    cr_assert_str_eq(cfg.logfile, "/tmp/a dir/log\tfileA\n");
    cr_assert_str_eq(cfg.sentinel_password, "it's \\n raw");
    cr_assert_str_eq(cfg.sentinel_master, "my master");
    cr_assert_eq(cfg.loglevel, LL_WARNING);
    cr_assert_null(cfg.unixsocket);
    cr_assert_eq(cfg.timeout, 30);
    cr_assert_str_eq(cfg.config_file, tmpfiles[ntmpfiles - 1]);
    config_free(&cfg);
}

CONFIG_TEST(later_line_of_the_file_wins)
{
    struct config cfg = load_line_ok("port 1\nport 2\n");

    cr_assert_eq(cfg.port, 2);
    config_free(&cfg);
}

CONFIG_TEST(quoting_errors_name_the_line)
{
    expect_file_error("port 1\nbind \"127.0.0.1\n", 2,
                      "unbalanced quotes: a \"...\" value is not closed");
    expect_file_error("\n\n\nbind '127.0.0.1\n", 4,
                      "unbalanced quotes: a '...' value is not closed");
    expect_file_error("bind \"127.0.0.1\"x\n", 1,
                      "a closing quote must be followed by a space or the end of the line");
    expect_file_error("bind \"a\\x00b\"\n", 1, "\\x00 is not allowed in a value");
}

CONFIG_TEST(wrong_number_of_values)
{
    expect_file_error("port\n", 1, "port: expects a value: an integer in 0..65535");
    expect_file_error("port 1 2\n", 1,
                      "port: expects one value, got 2 (quote a value that contains spaces)");
    expect_file_error("port 6380 # the port\n", 1,
                      "port: expects one value, got 4 (a comment must be on a line of its own)");
    expect_file_error("bind 127.0.0.1 ::1\n", 1,
                      "bind: expects one value, got 2 (quote a value that contains spaces)");
}

CONFIG_TEST(unknown_directive_in_file)
{
    expect_file_error("port 1\n\nprot 6380\n", 3, "unknown directive prot (did you mean port?)");
    expect_file_error("frobnicate yes\n", 1,
                      "unknown directive frobnicate (redsnano --help lists them)");
}

CONFIG_TEST(missing_file_is_an_error)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN], path[PATH_MAX + 32];
    const char *args[] = { path, NULL };

    snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
    cr_assert_eq(load(&cfg, err, args, NULL), -1);
    cr_assert(strstr(err, "nope.conf: cannot open the config file: No such file") != NULL, "%s", err);
    args[0] = tmpdir;                  /* a directory */
    cr_assert_eq(load(&cfg, err, args, NULL), -1);
    cr_assert(strstr(err, "cannot read the config file") != NULL, "%s", err);
}

/* ------------------------------------------------------------ types */

CONFIG_TEST(int_values)
{
    struct config cfg = load_line_ok("port 0\nunixsocket /tmp/s\n");
    cr_assert_eq(cfg.port, 0);
    config_free(&cfg);
    cfg = load_line_ok("port 65535\n");
    cr_assert_eq(cfg.port, 65535);
    config_free(&cfg);
    cfg = load_line_ok("maxclients +5\n");
    cr_assert_eq(cfg.maxclients, 5);
    config_free(&cfg);

    expect_file_error("# c\n\nport abc\n", 3, "port: \"abc\" is not an integer in 0..65535");
    expect_file_error("port 65536\n", 1, "port: \"65536\" is not an integer in 0..65535");
    expect_file_error("port -1\n", 1, "port: \"-1\" is not an integer in 0..65535");
    expect_file_error("port 1.5\n", 1, "port: \"1.5\" is not an integer in 0..65535");
    expect_file_error("port \"\"\n", 1, "port: \"\" is not an integer in 0..65535");
    expect_file_error("port \" 1\"\n", 1, "port: \" 1\" is not an integer in 0..65535");
    expect_file_error("port 99999999999999999999\n", 1,
                      "port: \"99999999999999999999\" is not an integer in 0..65535");
    expect_file_error("backend-connections 0\n", 1,
                      "backend-connections: \"0\" is not an integer in 1..64");
}

CONFIG_TEST(millisecond_values)
{
    struct config cfg = load_line_ok("health-interval 250\nbackend-timeout 0\n");
    cr_assert_eq(cfg.health_interval, 250);
    cr_assert_eq(cfg.backend_timeout, 0);
    config_free(&cfg);

    expect_file_error("health-interval 0\n", 1,
                      "health-interval: \"0\" is not a number of milliseconds in 1..2147483647");
    expect_file_error("l1-max-ttl 10s\n", 1,
                      "l1-max-ttl: \"10s\" is not a number of milliseconds in 1..2147483647");
    expect_file_error("read-your-writes 2147483648\n", 1,
                      "read-your-writes: \"2147483648\" is not a number of milliseconds in 0..2147483647");
}

CONFIG_TEST(bool_values)
{
    struct config cfg = load_line_ok("allow-admin-commands yes\nl1-serve-stale YES\n");
    cr_assert(cfg.allow_admin_commands);
    cr_assert(cfg.l1_serve_stale);
    config_free(&cfg);
    cfg = load_line_ok("allow-admin-commands yes\nallow-admin-commands No\n");
    cr_assert_not(cfg.allow_admin_commands);
    config_free(&cfg);

    expect_file_error("allow-admin-commands true\n", 1,
                      "allow-admin-commands: \"true\" is not yes or no");
    expect_file_error("l1-serve-stale 1\n", 1, "l1-serve-stale: \"1\" is not yes or no");
}

CONFIG_TEST(string_values)
{
    struct config cfg = load_line_ok("bind 0.0.0.0\nlogfile /var/log/redsnano.log\n"
                                     "unixsocket /tmp/redsnano.sock\n");
    cr_assert_str_eq(cfg.bind, "0.0.0.0");
    cr_assert_str_eq(cfg.logfile, "/var/log/redsnano.log");
    cr_assert_str_eq(cfg.unixsocket, "/tmp/redsnano.sock");
    config_free(&cfg);

    cfg = load_line_ok("logfile /x\nlogfile \"\"\nunixsocket /s\nunixsocket ''\n");
    cr_assert(cfg.logfile == NULL || cfg.logfile[0] == '\0');
    cr_assert_null(cfg.unixsocket);
    config_free(&cfg);

    expect_file_error("bind \"\"\n", 1, "bind: \"\" is not a non-empty string");
}

CONFIG_TEST(enum_values)
{
    static const struct { const char *line; int loglevel, policy, mode; } good[] = {
        { "loglevel debug", LL_DEBUG, -1, -1 },
        { "loglevel verbose", LL_VERBOSE, -1, -1 },
        { "loglevel notice", LL_NOTICE, -1, -1 },
        { "loglevel Warning", LL_WARNING, -1, -1 },
        { "loglevel nothing", LL_NOTHING, -1, -1 },
        { "read-policy primary", -1, READ_PRIMARY, -1 },
        { "read-policy replica", -1, READ_REPLICA, -1 },
        { "read-policy prefer-replica", -1, READ_PREFER_REPLICA, -1 },
        { "read-policy nearest", -1, READ_NEAREST, -1 },
        { "read-policy round-robin", -1, READ_ROUND_ROBIN, -1 },
        { "l1-mode tracking", -1, -1, L1_TRACKING },
        { "l1-mode strict", -1, -1, L1_STRICT },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct config cfg = load_line_ok(good[i].line);
        if (good[i].loglevel >= 0)
            cr_assert_eq((int)cfg.loglevel, good[i].loglevel, "%s", good[i].line);
        if (good[i].policy >= 0)
            cr_assert_eq((int)cfg.read_policy, good[i].policy, "%s", good[i].line);
        if (good[i].mode >= 0)
            cr_assert_eq((int)cfg.l1_mode, good[i].mode, "%s", good[i].line);
        config_free(&cfg);
    }
    expect_file_error("loglevel loud\n", 1,
                      "loglevel: \"loud\" is not one of debug|verbose|notice|warning|nothing");
    expect_file_error("read-policy fastest\n", 1,
                      "read-policy: \"fastest\" is not one of "
                      "primary|replica|prefer-replica|nearest|round-robin");
    expect_file_error("l1-mode lazy\n", 1, "l1-mode: \"lazy\" is not one of tracking|strict");
}

CONFIG_TEST(memory_suffixes)
{
    static const struct { const char *s; long long v; } good[] = {
        { "0", 0 }, { "512", 512 }, { "512b", 512 },
        { "64k", 64000 }, { "64kb", 65536 }, { "64KB", 65536 }, { "64K", 64000 },
        { "1m", 1000000 }, { "1mb", 1048576 }, { "1Mb", 1048576 },
        { "1g", 1000000000 }, { "1gb", 1073741824 }, { "3GB", 3LL << 30 },
        { "9223372036854775807", 9223372036854775807LL },
    };
    static const char *const bad[] = {
        "", "kb", "-1", "+1", "1.5mb", "1tb", "1 mb", " 1", "1kbb", "0x10",
        "99999999999999999999", "9223372036854775807kb", "9999999999gb",
    };
    long long v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert_eq(config_parse_memory(good[i].s, &v), 0, "%s", good[i].s);
        cr_assert_eq(v, good[i].v, "%s: %lld", good[i].s, v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_memory(bad[i], &v), -1, "accepted \"%s\"", bad[i]);

    struct config cfg = load_line_ok("l1-maxmemory 100mb\nreplica-max-lag 0\n"
                                     "proto-max-bulk-len 1k\nclient-query-buffer-limit 2gb\n");
    cr_assert_eq(cfg.l1_maxmemory, 100LL << 20);
    cr_assert_eq(cfg.replica_max_lag, 0);
    cr_assert_eq(cfg.proto_max_bulk_len, 1000);
    cr_assert_eq(cfg.client_query_buffer_limit, 2LL << 30);
    config_free(&cfg);

    expect_file_error("l1-maxmemory 12xb\n", 1,
                      "l1-maxmemory: \"12xb\" is not a memory size >= 0 "
                      "(bytes, or with suffix k/m/g = 1000, kb/mb/gb = 1024)");
    expect_file_error("proto-max-bulk-len 0\n", 1,
                      "proto-max-bulk-len: \"0\" is not a memory size >= 1 "
                      "(bytes, or with suffix k/m/g = 1000, kb/mb/gb = 1024)");
}

CONFIG_TEST(address_parsing)
{
    static const struct { const char *s; const char *host; int port; } good[] = {
        { "127.0.0.1:6379", "127.0.0.1", 6379 },
        { "[::1]:6380", "::1", 6380 },
        { "[fe80::1%eth0]:1", "fe80::1%eth0", 1 },
        { "localhost:65535", "localhost", 65535 },
        { "redis-1.example.com:7000", "redis-1.example.com", 7000 },
    };
    static const char *const bad[] = {
        "", "localhost", ":6379", "host:", "host:0", "host:65536", "host:abc", "host:+1",
        "host:-1", "host:06379x", "::1:6379", "[::1]6379", "[::1]", "[]:1", "a b:1",
        "host:6379 ", "[::1:6379",
    };
    struct hostport a;
    char longhost[300];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert_eq(config_parse_addr(good[i].s, &a), 0, "%s", good[i].s);
        assert_addr(&a, good[i].host, good[i].port);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_addr(bad[i], &a), -1, "accepted \"%s\"", bad[i]);

    memset(longhost, 'h', 255);
    strcpy(longhost + 255, ":1");
    cr_assert_eq(config_parse_addr(longhost, &a), 0);
    cr_assert_eq(strlen(a.host), 255);
    memset(longhost, 'h', 256);
    strcpy(longhost + 256, ":1");
    cr_assert_eq(config_parse_addr(longhost, &a), -1);

    struct config cfg = load_line_ok("primary [::1]:7000\n");
    assert_addr(&cfg.primary, "::1", 7000);
    config_free(&cfg);
    expect_file_error("primary localhost\n", 1,
                      "primary: \"localhost\" is not host:port or [ipv6]:port with a port in 1..65535");
}

CONFIG_TEST(l1_commands)
{
    struct config cfg = load_line_ok("l1-commands get hGetAll\n");
    cr_assert_str_eq(cfg.l1_commands, "GET HGETALL");
    config_free(&cfg);
    cfg = load_line_ok("l1-commands \"GET HGET  zrange\" lrange GET smembers\n");
    cr_assert_str_eq(cfg.l1_commands, "GET HGET ZRANGE LRANGE SMEMBERS");
    config_free(&cfg);
    cfg = load_line_ok("l1-commands HGET HGETALL\n");
    cr_assert_str_eq(cfg.l1_commands, "HGET HGETALL");
    config_free(&cfg);

    expect_file_error("l1-commands GET set\n", 1,
                      "l1-commands: \"set\" is not a command L1 can cache; "
                      "accepted: GET HGET HGETALL LRANGE SMEMBERS ZRANGE");
    expect_file_error("l1-commands \"  \"\n", 1,
                      "l1-commands: expects one or more of GET HGET HGETALL LRANGE SMEMBERS ZRANGE");
}

CONFIG_TEST(long_bad_value_is_shortened_in_the_message)
{
    char text[300];

    snprintf(text, sizeof(text), "loglevel %0200d\n", 7);
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    cr_assert_eq(load_text(&cfg, err, text), -1);
    cr_assert(strstr(err, "0000\"... is not one of") != NULL, "%s", err);
    cr_assert(strlen(err) < 250, "%s", err);
    cr_assert_eq(load_text(&cfg, err, "loglevel \"a\\tb\"\n"), -1);
    cr_assert(strstr(err, "\"a\\x09b\" is not") != NULL, "%s", err);
}

/* ------------------------------------------------------------ repeatable lists */

CONFIG_TEST(replicas_append_within_a_level)
{
    struct config cfg = load_line_ok("replica 10.0.0.1:6379\n"
                                     "replica [::1]:6380 localhost:6381\n"
                                     "sentinel 10.0.0.9:26379\nsentinel-master mymaster\n");
    cr_assert_eq(cfg.nreplicas, 3);
    assert_addr(&cfg.replicas[0], "10.0.0.1", 6379);
    assert_addr(&cfg.replicas[1], "::1", 6380);
    assert_addr(&cfg.replicas[2], "localhost", 6381);
    cr_assert_eq(cfg.nsentinels, 1);
    assert_addr(&cfg.sentinels[0], "10.0.0.9", 26379);
    config_free(&cfg);

    expect_file_error("replica a:1\nreplica b:2 c\n", 2,
                      "replica: \"c\" is not host:port or [ipv6]:port with a port in 1..65535 "
                      "(repeatable, at most 32)");
    expect_file_error("replica\n", 1,
                      "replica: expects a value: host:port or [ipv6]:port with a port in 1..65535 "
                      "(repeatable, at most 32)");
}

CONFIG_TEST(replica_list_is_bounded)
{
    char text[4096] = "";
    size_t o = 0;

    for (int i = 0; i < CONFIG_MAX_ADDRS; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "replica r%d:6379\n", i);
    struct config cfg = load_line_ok(text);
    cr_assert_eq(cfg.nreplicas, CONFIG_MAX_ADDRS);
    assert_addr(&cfg.replicas[CONFIG_MAX_ADDRS - 1], "r31", 6379);
    config_free(&cfg);
    snprintf(text + o, sizeof(text) - o, "replica one-too-many:6379\n");
    expect_file_error(text, CONFIG_MAX_ADDRS + 1, "replica: at most 32 can be given");
}

CONFIG_TEST(higher_level_replaces_the_replica_list)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *path = write_file("r.conf", "replica f1:1\nreplica f2:2\n");
    char *env[] = { "REDSNANO_REPLICA=e1:1 e2:2", "REDSNANO_SENTINEL=s:26379",
                    "REDSNANO_SENTINEL_MASTER=m", NULL };
    const char *file_only[] = { path, NULL };
    const char *with_cmd[] = { path, "--replica", "c1:1", "--port", "1", "--replica", "c2:2", "c3:3", NULL };

    cr_assert_eq(load(&cfg, err, file_only, NULL), 0, "%s", err);
    cr_assert_eq(cfg.nreplicas, 2);
    assert_addr(&cfg.replicas[1], "f2", 2);
    config_free(&cfg);

    cr_assert_eq(load(&cfg, err, file_only, env), 0, "%s", err);
    cr_assert_eq(cfg.nreplicas, 2);
    assert_addr(&cfg.replicas[0], "e1", 1);
    assert_addr(&cfg.replicas[1], "e2", 2);
    cr_assert_eq(cfg.nsentinels, 1);
    config_free(&cfg);

    cr_assert_eq(load(&cfg, err, with_cmd, env), 0, "%s", err);
    cr_assert_eq(cfg.nreplicas, 3);
    assert_addr(&cfg.replicas[0], "c1", 1);
    assert_addr(&cfg.replicas[1], "c2", 2);
    assert_addr(&cfg.replicas[2], "c3", 3);
    cr_assert_eq(cfg.nsentinels, 1, "the sentinel list of the environment stays");
    config_free(&cfg);
}

/* ------------------------------------------------------------ precedence */

CONFIG_TEST(precedence_cmdline_env_file_default)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *path = write_file("p.conf", "port 1111\nloglevel debug\ntimeout 5\n");
    char *env[] = { "PATH=/usr/bin", "REDSNANO_PORT=2222", "REDSNANO_LOGLEVEL=warning",
                    "REDSNANO_READ_POLICY=nearest", "REDSNANO_L1_MAXMEMORY=64mb", NULL };
    const char *file_only[] = { path, NULL };
    const char *all[] = { path, "--port", "3333", "--read-policy", "primary", NULL };
    const char *cmd_only[] = { "--port", "3333", NULL };

    cr_assert_eq(load(&cfg, err, NULL, NULL), 0, "%s", err);
    cr_assert_eq(cfg.port, 7379);
    config_free(&cfg);

    cr_assert_eq(load(&cfg, err, file_only, NULL), 0, "%s", err);
    cr_assert_eq(cfg.port, 1111);
    cr_assert_eq(cfg.loglevel, LL_DEBUG);
    cr_assert_eq(cfg.timeout, 5);
    config_free(&cfg);

    cr_assert_eq(load(&cfg, err, file_only, env), 0, "%s", err);
    cr_assert_eq(cfg.port, 2222);
    cr_assert_eq(cfg.loglevel, LL_WARNING);
    cr_assert_eq(cfg.timeout, 5);
    cr_assert_eq(cfg.read_policy, READ_NEAREST);
    cr_assert_eq(cfg.l1_maxmemory, 64LL << 20);
    config_free(&cfg);

    cr_assert_eq(load(&cfg, err, all, env), 0, "%s", err);
    cr_assert_eq(cfg.port, 3333);
    cr_assert_eq(cfg.loglevel, LL_WARNING);
    cr_assert_eq(cfg.timeout, 5);
    cr_assert_eq(cfg.read_policy, READ_PRIMARY);
    config_free(&cfg);

    cr_assert_eq(load(&cfg, err, cmd_only, env), 0, "%s", err);
    cr_assert_eq(cfg.port, 3333);
    cr_assert_eq(cfg.loglevel, LL_WARNING);
    cr_assert_eq(cfg.timeout, 0);
    config_free(&cfg);
}

CONFIG_TEST(env_values_split_like_a_file_line)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    char *env[] = { "REDSNANO_LOGFILE=\"/tmp/with space.log\"", "REDSNANO_PORT=   ",
                    "REDSNANO_L1_COMMANDS=get hget", "REDSNANO_NOT_A_DIRECTIVE=1",
                    "REDSNANO_BIND=", NULL };

    cr_assert_eq(load(&cfg, err, NULL, env), 0, "%s", err);
    cr_assert_str_eq(cfg.logfile, "/tmp/with space.log");
    cr_assert_eq(cfg.port, 7379, "a blank variable counts as unset");
    cr_assert_str_eq(cfg.bind, "127.0.0.1", "an empty variable counts as unset");
    cr_assert_str_eq(cfg.l1_commands, "GET HGET");
    config_free(&cfg);
}

CONFIG_TEST(env_errors_name_the_variable)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    char *bad_port[] = { "REDSNANO_PORT=abc", NULL };
    char *bad_quote[] = { "REDSNANO_BIND=\"x", NULL };
    char *two[] = { "REDSNANO_MAXCLIENTS=1 2", NULL };

    cr_assert_eq(load(&cfg, err, NULL, bad_port), -1);
    cr_assert_str_eq(err, "environment REDSNANO_PORT: port: \"abc\" is not an integer in 0..65535");
    cr_assert_null(cfg.bind);
    cr_assert_eq(load(&cfg, err, NULL, bad_quote), -1);
    cr_assert_str_eq(err, "environment REDSNANO_BIND: unbalanced quotes: a \"...\" value is not closed");
    cr_assert_eq(load(&cfg, err, NULL, two), -1);
    cr_assert_str_eq(err, "environment REDSNANO_MAXCLIENTS: maxclients: expects one value, got 2 "
                          "(quote a value that contains spaces)");
}

/* ------------------------------------------------------------ command line */

CONFIG_TEST(command_line_directives)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *args[] = { "--port", "6380", "--bind", "::1", "--l1-commands", "get", "zrange",
                           "--logfile", "", "--primary", "[::1]:7000", "--unixsocket", "/tmp/s",
                           "--PORT", "6381", NULL };

    cr_assert_eq(load(&cfg, err, args, NULL), 0, "%s", err);
    cr_assert_eq(cfg.port, 6381, "directive names are case insensitive; the last wins");
    cr_assert_str_eq(cfg.bind, "::1");
    cr_assert_str_eq(cfg.l1_commands, "GET ZRANGE");
    cr_assert(cfg.logfile == NULL || cfg.logfile[0] == '\0');
    assert_addr(&cfg.primary, "::1", 7000);
    cr_assert_null(cfg.config_file);
    config_free(&cfg);
}

CONFIG_TEST(command_line_errors)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *bad_value[] = { "--port", "abc", NULL };
    const char *unknown[] = { "--prot", "1", NULL };
    const char *no_value[] = { "--port", "--bind", "::1", NULL };
    const char *stray[] = { "--test-config", "a.conf", "extra", NULL };
    const char *stray2[] = { "a.conf", "b.conf", NULL };
    const char *twice[] = { "a.conf", "--config", "b.conf", NULL };
    const char *config_arity[] = { "--config", NULL };
    const char *negative[] = { "--port", "-5", NULL };

    cr_assert_eq(load(&cfg, err, bad_value, NULL), -1);
    cr_assert_str_eq(err, "command line: --port: \"abc\" is not an integer in 0..65535");
    cr_assert_eq(load(&cfg, err, unknown, NULL), -1);
    cr_assert_str_eq(err, "command line: unknown directive --prot (did you mean --port?)");
    cr_assert_eq(load(&cfg, err, no_value, NULL), -1);
    cr_assert_str_eq(err, "command line: --port: expects a value: an integer in 0..65535");
    cr_assert_eq(load(&cfg, err, stray, NULL), -1);
    cr_assert_str_eq(err, "command line: --test-config takes at most the config file, got extra");
    cr_assert_eq(load(&cfg, err, stray2, NULL), -1);
    cr_assert(strstr(err, "command line: unexpected argument b.conf") == err, "%s", err);
    cr_assert_eq(load(&cfg, err, twice, NULL), -1);
    cr_assert_str_eq(err, "command line: two config files given (a.conf and b.conf)");
    cr_assert_eq(load(&cfg, err, config_arity, NULL), -1);
    cr_assert_str_eq(err, "command line: --config takes one file name, got 0 values");
    cr_assert_eq(load(&cfg, err, negative, NULL), -1);
    cr_assert_str_eq(err, "command line: --port: \"-5\" is not an integer in 0..65535");
    cr_assert_null(cfg.bind);
}

CONFIG_TEST(config_file_by_option_or_first_argument)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *path = write_file("c.conf", "port 4444\n");
    const char *by_option[] = { "--port", "5555", "--config", path, NULL };
    const char *first[] = { path, "--test-config", NULL };

    cr_assert_eq(load(&cfg, err, by_option, NULL), 0, "%s", err);
    cr_assert_eq(cfg.port, 5555, "the command line wins over the file wherever --config is");
    cr_assert_str_eq(cfg.config_file, path);
    cr_assert_not(cfg.test_config);
    config_free(&cfg);

    cr_assert_eq(load(&cfg, err, first, NULL), 0, "%s", err);
    cr_assert_eq(cfg.port, 4444);
    cr_assert_str_eq(cfg.config_file, path);
    cr_assert(cfg.test_config);
    config_free(&cfg);

    /* `redsnano --test-config FILE` checks FILE. */
    const char *test_file[] = { "--test-config", path, NULL };
    cr_assert_eq(load(&cfg, err, test_file, NULL), 0, "%s", err);
    cr_assert_eq(cfg.port, 4444);
    cr_assert(cfg.test_config);
    config_free(&cfg);
}

CONFIG_TEST(test_config_flag)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *ok[] = { "--test-config", NULL };
    const char *bad[] = { "--test-config", "--port", "x", NULL };

    cr_assert_eq(load(&cfg, err, ok, NULL), 0, "%s", err);
    cr_assert(cfg.test_config);
    config_free(&cfg);
    cr_assert_eq(load(&cfg, err, bad, NULL), -1, "a bad config still fails: main exits 1");
}

CONFIG_TEST(help_version_and_markdown_return_1)
{
    const char *help[] = { "--port", "bad", "--help", NULL };
    const char *h[] = { "-h", NULL };
    const char *version[] = { "--version", NULL };
    const char *v[] = { "-v", NULL };
    const char *md[] = { "--directives-markdown", NULL };
    char names[CONFIG_T_MAX_DIRECTIVES][64];
    int n = directive_names(names, CONFIG_T_MAX_DIRECTIVES);
    char *out;

    cr_assert_eq(load_capturing_stdout(help, &out), 1);
    cr_assert(strncmp(out, "Usage: redsnano", 15) == 0, "%s", out);
    cr_assert(strstr(out, "  l1-revalidate-after") != NULL);
    free(out);
    unlink(tmpfiles[--ntmpfiles]);
    free(tmpfiles[ntmpfiles]);

    cr_assert_eq(load_capturing_stdout(h, &out), 1);
    cr_assert(strncmp(out, "Usage: redsnano", 15) == 0, "%s", out);
    free(out);
    unlink(tmpfiles[--ntmpfiles]);
    free(tmpfiles[ntmpfiles]);

    cr_assert_eq(load_capturing_stdout(version, &out), 1);
    cr_assert(strncmp(out, "redsnano ", 9) == 0 && strchr(out, '\n') == out + strlen(out) - 1,
              "%s", out);
    free(out);
    unlink(tmpfiles[--ntmpfiles]);
    free(tmpfiles[ntmpfiles]);

    cr_assert_eq(load_capturing_stdout(v, &out), 1);
    cr_assert(strncmp(out, "redsnano ", 9) == 0, "%s", out);
    free(out);
    unlink(tmpfiles[--ntmpfiles]);
    free(tmpfiles[ntmpfiles]);

    cr_assert_eq(load_capturing_stdout(md, &out), 1);
    cr_assert(strncmp(out, "| directive | default | meaning |\n|---|---|---|\n", 47) == 0, "%s", out);
    for (int i = 0; i < n; i++) {
        char row[80];
        snprintf(row, sizeof(row), "\n| `%.63s` | ", names[i]);
        cr_assert(strstr(out, row) != NULL, "no markdown row for %s", names[i]);
    }
    cr_assert(strstr(out, "primary\\|replica\\|prefer-replica") != NULL, "pipes are escaped");
    int rows = 0;
    for (const char *p = out; (p = strchr(p, '\n')) != NULL; p++)
        rows++;
    cr_assert_eq(rows, n + 2, "one row per directive");
    free(out);
}

CONFIG_TEST(directive_list_has_every_directive)
{
    char names[CONFIG_T_MAX_DIRECTIVES][64];
    int n = directive_names(names, CONFIG_T_MAX_DIRECTIVES);

    cr_assert_eq(n, 65);
    cr_assert_str_eq(names[0], "port");
    for (int i = 0; i < n; i++) {
        const char *argv[] = { "x" };
        char err[CONFIG_ERR_LEN];
        struct config cfg;
        config_defaults(&cfg);
        err[0] = '\0';
        config_set(&cfg, names[i], 1, argv, err, sizeof(err));
        cr_assert(strstr(err, "unknown directive") == NULL || err[0] == '\0', "%s", names[i]);
        config_free(&cfg);
    }
}

/* ------------------------------------------------------------ cross checks */

CONFIG_TEST(nothing_to_listen_on_is_an_error)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *args[] = { "--port", "0", NULL };

    cr_assert_eq(load(&cfg, err, args, NULL), -1);
    cr_assert_str_eq(err, "configuration: port is 0 and unixsocket is not set: "
                          "redsnano would accept no clients");
}

CONFIG_TEST(sentinel_needs_a_master_name)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *no_name[] = { "--sentinel", "127.0.0.1:26379", NULL };
    const char *no_sentinel[] = { "--sentinel-master", "mymaster", NULL };
    const char *both[] = { "--sentinel", "127.0.0.1:26379", "--sentinel-master", "mymaster",
                           "--sentinel-password", "pw", NULL };

    cr_assert_eq(load(&cfg, err, no_name, NULL), -1);
    cr_assert(strstr(err, "sentinel-master is not") != NULL, "%s", err);
    cr_assert_eq(load(&cfg, err, no_sentinel, NULL), -1);
    cr_assert(strstr(err, "no sentinel is") != NULL, "%s", err);
    cr_assert_eq(load(&cfg, err, both, NULL), 0, "%s", err);
    cr_assert_str_eq(cfg.sentinel_master, "mymaster");
    cr_assert_str_eq(cfg.sentinel_password, "pw");
    config_free(&cfg);
}

CONFIG_TEST(user_lines_keep_their_rules_in_order_and_bad_rules_get_redis_message)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *good[] = { "--user", "alice", "on", ">pw", "~a:*", "+@read",
                           "--requirepass", "top", NULL };
    const char *bad[] = { "--user", "bob", "on", "+nosuchcommand", NULL };
    const char *text = "user alice on >pw ~a:*\nuser alice +get\nuser carol off\n";

    cr_assert_eq(load(&cfg, err, good, NULL), 0, "%s", err);
    cr_assert_eq(cfg.users.n, 1);
    cr_assert_str_eq(cfg.users.v[0].name, "alice");
    cr_assert_eq(cfg.users.v[0].nrules, 4);
    cr_assert_str_eq(cfg.users.v[0].rules[3], "+@read");
    cr_assert_str_eq(cfg.requirepass, "top");
    config_free(&cfg);
    cr_assert_eq(load(&cfg, err, bad, NULL), -1);
    cr_assert(strstr(err, "user bob: ERR Error in ACL SETUSER modifier '+nosuchcommand'") != NULL,
              "%s", err);
    cr_assert_eq(load_text(&cfg, err, text), 0, "%s", err);
    cr_assert_eq(cfg.users.n, 3);
    cr_assert_str_eq(cfg.users.v[1].rules[0], "+get");
    config_free(&cfg);
}

CONFIG_TEST(tls_and_backend_credentials_are_checked_together)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *no_cert[] = { "--tls-port", "6380", NULL };
    const char *no_ca[] = { "--tls-port", "6380", "--tls-cert-file", "/x.crt", NULL };
    const char *no_auth[] = { "--tls-port", "6380", "--tls-cert-file", "/x.crt",
                              "--tls-auth-clients", "no", "--port", "0", NULL };
    const char *user_only[] = { "--backend-user", "proxy", NULL };

    cr_assert_eq(load(&cfg, err, no_cert, NULL), -1);
    cr_assert(strstr(err, "tls-cert-file is not") != NULL, "%s", err);
    cr_assert_eq(load(&cfg, err, no_ca, NULL), -1);
    cr_assert(strstr(err, "needs tls-ca-cert-file") != NULL, "%s", err);
    cr_assert_eq(load(&cfg, err, no_auth, NULL), 0, "%s", err);
    cr_assert_eq(cfg.tls_port, 6380);
    cr_assert_eq(cfg.port, 0, "port 0 leaves only TLS");
    cr_assert_eq(cfg.tls_auth_clients, 1);
    config_free(&cfg);
    cr_assert_eq(load(&cfg, err, user_only, NULL), -1);
    cr_assert(strstr(err, "backend-password is not") != NULL, "%s", err);
}

/* ------------------------------------------------------------ config_set / free */

CONFIG_TEST(config_set_sets_one_directive)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *one[] = { "6390" };
    const char *bad[] = { "x" };
    const char *two[] = { "a:1", "b:2" };

    config_defaults(&cfg);
    cr_assert_eq(config_set(&cfg, "port", 1, one, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.port, 6390);
    cr_assert_eq(config_set(&cfg, "port", 1, bad, err, sizeof(err)), -1);
    cr_assert_eq(cfg.port, 6390, "a bad value changes nothing");
    cr_assert_str_eq(err, "port: \"x\" is not an integer in 0..65535");
    cr_assert_eq(config_set(&cfg, "replica", 2, two, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_set(&cfg, "replica", 1, bad, err, sizeof(err)), -1);
    cr_assert_eq(cfg.nreplicas, 2, "a bad address appends nothing");
    cr_assert_eq(config_set(&cfg, "nope", 1, one, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "unknown directive nope (redsnano --help lists them)");
    config_free(&cfg);
}

CONFIG_TEST(config_free_frees_everything_and_may_repeat)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *path = write_file("all.conf",
        "bind ::1\nunixsocket /tmp/x.sock\nlogfile /tmp/x.log\nsentinel a:1\n"
        "sentinel-master m\nsentinel-password p\nl1-commands GET HGET\n"
        "bind 0.0.0.0\nlogfile /tmp/y.log\n");
    const char *args[] = { path, "--bind", "127.0.0.2", "--l1-commands", "ZRANGE", NULL };

    cr_assert_eq(load(&cfg, err, args, NULL), 0, "%s", err);
    cr_assert_str_eq(cfg.bind, "127.0.0.2");
    config_free(&cfg);
    cr_assert_null(cfg.bind);
    cr_assert_null(cfg.config_file);
    config_free(&cfg);                   /* a freed config frees nothing twice */
    config_defaults(&cfg);               /* and may be reused */
    cr_assert_str_eq(cfg.bind, "127.0.0.1");
    config_free(&cfg);
    /* leaks, if any, are reported by ASan's leak checker when this test exits */
}

/* ------------------------------------------------------------ redsnano.conf */

/* The shipped example, found from this file's path. NULL if not found. */
static FILE *open_example(void)
{
    static const char *const tries[] = { "redsnano.conf", "../redsnano.conf", "../../redsnano.conf" };
    char path[PATH_MAX];
    const char *cut = strstr(__FILE__, "tests/unit/test_config.c");
    FILE *fp = NULL;

    if (cut != NULL) {
        snprintf(path, sizeof(path), "%.*sredsnano.conf", (int)(cut - __FILE__), __FILE__);
        fp = fopen(path, "r");
    }
    for (size_t i = 0; fp == NULL && i < sizeof(tries) / sizeof(tries[0]); i++)
        fp = fopen(tries[i], "r");
    return fp;
}

CONFIG_TEST(example_file_documents_every_directive_with_its_default)
{
    static const char *const no_default[] = {
        "unixsocket", "replica", "sentinel", "sentinel-master", "sentinel-password",
        "backend-user", "backend-password", "requirepass", "user", "tls-cert-file", "tls-key-file",
        "tls-ca-cert-file", "tls-protocols", "tls-ciphers", "tls-ciphersuites",
        "backend-tls-ca-cert-file", "backend-tls-cert-file", "backend-tls-key-file",
        "backend-tls-server-name", NULL };
    char names[CONFIG_T_MAX_DIRECTIVES][64], line[1024], err[CONFIG_ERR_LEN];
    bool seen[CONFIG_T_MAX_DIRECTIVES] = { false };
    int n = directive_names(names, CONFIG_T_MAX_DIRECTIVES);
    struct config loaded, uncommented, def;
    FILE *fp = open_example();
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);

    if (fp == NULL) {
        fclose(mem);
        free(text);
        tmp_teardown();                 /* a skipped test may not reach fini */
        cr_skip_test("redsnano.conf not found from %s", __FILE__);
    }
    config_defaults(&def);
    config_defaults(&uncommented);
    while (fgets(line, sizeof(line), fp) != NULL) {
        fputs(line, mem);
        if (strncmp(line, "# ", 2) != 0)
            continue;
        for (int i = 0; i < n; i++) {
            size_t l = strlen(names[i]);
            if (strncmp(line + 2, names[i], l) != 0 || line[2 + l] != ' ')
                continue;
            seen[i] = true;
            /* "# name value": the value must parse; a default line must be the default */
            bool skip = false;
            for (int k = 0; no_default[k]; k++)
                skip |= strcmp(no_default[k], names[i]) == 0;
            char *value = line + 2 + l + 1;
            value[strcspn(value, "\n")] = '\0';
            const char *tmp = write_file("one.conf", "");
            FILE *one = fopen(tmp, "w");
            fprintf(one, "%s %s\n", names[i], value);
            fclose(one);
            /* sentinel-master needs a sentinel; cluster excludes one */
            bool cluster = strcmp(names[i], "cluster") == 0;
            const char *args[] = { tmp, "--unixsocket", "/tmp/s", cluster ? NULL : "--sentinel", "a:1",
                                   "--sentinel-master", "m", NULL };
            struct config c;
            cr_assert_eq(load(&c, err, args, NULL), 0, "example line \"%s %s\": %s",
                         names[i], value, err);
            config_free(&c);
            unlink(tmpfiles[--ntmpfiles]);
            free(tmpfiles[ntmpfiles]);
            if (!skip) {
                const char *argv[1] = { value };
                char *unq = NULL;
                if (value[0] == '"') {         /* the only quoted default: logfile "" */
                    cr_assert_str_eq(value, "\"\"");
                    unq = strdup("");
                    argv[0] = unq;
                }
                cr_assert_eq(config_set(&uncommented, names[i], 1, argv, err, sizeof(err)), 0,
                             "%s", err);
                free(unq);
            }
        }
    }
    fclose(fp);
    fclose(mem);
    for (int i = 0; i < n; i++)
        cr_assert(seen[i], "redsnano.conf does not show \"# %s <default>\"", names[i]);
    assert_config_eq(&uncommented, &def);

    /* as shipped (everything commented out) it loads the defaults */
    cr_assert_eq(load_text(&loaded, err, text), 0, "%s", err);
    assert_config_eq(&loaded, &def);
    free(text);
    config_free(&loaded);
    config_free(&uncommented);
    config_free(&def);
}

/* ------------------------------------------------------ issue 9: client limits */

CONFIG_TEST(client_output_buffer_limit_has_redis_defaults_and_syntax)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];

    config_defaults(&cfg);
    cr_assert_eq(cfg.client_obuf[OBUF_NORMAL].hard, 0);
    cr_assert_eq(cfg.client_obuf[OBUF_PUBSUB].hard, 32LL << 20);
    cr_assert_eq(cfg.client_obuf[OBUF_PUBSUB].soft, 8LL << 20);
    cr_assert_eq(cfg.client_obuf[OBUF_PUBSUB].soft_seconds, 60);
    cr_assert_eq(cfg.client_obuf[OBUF_REPLICA].hard, 256LL << 20);

    /* one class per line, four words; only that class changes */
    const char *one[] = { "pubsub", "1mb", "512kb", "5" };
    cr_assert_eq(config_set(&cfg, "client-output-buffer-limit", 4, one, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.client_obuf[OBUF_PUBSUB].hard, 1LL << 20);
    cr_assert_eq(cfg.client_obuf[OBUF_PUBSUB].soft, 512LL << 10);
    cr_assert_eq(cfg.client_obuf[OBUF_PUBSUB].soft_seconds, 5);
    cr_assert_eq(cfg.client_obuf[OBUF_REPLICA].hard, 256LL << 20);

    /* several classes in one value; "slave" is replica */
    const char *two[] = { "normal 10mb 5mb 10 slave 1gb 0 0" };
    cr_assert_eq(config_set(&cfg, "client-output-buffer-limit", 1, two, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.client_obuf[OBUF_NORMAL].hard, 10LL << 20);
    cr_assert_eq(cfg.client_obuf[OBUF_NORMAL].soft_seconds, 10);
    cr_assert_eq(cfg.client_obuf[OBUF_REPLICA].hard, 1LL << 30);

    /* a bad group changes nothing */
    const char *bad[] = { "normal 1mb 1mb 1 bogus 1 1 1" };
    cr_assert_eq(config_set(&cfg, "client-output-buffer-limit", 1, bad, err, sizeof(err)), -1);
    cr_assert(strstr(err, "\"bogus\"") != NULL, "%s", err);
    cr_assert_eq(cfg.client_obuf[OBUF_NORMAL].hard, 10LL << 20);
    const char *three[] = { "normal", "1mb", "1mb" };
    cr_assert_eq(config_set(&cfg, "client-output-buffer-limit", 3, three, err, sizeof(err)), -1);
    config_free(&cfg);
}

CONFIG_TEST(maxmemory_clients_takes_bytes_or_a_percentage)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];

    config_defaults(&cfg);
    cr_assert_eq(cfg.maxmemory_clients.bytes, 0);
    cr_assert_eq(cfg.maxmemory_clients.percent, 0);
    cr_assert_eq(cfg.client_backpressure, 16LL << 20);
    const char *mb[] = { "256mb" };
    cr_assert_eq(config_set(&cfg, "maxmemory-clients", 1, mb, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.maxmemory_clients.bytes, 256LL << 20);
    const char *pct[] = { "5%" };
    cr_assert_eq(config_set(&cfg, "maxmemory-clients", 1, pct, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.maxmemory_clients.percent, 5);
    cr_assert_eq(cfg.maxmemory_clients.bytes, 0);
    const char *over[] = { "101%" };
    cr_assert_eq(config_set(&cfg, "maxmemory-clients", 1, over, err, sizeof(err)), -1);
    const char *zero[] = { "0%" };
    cr_assert_eq(config_set(&cfg, "maxmemory-clients", 1, zero, err, sizeof(err)), -1);
    cr_assert_eq(cfg.maxmemory_clients.percent, 5, "a bad value changes nothing");
    config_free(&cfg);
}

CONFIG_TEST(values_in_force_render_as_file_text)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN], v[512];
    const char *args[] = { "--replica", "r1:6380", "--replica", "[::1]:6381", "--read-policy", "nearest",
                           "--l1-maxmemory", "1kb", "--allow-admin-commands", "yes", NULL };

    cr_assert_eq(load(&cfg, err, args, NULL), 0, "%s", err);
    int found = 0;
    for (int i = 0; i < config_ndirectives(); i++) {
        const char *name = config_directive_name(i);
        config_value(&cfg, i, v, sizeof(v));
        if (strcmp(name, "replica") == 0)
            { cr_assert_str_eq(v, "r1:6380 [::1]:6381"); found++; }
        else if (strcmp(name, "read-policy") == 0)
            { cr_assert_str_eq(v, "nearest"); found++; }
        else if (strcmp(name, "l1-maxmemory") == 0)
            { cr_assert_str_eq(v, "1024"); found++; }
        else if (strcmp(name, "allow-admin-commands") == 0)
            { cr_assert_str_eq(v, "yes"); found++; }
        else if (strcmp(name, "bind") == 0)
            { cr_assert_str_eq(v, "127.0.0.1"); found++; }
        else if (strcmp(name, "unixsocket") == 0)
            { cr_assert_str_eq(v, ""); found++; }
    }
    cr_assert_eq(found, 6);
    cr_assert_null(config_directive_name(config_ndirectives()));
    config_free(&cfg);
}

CONFIG_TEST(swap_moves_one_value_and_its_ownership)
{
    struct config a, b;
    char err[CONFIG_ERR_LEN];
    const char *args_a[] = { "--bind", "10.0.0.1", "--replica", "r1:1", "--port", "1", NULL };
    const char *args_b[] = { "--bind", "10.0.0.2", "--port", "2", NULL };
    int bind = -1, replica = -1, port = -1;

    cr_assert_eq(load(&a, err, args_a, NULL), 0, "%s", err);
    cr_assert_eq(load(&b, err, args_b, NULL), 0, "%s", err);
    for (int i = 0; i < config_ndirectives(); i++) {
        if (strcmp(config_directive_name(i), "bind") == 0)
            bind = i;
        if (strcmp(config_directive_name(i), "replica") == 0)
            replica = i;
        if (strcmp(config_directive_name(i), "port") == 0)
            port = i;
    }
    config_swap(&a, &b, bind);
    config_swap(&a, &b, replica);
    cr_assert_str_eq(a.bind, "10.0.0.2");
    cr_assert_str_eq(b.bind, "10.0.0.1");
    cr_assert_eq(a.nreplicas, 0);
    cr_assert_eq(b.nreplicas, 1);
    cr_assert_str_eq(b.replicas[0].host, "r1");
    cr_assert_eq(a.port, 1, "other directives untouched");
    cr_assert_eq(b.port, 2);
    (void)port;
    config_free(&a);
    config_free(&b);                    /* each string freed once (leak check, ASan) */
}
