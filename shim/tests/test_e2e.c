/* End-to-end Check tests: real programs run with LD_PRELOAD=libtrimshim.so. RSS after the seed
 * scenario goes quiet, stand-down under other allocators and valgrind, a static binary, exit and
 * fork while a trim runs, trims racing forks and explicit malloc_trim calls. */
#define _GNU_SOURCE
#include "check_compat.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

#define PRELOAD "LD_PRELOAD=" TS_SHIM_PATH

static struct ts_run r, ref, base;

static void expect_ok(const struct ts_run *x, const char *what)
{
    ck_assert_msg(!x->timed_out, "%s: timed out after %.1f s; stderr: %s", what, x->secs, x->err);
    ck_assert_msg(x->exited && x->code == 0, "%s: %s %d; stderr: %s", what,
                  x->exited ? "exit status" : "signal", x->code, x->err);
}

/* ------------------------------------------------------------------------------------------ */
/* RSS: the seed scenario (64 KiB blocks with list nodes between, freed, program sleeps) */

START_TEST(seed_rss_after_quiet)
{
    /* 2000 x 64 KiB = 128 MB: big enough that the shim's own pages (100-250 KB of RSS: its code
     * and the libc code it touches, its thread's stack) stay well inside the 5 %, small enough
     * for a loaded box */
    const char *count = "2000";
    char *ref_argv[] = {TS_HELPER_PATH, "seed", (char *)count, "--trim", NULL};
    ck_assert_int_eq(ts_run(&ref, ref_argv, NULL, 300), 0);
    expect_ok(&ref, "reference");
    long long ref_kb = ts_json_num(ref.out, "after_trim_kb", -1);
    long long ref_trim_ms = ts_json_num(ref.out, "trim_ms", -1);
    ck_assert_int_gt(ref_kb, 0);
    long long target = ref_kb * 105 / 100;
    char tgt[32];
    snprintf(tgt, sizeof tgt, "%lld", target);
    char *argv[] = {TS_HELPER_PATH, "seed",      (char *)count, "--idle", "60000",
                    "--target-kb",  tgt,         "--until-target", NULL};
    char *env[] = {PRELOAD, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "shim");
    long long reach = ts_json_num(r.out, "reach_ms", -1);
    long long start = ts_json_num(r.out, "trim_start_ms", -1);
    long long after = ts_json_num(r.out, "after_idle_kb", -1);
    long long freed_kb = ts_json_num(r.out, "after_free_kb", -1);
    fprintf(stderr,
            "seed_rss_after_quiet: explicit trim %lld kB in %lld ms; shim: after free %lld kB, "
            "trim started %lld ms after the free, <= 1.05x at %lld ms, after idle %lld kB "
            "(%.3fx)\n",
            ref_kb, ref_trim_ms, freed_kb, start, reach, after, (double)after / (double)ref_kb);
    ck_assert_msg(reach >= 0, "never reached %lld kB: %s", target, r.out);
    ck_assert_int_le(after, target);
    ck_assert_int_ge(start, 0);
    /* the shim's own delay (detecting quiet) is at most a second; the trim itself costs what
     * malloc_trim costs on this machine (ref_trim_ms), which the shim cannot change */
    ck_assert_msg(start <= 1000, "trim started %lld ms after the free", start);
    ck_assert_msg(reach <= 2000 + 3 * ref_trim_ms, "reached after %lld ms (explicit trim %lld ms)",
                  reach, ref_trim_ms);
}
END_TEST

START_TEST(policy_off_and_interval)
{
    char *argv[] = {TS_HELPER_PATH, "seed", "300", "--idle", "1500", NULL};
    char *off[] = {PRELOAD, "TRIMSHIM_POLICY=off", NULL};
    ck_assert_int_eq(ts_run(&r, argv, off, 120), 0);
    expect_ok(&r, "off");
    ck_assert_int_eq(ts_json_num(r.out, "bg_trims", -1), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\"shim\":\"2\""));
    char *iv[] = {PRELOAD, "TRIMSHIM_POLICY=interval", "TRIMSHIM_INTERVAL_MS=200", NULL};
    char *argv3[] = {TS_HELPER_PATH, "seed", "300", "--idle", "3000", NULL};
    ck_assert_int_eq(ts_run(&r, argv3, iv, 120), 0);
    expect_ok(&r, "interval");
    ck_assert_int_ge(ts_json_num(r.out, "bg_trims", -1), 1);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* stand down */

static const char *const allocators[] = {
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
};

