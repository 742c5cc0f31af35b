/* The shim on glibc < 2.33's path (libtrimshim_mallinfo.so: mallinfo, never mallinfo2) preloaded
 * into ts_bigheap, a program that frees a heap the shim should trim (Check).
 *   below  ~190 MB freed (shim.mallinfo, default ctest): the mallinfo path trims like the
 *          mallinfo2 one; without the shim the same program keeps the heap (the control).
 *   above  4 GiB + 4 MiB freed, shaped so that mallinfo's int free figure reads under 32 KiB
 *          (shim.bigheap, label bigheap): the shim must see past the wrap and trim.
 * The figures are ratios of one run: (after_idle - baseline) / (peak - baseline). */
#define _GNU_SOURCE

#include "check_compat.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TS_MALLINFO_SHIM_PATH
#error TS_MALLINFO_SHIM_PATH must be defined
#endif
#ifndef TS_BIGHEAP_HELPER_PATH
#error TS_BIGHEAP_HELPER_PATH must be defined
#endif

extern char **environ;

struct run {
    char out[4096];
    char err[65536];
    int status;
};

static void slurp(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap - 1)
            break;
    }
    buf[got] = '\0';
}

static int dropped(const char *e)
{
    static const char *const drop[] = {"LD_PRELOAD=", "TRIMSHIM_", "MALLOC_", "GLIBC_TUNABLES="};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (!strncmp(e, drop[i], strlen(drop[i])))
            return 1;
    return 0;
}

/* Runs the helper with args, preloading the forced-mallinfo shim when preload is set. */
static void run_helper(struct run *r, int preload, const char *const *args)
{
    char out_t[] = "/tmp/ts_bigheap_outXXXXXX", err_t[] = "/tmp/ts_bigheap_errXXXXXX";
    int out = mkstemp(out_t), err = mkstemp(err_t);
    ck_assert_int_ge(out, 0);
    ck_assert_int_ge(err, 0);
    unlink(out_t);
    unlink(err_t);

    static char *env[512];
    size_t n = 0;
    for (char **e = environ; *e && n < 500; e++)
        if (!dropped(*e))
            env[n++] = *e;
    if (preload) {
        env[n++] = (char *)"LD_PRELOAD=" TS_MALLINFO_SHIM_PATH;
        env[n++] = (char *)"TRIMSHIM_VERBOSE=1";
    }
    env[n] = NULL;
    char *argv[16];
    size_t a = 0;
    argv[a++] = (char *)TS_BIGHEAP_HELPER_PATH;
    for (; *args && a < 15; args++)
        argv[a++] = (char *)*args;
    argv[a] = NULL;

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        execve(argv[0], argv, env);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &r->status, 0), pid);
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
    close(out);
    close(err);
    ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
                  "ts_bigheap failed (status %d): %s", r->status, r->err);
}

static long long field(const struct run *r, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(r->out, pat);
    ck_assert_msg(p != NULL, "no %s in: %s", key, r->out);
    return strtoll(p + strlen(pat), NULL, 10);
}

/* Share of the growth still resident after the quiet time. */
static double retained(const struct run *r)
{
    long long b = field(r, "baseline_kb"), p = field(r, "peak_kb"), i = field(r, "after_idle_kb");
    ck_assert_msg(p - b > 100 * 1024, "the heap did not grow: %s", r->out);
    return (double)(i - b) / (double)(p - b);
}

START_TEST(below_4gib)
{
    /* 3,000 blocks: 196 MB freed. Each freed block keeps about one page next to its live node
     * after a trim (the page floor: 3,000 x 4 KiB = 12 MB, 6% of the growth): at most 25%
     * leaves room for noise, and is far from the control's ~100%. */
    static const char *const quiet[] = {"--blocks", "3000", "--wait-ms", "20000", NULL};
    static const char *const control[] = {"--blocks", "3000", "--wait-ms", "1500", NULL};
    static struct run shim, none;

    run_helper(&none, 0, control);
    double kept_none = retained(&none);
    /* The control: glibc keeps it all by itself (else this test could not fail). */
    ck_assert_msg(kept_none >= 0.9, "without the shim %.0f%% kept: %s", 100 * kept_none, none.out);

    run_helper(&shim, 1, quiet);
    double kept = retained(&shim);
    ck_assert_msg(strstr(shim.err, "heap figures from mallinfo (int fields") != NULL,
                  "the forced shim did not take the mallinfo path: %s", shim.err);
    ck_assert_msg(strstr(shim.err, ": trim ") != NULL, "no trim: %s", shim.err);
    ck_assert_msg(strstr(shim.err, "heap past 4 GiB") == NULL, "a wrap claimed below 4 GiB: %s", shim.err);
    ck_assert_msg(kept <= 0.25, "with the mallinfo shim %.0f%% kept: %s / %s", 100 * kept, shim.out, shim.err);
}
END_TEST

START_TEST(above_4gib)
{
    /* 65,600 blocks: 4 GiB + 4 MiB freed (~4.3 GB resident at the peak), then shaped. The floor
     * after a trim is 65,600 pages (~270 MB, 6% of the growth): at most 25%, as below. */
    static const char *const args[] = {"--blocks", "65600", "--shape", "--wait-ms", "90000", NULL};
    static struct run r;
    run_helper(&r, 1, args);

    /* The premise: mallinfo's free figure reads under the 64 KiB trim threshold while the heap
     * holds 4 GiB free: a shim taking the reading as it is would see nothing to trim. */
    ck_assert_msg(field(&r, "free_reading") < 64 * 1024, "not shaped: %s", r.out);
    long long truth = field(&r, "free_true");
    if (truth >= 0)
        ck_assert_msg(truth >= (4ll << 30), "less than 4 GiB free: %s", r.out);

    double kept = retained(&r);
    ck_assert_msg(kept <= 0.25, "with the mallinfo shim %.0f%% of a 4 GiB heap kept: %s / %s", 100 * kept,
                  r.out, r.err);
    ck_assert_msg(strstr(r.err, ": trim ") != NULL, "no trim: %s", r.err);
    ck_assert_msg(strstr(r.err, "heap past 4 GiB: mallinfo's int fields wrapped") != NULL,
                  "the wrap went unseen: %s", r.err);
}
END_TEST

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "below";
    Suite *s = suite_create("shim_mallinfo");
    TCase *tc = tcase_create(which);
    tcase_set_timeout(tc, 500);
    if (!strcmp(which, "below"))
        tcase_add_test(tc, below_4gib);
    else if (!strcmp(which, "above"))
        tcase_add_test(tc, above_4gib);
    else {
        fprintf(stderr, "test_mallinfo_shim: unknown group '%s' (below, above)\n", which);
        return 2;
    }
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
