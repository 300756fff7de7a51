/*
 * tests/unit/test_l1.c — l1/ as the proxy sees it when the L1 is off or
 * not started: everything bypasses, holds are harmless, and the report
 * lists every counter of the declared list. Links the l1 library and the
 * layers below it.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "base/buf.h"
#include "l1/l1.h"
#include "protocol/command.h"

Test(l1_off, bypasses_and_holds_nothing)
{
    const char *argv[] = { "GET", "k" };
    size_t argvlen[] = { 3, 1 };
    struct reqmsg m = { .argc = 2, .argv = argv, .argvlen = argvlen };

    cr_assert_eq(l1_on(), 0);
    cr_assert_eq(l1_command_id(&m), 0, "no command is cacheable while off");
    l1_write_end(NULL);                 /* releasing no hold is a no-op */
    cr_assert_null(l1_token_join(NULL, NULL));
}

Test(l1_off, report_lists_every_declared_counter)
{
    struct buf b = { 0 };
    l1_report(&b);
    cr_assert_not_null(b.data);
    buf_append(&b, "", 1);
    cr_assert(strstr(b.data, "# L1\r\nl1_enabled:0\r\n") == b.data);
    cr_assert_not_null(strstr(b.data, "l1_entries:0\r\n"));
#define T_EXPECT_LINE(name, help) \
    cr_assert_not_null(strstr(b.data, "\r\nl1_" #name ":0\r\n"), "no line for " #name);
    L1_STATS(T_EXPECT_LINE)
#undef T_EXPECT_LINE
    buf_free(&b);
}