START_TEST(stands_down_over_other_allocators)
{
    char *work[] = {TS_HELPER_PATH, "work", NULL};
    ck_assert_int_eq(ts_run(&base, work, NULL, 60), 0);
    expect_ok(&base, "baseline");
    int tested = 0;
    for (size_t a = 0; a < sizeof allocators / sizeof *allocators; a++) {
        if (!ts_file_exists(allocators[a]))
            continue;
        for (int order = 0; order < 2; order++) {
            char pre[512];
            if (order == 0)
                snprintf(pre, sizeof pre, "LD_PRELOAD=%s %s", allocators[a], TS_SHIM_PATH);
            else
                snprintf(pre, sizeof pre, "LD_PRELOAD=%s %s", TS_SHIM_PATH, allocators[a]);
            char *env[] = {pre, "TRIMSHIM_VERBOSE=1", NULL};
            ck_assert_int_eq(ts_run(&r, work, env, 60), 0);
            expect_ok(&r, pre);
            ck_assert_str_eq(r.out, base.out);
            ck_assert_msg(strstr(r.err, "standing down: malloc is not glibc's") != NULL, "%s: %s",
                          pre, r.err);
            const char *name = strrchr(allocators[a], '/') + 1;
            ck_assert_msg(strstr(r.err, name) != NULL, "%s: %s", pre, r.err);
            ck_assert_ptr_null(strstr(r.err, "running"));
            char *state[] = {TS_HELPER_PATH, "seed", "200", NULL};
            ck_assert_int_eq(ts_run(&r, state, env, 60), 0);
            expect_ok(&r, pre);
            ck_assert_msg(strstr(r.out, "\"shim\":\"3\"") != NULL, "%s: %s", pre, r.out);
            tested++;
        }
    }
    if (!tested)
        fprintf(stderr, "stands_down_over_other_allocators: no other allocator installed\n");
}
END_TEST

START_TEST(stands_down_under_valgrind)
{
    const char *vg = "/usr/bin/valgrind";
    if (!ts_file_exists(vg)) {
        fprintf(stderr, "stands_down_under_valgrind: no valgrind, skipped\n");
        return;
    }
    char *argv[] = {(char *)vg, "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=all",
                    "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
                    TS_HELPER_PATH, "seed", "200", "--idle", "500", NULL};
    char *env[] = {PRELOAD, "TRIMSHIM_VERBOSE=1", NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "valgrind");
    ck_assert_msg(strstr(r.err, "standing down: running under valgrind") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "possibly lost: 0 bytes") != NULL ||
                      strstr(r.err, "possibly lost") == NULL,
                  "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "ERROR SUMMARY: 0 errors"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"shim\":\"4\""));
}
END_TEST

START_TEST(static_binary_is_not_reached)
{
    const char *st = TS_STATIC_HELPER_PATH;
    if (!st[0]) {
        fprintf(stderr, "static_binary_is_not_reached: no static libc, skipped\n");
        return;
    }
    char *argv[] = {(char *)st, "state", NULL};
    char *env[] = {PRELOAD, "TRIMSHIM_VERBOSE=1", NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 60), 0);
    expect_ok(&r, "static");
    ck_assert_ptr_nonnull(strstr(r.out, "\"shim\":\"absent\""));
    ck_assert_str_eq(r.err, ""); /* the preload never ran */
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* exit, fork, racing trims */

START_TEST(exit_during_api_trim)
{
    char *argv[] = {TS_HELPER_PATH, "exit-during-trim", "60000", "api", NULL};
    char *env[] = {PRELOAD, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "exit-during-trim api");
    ck_assert_ptr_nonnull(strstr(r.out, "\"atexit\":1"));
    ck_assert_int_eq(ts_json_num(r.out, "api_done", -1), 0); /* it was still running */
}
END_TEST

START_TEST(exit_during_background_trim)
{
    char path[] = "/tmp/trimshim-e2e-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char log[128];
    snprintf(log, sizeof log, "TRIMSHIM_LOG=%s", path);
    for (int noalloc = 0; noalloc < 2; noalloc++) {
        char *argv[] = {TS_HELPER_PATH, "exit-during-trim", "60000", "bg",
                        noalloc ? "noalloc" : "alloc", NULL};
        char *env[] = {PRELOAD, log, "TRIMSHIM_VERBOSE=2", NULL};
        fd = open(path, O_WRONLY | O_TRUNC);
        close(fd);
        ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
        char buf[16384] = {0};
        fd = open(path, O_RDONLY);
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        expect_ok(&r, "exit-during-trim bg");
        ck_assert_int_gt(n, 0);
        ck_assert_msg(strstr(buf, "decision quiet") != NULL, "%s", buf);
        /* the trim had started (decision logged) and not finished when exit was called */
        ck_assert_msg(ts_json_num(r.out, "trims", -1) == 0, "%s", r.out);
        if (noalloc) {
            /* nothing at exit needs malloc: exit does not wait for the trim at all */
            ck_assert_msg(strstr(buf, "trimshim: exit: 0 trims") != NULL, "%s", buf);
        } else {
            /* the atexit handler's malloc waits for the arena lock, i.e. for the trim */
            ck_assert_ptr_nonnull(strstr(r.out, "\"atexit\":1"));
        }
    }
    unlink(path);
}
END_TEST

