/* The shim in a non-PIE executable that takes malloc's address (tests/ts_nopie.c): dlsym's
 * malloc is then a canonical PLT stub in the executable, and the shim must still see glibc's
 * malloc behind it (rssprobe_origin.c walks the link map) and trim; with jemalloc preloaded, before
 * or after the shim, it must stand down naming jemalloc.
 *
 *   test_nopie glibc      the shim runs and trims
 *   test_nopie jemalloc   the stand-down; exit 77 (ctest SKIP_RETURN_CODE) without libjemalloc */
#define _GNU_SOURCE
#include "check_compat.h"
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

#define PRELOAD "LD_PRELOAD=" TS_SHIM_PATH
#define JEMALLOC "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"

static struct ts_run r;

static void expect_ok(const struct ts_run *x, const char *what)
{
    ck_assert_msg(!x->timed_out, "%s: timed out after %.1f s; stderr: %s", what, x->secs, x->err);
    ck_assert_msg(x->exited && x->code == 0, "%s: %s %d; stderr: %s", what,
                  x->exited ? "exit status" : "signal", x->code, x->err);
}

/* The helper must be what it stands for, or the tests below prove nothing: an ET_EXEC file
 * (a PIE is ET_DYN), whose dlsym(RTLD_DEFAULT, "malloc") is the stub in the executable. */
static void expect_non_pie(const struct ts_run *x)
{
    Elf64_Ehdr eh;
    FILE *f = fopen(TS_NOPIE_PATH, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", TS_NOPIE_PATH);
    size_t n = fread(&eh, 1, sizeof eh, f);
    fclose(f);
    ck_assert_uint_eq(n, sizeof eh);
    ck_assert_msg(memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0, "%s is not ELF", TS_NOPIE_PATH);
    ck_assert_msg(eh.e_type == ET_EXEC, "%s has e_type %u, not ET_EXEC (2): built as a PIE?",
                  TS_NOPIE_PATH, (unsigned)eh.e_type);
    ck_assert_msg(strstr(x->out, "\"dlsym_malloc_in_executable\":1") != NULL,
                  "dlsym's malloc is not a stub in the executable here: %s", x->out);
}

START_TEST(shim_runs_and_trims)
{
    char *argv[] = {TS_NOPIE_PATH, "2000", "3000", NULL};
    char *env[] = {PRELOAD, "TRIMSHIM_VERBOSE=1", NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 120), 0);
    expect_ok(&r, "ts_nopie under the shim");
    expect_non_pie(&r);
    ck_assert_msg(strstr(r.err, "standing down") == NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "]: running: policy adaptive") != NULL, "%s", r.err);
    /* 2000 x 64 KiB = 131 MB freed between live nodes, then 3 s of sleep: the shim trims (the
     * nodes' pages stay, about 8 MB) */
    ck_assert_msg(strstr(r.err, "]: trim 1 (quiet): returned ") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.out, "\"kept\":2000") != NULL, "%s", r.out);
}
END_TEST

START_TEST(stands_down_under_jemalloc)
{
    for (int order = 0; order < 2; order++) {
        char pre[512];
        snprintf(pre, sizeof pre, "LD_PRELOAD=%s %s", order ? TS_SHIM_PATH : JEMALLOC,
                 order ? JEMALLOC : TS_SHIM_PATH);
        char *argv[] = {TS_NOPIE_PATH, "200", "1000", NULL};
        char *env[] = {pre, "TRIMSHIM_VERBOSE=1", NULL};
        ck_assert_int_eq(ts_run(&r, argv, env, 120), 0);
        expect_ok(&r, pre);
        ck_assert_msg(strstr(r.err, "standing down: malloc is not glibc's (it comes from " JEMALLOC
                                    ")") != NULL,
                      "%s: %s", pre, r.err);
        ck_assert_msg(strstr(r.err, "running") == NULL, "%s: %s", pre, r.err);
        ck_assert_msg(strstr(r.err, "trim 1") == NULL, "%s: %s", pre, r.err);
    }
}
END_TEST

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "glibc";
    Suite *su = suite_create("nopie");
    TCase *tc = tcase_create(what);
    tcase_set_timeout(tc, 300);
    if (!strcmp(what, "glibc")) {
        tcase_add_test(tc, shim_runs_and_trims);
    } else if (!strcmp(what, "jemalloc")) {
        if (!ts_file_exists(JEMALLOC)) {
            printf("SKIP: %s is not installed\n", JEMALLOC);
            return 77;
        }
        tcase_add_test(tc, stands_down_under_jemalloc);
    } else {
        fprintf(stderr, "usage: test_nopie glibc|jemalloc\n");
        return 2;
    }
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