START_TEST(fork_during_trim)
{
    char *argv[] = {TS_HELPER_PATH, "fork-during-trim", "20000", NULL};
    char *env[] = {PRELOAD, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "fork-during-trim");
    ck_assert_int_eq(ts_json_num(r.out, "forks_bad", -1), 0);
}
END_TEST

START_TEST(forks_race_constant_trims)
{
    /* trims as often as the shim allows (interval 1 ms, threshold 0) while 2 threads churn and
     * the main thread forks 200 times: no deadlock, no crash */
    char *argv[] = {TS_HELPER_PATH, "churn-fork", "200", NULL};
    char *env[] = {PRELOAD, "TRIMSHIM_POLICY=interval", "TRIMSHIM_INTERVAL_MS=1",
                   "TRIMSHIM_THRESHOLD=0", NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "churn-fork");
    ck_assert_int_eq(ts_json_num(r.out, "forks_bad", -1), 0);
    ck_assert_int_ge(ts_json_num(r.out, "bg_trims", -1), 1);
}
END_TEST

START_TEST(explicit_trims_race_shim_trims)
{
    char *argv[] = {TS_HELPER_PATH, "trimstorm", "2000", NULL};
    char *env[] = {PRELOAD, "TRIMSHIM_POLICY=interval", "TRIMSHIM_INTERVAL_MS=1",
                   "TRIMSHIM_THRESHOLD=0", NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "trimstorm");
    ck_assert_int_ge(ts_json_num(r.out, "explicit_trims", -1), 4);
    ck_assert_int_ge(ts_json_num(r.out, "bg_trims", -1), 1);
}
END_TEST

START_TEST(child_after_fork_has_trimmer)
{
    char *argv[] = {TS_HELPER_PATH, "child-trimmer", "300", NULL};
    char *env[] = {PRELOAD, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "child-trimmer");
}
END_TEST

START_TEST(other_preloads_allocating_in_constructors)
{
    char *work[] = {TS_HELPER_PATH, "work", NULL};
    ck_assert_int_eq(ts_run(&base, work, NULL, 60), 0);
    expect_ok(&base, "baseline");
    const char *orders[] = {"LD_PRELOAD=" TS_EARLY_PATH " " TS_SHIM_PATH,
                            "LD_PRELOAD=" TS_SHIM_PATH " " TS_EARLY_PATH};
    for (int i = 0; i < 2; i++) {
        char *env[] = {(char *)orders[i], NULL};
        ck_assert_int_eq(ts_run(&r, work, env, 60), 0);
        expect_ok(&r, orders[i]);
        ck_assert_str_eq(r.out, base.out);
        ck_assert_str_eq(r.err, "");
    }
}
END_TEST

int main(void)
{
    Suite *su = suite_create("e2e");
    TCase *rss = tcase_create("rss");
    tcase_set_timeout(rss, 600);
    tcase_add_test(rss, seed_rss_after_quiet);
    tcase_add_test(rss, policy_off_and_interval);
    suite_add_tcase(su, rss);
    TCase *sd = tcase_create("stand-down");
    tcase_set_timeout(sd, 600);
    tcase_add_test(sd, stands_down_over_other_allocators);
    tcase_add_test(sd, stands_down_under_valgrind);
    tcase_add_test(sd, static_binary_is_not_reached);
    suite_add_tcase(su, sd);
    TCase *sf = tcase_create("safety");
    tcase_set_timeout(sf, 600);
    tcase_add_test(sf, exit_during_api_trim);
    tcase_add_test(sf, exit_during_background_trim);
    tcase_add_test(sf, fork_during_trim);
    tcase_add_test(sf, forks_race_constant_trims);
    tcase_add_test(sf, explicit_trims_race_shim_trims);
    tcase_add_test(sf, child_after_fork_has_trimmer);
    tcase_add_test(sf, other_preloads_allocating_in_constructors);
    suite_add_tcase(su, sf);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
