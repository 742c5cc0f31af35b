/* End-to-end Check tests: real programs run with LD_PRELOAD=libtrimshim.so. RSS after the seed
 * scenario goes quiet, stand-down under other allocators and valgrind, a static binary, exit and
 * fork while a trim runs, trims racing forks and explicit malloc_trim calls. */
#define _GNU_SOURCE
#include "check_compat.h"
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "promparse.h"
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

/* mode: NULL (default: a single-threaded program is trimmed at its own waits) or
 * "TRIMSHIM_THREAD=always" (the background thread) */
static void seed_rss(const char *mode)
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
    char *env[] = {PRELOAD, (char *)mode, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "shim");
    long long reach = ts_json_num(r.out, "reach_ms", -1);
    long long start = ts_json_num(r.out, "trim_start_ms", -1);
    long long after = ts_json_num(r.out, "after_idle_kb", -1);
    long long freed_kb = ts_json_num(r.out, "after_free_kb", -1);
    fprintf(stderr,
            "seed_rss_after_quiet (%s): explicit trim %lld kB in %lld ms; shim: after free %lld "
            "kB, trim started %lld ms after the free, <= 1.05x at %lld ms, after idle %lld kB "
            "(%.3fx)\n",
            mode ? mode : "TRIMSHIM_THREAD=auto", ref_kb, ref_trim_ms, freed_kb, start, reach,
            after, (double)after / (double)ref_kb);
    ck_assert_msg(reach >= 0, "never reached %lld kB: %s", target, r.out);
    ck_assert_int_le(after, target);
    ck_assert_int_ge(start, 0);
    /* the shim's own delay (detecting quiet) is at most a second; the trim itself costs what
     * malloc_trim costs on this machine (ref_trim_ms), which the shim cannot change */
    ck_assert_msg(start <= 1000, "trim started %lld ms after the free", start);
    ck_assert_msg(reach <= 2000 + 3 * ref_trim_ms, "reached after %lld ms (explicit trim %lld ms)",
                  reach, ref_trim_ms);
}

START_TEST(seed_rss_after_quiet)
{
    seed_rss(NULL);
    seed_rss("TRIMSHIM_THREAD=always");
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
        /* exit while the trim runs needs a thread to trim: at the program's own waits the
         * program's only thread is the one trimming (signal_during_idle_trim covers that) */
        char *env[] = {PRELOAD, log, "TRIMSHIM_VERBOSE=2", "TRIMSHIM_THREAD=always", NULL};
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
            ck_assert_msg(strstr(buf, "]: exit: 0 trims") != NULL, "%s", buf);
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

/* ------------------------------------------------------------------------------------------ */
/* the statistics file (TRIMSHIM_STATS) */

static char tdir[64];
static void tdir_make(void)
{
    snprintf(tdir, sizeof tdir, "/tmp/trimshim-e2e-m-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tdir));
}
static void tdir_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tdir);
    ck_assert_int_eq(system(cmd), 0);
}
static int tdir_count(void)
{
    DIR *d = opendir(tdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}
static size_t slurp(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = 0;
    return n > 0 ? (size_t)n : 0;
}

static struct pp_result prom;
static char prom_text[65536];

START_TEST(stats_file_of_the_seed)
{
    /* 9000 x 64 KiB = 590 MB freed: what the file must show back, >= 500 MB (the figure asked
     * of a seed-like program); the rest is the list nodes' pages, which stay */
    tdir_make();
    char stats[160], copy[128];
    snprintf(stats, sizeof stats, "TRIMSHIM_STATS=%s/trimshim-%%p.prom", tdir);
    snprintf(copy, sizeof copy, "%s/copy.txt", tdir);
    /* --retitle: the helper overwrites its argv[0] as servers do for their process title; the
     * file still names the program it started as */
    char *argv[] = {TS_HELPER_PATH, "seed", "9000", "--idle", "3000", "--target-kb", "0",
                    "--stats-copy", copy, "--retitle", NULL};
    char *env[] = {PRELOAD, stats, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "seed with TRIMSHIM_STATS");
    ck_assert_str_eq(r.err, "");
    ck_assert_int_eq(ts_json_num(r.out, "stats_copied", -1), 1);
    long long pid = ts_json_num(r.out, "pid", -1);
    char want[200];
    snprintf(want, sizeof want, "\"stats_path\":\"%s/trimshim-%lld.prom\"", tdir, pid);
    ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
    ck_assert_uint_gt(slurp(copy, prom_text, sizeof prom_text), 0);
    ck_assert_msg(pp_parse(prom_text, &prom), "%s\n%s", prom.error, prom_text);
    ck_assert(pp_sum(&prom, "trimshim_trims_total", NULL) >= 1);
    ck_assert_msg(pp_sum(&prom, "trimshim_returned_bytes_total", NULL) >= 500e6, "%s", prom_text);
    snprintf(want, sizeof want, "pid=\"%lld\"", pid);
    ck_assert(pp_sum(&prom, "trimshim_info", want) == 1);
    ck_assert(pp_sum(&prom, "trimshim_state", "state=\"running\"") == 1);
    ck_assert(pp_sum(&prom, "trimshim_info", "mode=\"idle-points\"") == 1);
    const char *base = strrchr(TS_HELPER_PATH, '/');
    snprintf(want, sizeof want, "program=\"%s\"", base ? base + 1 : TS_HELPER_PATH);
    ck_assert_msg(pp_sum(&prom, "trimshim_info", want) == 1, "%s\n%s", want, prom_text);
    /* gone at exit: only the copy is left */
    ck_assert_int_eq(tdir_count(), 1);
    tdir_remove();
}
END_TEST

START_TEST(stats_kept_and_per_process)
{
    /* TRIMSHIM_STATS_KEEP=1: the last figures stay; %p: the forked child has a file of its own */
    tdir_make();
    char stats[160];
    snprintf(stats, sizeof stats, "TRIMSHIM_STATS=%s/t-%%p.prom", tdir);
    char *argv[] = {TS_HELPER_PATH, "child-trimmer", "300", NULL};
    char *env[] = {PRELOAD, stats, "TRIMSHIM_STATS_KEEP=1", NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 300), 0);
    expect_ok(&r, "child-trimmer, kept");
    /* the child ends with _exit: no exit code of its own runs, its last periodic write stays
     * (figures up to 2 s old: a file is written at most every 2 s) */
    DIR *d = opendir(tdir);
    struct dirent *e;
    int files = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[400];
        snprintf(path, sizeof path, "%s/%s", tdir, e->d_name);
        slurp(path, prom_text, sizeof prom_text);
        ck_assert_msg(pp_parse(prom_text, &prom), "%s: %s", e->d_name, prom.error);
        char pidl[64];
        snprintf(pidl, sizeof pidl, "pid=\"%d\"", atoi(e->d_name + 2));
        ck_assert_msg(pp_sum(&prom, "trimshim_info", pidl) == 1, "%s", e->d_name);
        files++;
    }
    if (d)
        closedir(d);
    ck_assert_int_eq(files, 2); /* parent and child: one each, named by PID */
    /* the next process of the template collects the files of the dead ones */
    char *work[] = {TS_HELPER_PATH, "seed", "100", "--idle", "400", NULL};
    char *env2[] = {PRELOAD, stats, NULL};
    ck_assert_int_eq(ts_run(&r, work, env2, 120), 0);
    expect_ok(&r, "collector");
    ck_assert_int_eq(tdir_count(), 0);
    tdir_remove();
}
END_TEST

START_TEST(stats_bad_paths_one_line_no_harm)
{
    tdir_make();
    char *work[] = {TS_HELPER_PATH, "work", NULL};
    ck_assert_int_eq(ts_run(&base, work, NULL, 60), 0);
    expect_ok(&base, "baseline");
    char link[128];
    snprintf(link, sizeof link, "%s/to-dir", tdir);
    ck_assert_int_eq(symlink("/tmp", link), 0);
    char v_dir[160], v_link[160];
    snprintf(v_dir, sizeof v_dir, "TRIMSHIM_STATS=%s", tdir);
    snprintf(v_link, sizeof v_link, "TRIMSHIM_STATS=%s", link);
    const char *cases[][2] = {
        {"TRIMSHIM_STATS=/dev/null", "character device"},
        {v_dir, "a directory"},
        {v_link, "a directory"},
        {"TRIMSHIM_STATS=stats.prom", "not an absolute path"},
        {"TRIMSHIM_STATS=/nonexistent-dir-x/s.prom", "/nonexistent-dir-x"},
        {"TRIMSHIM_STATS=/tmp/%x.prom", "%p"},
        {"TRIMSHIM_STATS=", "empty"},
        {"TRIMSHIM_STATS_KEEP=yes", "TRIMSHIM_STATS_KEEP"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *env[] = {PRELOAD, (char *)cases[i][0], NULL};
        ck_assert_int_eq(ts_run(&r, work, env, 60), 0);
        expect_ok(&r, cases[i][0]);
        ck_assert_str_eq(r.out, base.out);
        ck_assert_msg(ts_count_lines(r.err) == 1, "%s: '%s'", cases[i][0], r.err);
        ck_assert_msg(!strncmp(r.err, "trimshim[", 9), "%s", r.err);
        ck_assert_msg(strstr(r.err, cases[i][1]) != NULL, "%s: %s", cases[i][0], r.err);
        char name[32]; /* the line names the variable */
        snprintf(name, sizeof name, "%.*s=\"", (int)(strchr(cases[i][0], '=') - cases[i][0]),
                 cases[i][0]);
        ck_assert_msg(strstr(r.err, name) != NULL, "%s", r.err);
    }
    struct stat st;
    ck_assert_int_eq(stat("/dev/null", &st), 0);
    ck_assert(S_ISCHR(st.st_mode)); /* still the device */
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    tdir_remove();
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* no thread while the program has one: the work at its own waits */

START_TEST(single_threaded_program_has_no_thread)
{
    char *argv[] = {TS_IDLE_PATH, "mode", NULL};
    char *env[] = {PRELOAD, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 60), 0);
    expect_ok(&r, "mode");
    const char *after = strstr(r.out, "\"phase\":\"after\"");
    ck_assert_ptr_nonnull(after);
    /* before: the shim works at the program's waits, glibc malloc on its single-thread paths */
    ck_assert_int_eq(ts_json_num(r.out, "mode", -1), 2);
    ck_assert_int_eq(ts_json_num(r.out, "threads", -1), 1);
    ck_assert_int_eq(ts_json_num(r.out, "single", -1), 1);
    /* the program's own second thread: the shim's thread takes over */
    ck_assert_int_eq(ts_json_num(after, "mode", -1), 1);
    ck_assert_int_eq(ts_json_num(after, "shim_thread", -1), 1);
    ck_assert_int_eq(ts_json_num(after, "threads", -1), 3);
    /* TRIMSHIM_THREAD=always: today's thread from the start */
    char *always[] = {PRELOAD, "TRIMSHIM_THREAD=always", NULL};
    ck_assert_int_eq(ts_run(&r, argv, always, 60), 0);
    expect_ok(&r, "mode, always");
    ck_assert_int_eq(ts_json_num(r.out, "mode", -1), 1);
    ck_assert_int_eq(ts_json_num(r.out, "threads", -1), 2);
    ck_assert_int_eq(ts_json_num(r.out, "single", -1), 0);
}
END_TEST

START_TEST(handler_inside_malloc_never_leads_to_a_trim)
{
    /* every look probes and trims (interval 1 ms, threshold 0), so a wait that a handler enters
     * while malloc is interrupted would trim there: a heap walked mid-update (without the
     * handler count this program crashes within a second) */
    char *argv[] = {TS_IDLE_PATH, "sig-in-malloc", "1500", NULL};
    char *env[] = {PRELOAD, "TRIMSHIM_POLICY=interval", "TRIMSHIM_INTERVAL_MS=1",
                   "TRIMSHIM_THRESHOLD=0", NULL};
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(ts_run(&r, argv, env, 120), 0);
        expect_ok(&r, "sig-in-malloc");
        ck_assert_int_eq(ts_json_num(r.out, "own_handlers", -1), 1);
        ck_assert_int_eq(ts_json_num(r.out, "mode", -1), 2);
        /* two 1 ms timers for 1.5 s: ~1,500 handler runs; 300 leaves room for a loaded box */
        ck_assert_int_ge(ts_json_num(r.out, "handler_waits", -1), 300);
        ck_assert_int_eq(ts_json_num(r.out, "looks_in_handlers", -1), 0);
        ck_assert_int_eq(ts_json_num(r.out, "trims_in_handlers", -1), 0);
        ck_assert_int_eq(ts_json_num(r.out, "probes_in_handlers", -1), 0);
        /* the same waits from the program's own code do trim: the shim was active */
        ck_assert_int_ge(ts_json_num(r.out, "trims_after", -1), 1);
    }
}
END_TEST

START_TEST(raw_handler_stops_work_at_waits)
{
    char *argv[] = {TS_IDLE_PATH, "raw-handler", "2000", NULL};
    char *env[] = {PRELOAD, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 120), 0);
    expect_ok(&r, "raw-handler");
    const char *raw = strstr(r.out, "\"phase\":\"raw\"");
    const char *thr = strstr(r.out, "\"phase\":\"thread\"");
    ck_assert_ptr_nonnull(raw);
    ck_assert_ptr_nonnull(thr);
    /* 128 MB freed and 1.5 s of waits, but no trim and no probe since that handler exists: it
     * might be the one running (the probe before it, at start, was the baseline) */
    ck_assert_int_eq(ts_json_num(r.out, "state", -1), 0);
    ck_assert_int_eq(ts_json_num(raw, "state", -1), 6);
    ck_assert_int_eq(ts_json_num(raw, "trims", -1), 0);
    ck_assert_int_eq(ts_json_num(raw, "probes", -1), ts_json_num(r.out, "probes", -2));
    /* once the program starts a thread, the shim's thread trims */
    ck_assert_int_eq(ts_json_num(thr, "mode", -1), 1);
    ck_assert_int_ge(ts_json_num(thr, "bg_trims", -1), 1);
    ck_assert_int_eq(ts_json_num(r.out, "raw_handled", -1), 1);
}
END_TEST

START_TEST(handler_left_with_longjmp)
{
    char *argv[] = {TS_IDLE_PATH, "sig-longjmp", "2000", NULL};
    char *env[] = {PRELOAD, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 120), 0);
    expect_ok(&r, "sig-longjmp");
    ck_assert_int_eq(ts_json_num(r.out, "jumped", -1), 1);
    const char *after = strstr(r.out, "\"phase\":\"after-jump\"");
    ck_assert_ptr_nonnull(after);
    ck_assert_int_eq(ts_json_num(after, "mode", -1), 2);
    /* the handler's frame is provably gone (the waits run above it): trims resume */
    ck_assert_int_ge(ts_json_num(after, "bg_trims", -1), 1);
}
END_TEST

START_TEST(handler_installed_before_the_shim)
{
    const char *orders[] = {"LD_PRELOAD=" TS_EARLY_PATH " " TS_SHIM_PATH,
                            "LD_PRELOAD=" TS_SHIM_PATH " " TS_EARLY_PATH};
    char *argv[] = {TS_IDLE_PATH, "early-handler", NULL};
    for (int i = 0; i < 2; i++) {
        char *env[] = {(char *)orders[i], NULL};
        ck_assert_int_eq(ts_run(&r, argv, env, 60), 0);
        expect_ok(&r, orders[i]);
        ck_assert_int_eq(ts_json_num(r.out, "have_early", -1), 1);
        ck_assert_int_eq(ts_json_num(r.out, "reported_is_early", -1), 1); /* the program's view */
        ck_assert_int_eq(ts_json_num(r.out, "kernel_is_early", -1), 0);   /* counted: wrapped */
        ck_assert_int_eq(ts_json_num(r.out, "early_handled", -1), 1);
        ck_assert_int_eq(ts_json_num(r.out, "state", -1), 0);
        ck_assert_int_eq(ts_json_num(r.out, "mode", -1), 2);
    }
}
END_TEST

START_TEST(sleeps_between_bursts_are_quiet)
{
    /* 200 ms sleeps between 50 ms bursts: 20 % CPU from one wait's start to the next, but each
     * sleep is a window without CPU, what the thread's 100 ms windows find within a few looks:
     * both trim within the 2.5 s */
    char *argv[] = {TS_IDLE_PATH, "duty", "2000", NULL};
    const char *modes[] = {"TRIMSHIM_THREAD=auto", "TRIMSHIM_THREAD=always"};
    for (int i = 0; i < 2; i++) {
        char *env[] = {PRELOAD, (char *)modes[i], NULL};
        ck_assert_int_eq(ts_run(&r, argv, env, 60), 0);
        expect_ok(&r, modes[i]);
        ck_assert_int_eq(ts_json_num(r.out, "mode", -1), i == 0 ? 2 : 1);
        ck_assert_msg(ts_json_num(r.out, "bg_trims", -1) >= 1, "%s: %s", modes[i], r.out);
    }
}
END_TEST

START_TEST(forked_child_measures_from_its_own_rss)
{
    /* The parent trims at ~200 MiB resident (192 MiB of it shared memory, which fork does not
     * map into the child); the child frees 64 MiB and idles 3 s. Measured from the parent's
     * baseline, the child never looks trimmable (0 trims); from its own, it trims. */
    char *argv[] = {TS_IDLE_PATH, "fork-baseline", "1000", NULL};
    const char *modes[] = {"TRIMSHIM_THREAD=auto", "TRIMSHIM_THREAD=always"};
    for (int i = 0; i < 2; i++) {
        char *env[] = {PRELOAD, (char *)modes[i], NULL};
        ck_assert_int_eq(ts_run(&r, argv, env, 60), 0);
        expect_ok(&r, modes[i]);
        const char *child = strstr(r.out, "\"phase\":\"child\"");
        ck_assert_msg(child != NULL, "%s: %s", modes[i], r.out);
        ck_assert_msg(ts_json_num(r.out, "trims", -1) >= 1, "parent, %s: %s", modes[i], r.out);
        ck_assert_msg(ts_json_num(child, "trims", -1) >= 1, "child, %s: %s", modes[i], r.out);
    }
}
END_TEST

START_TEST(ready_wait_is_not_delayed)
{
    /* 50,000 free 8 KiB chunks, every look probes and trims (interval 20 ms, threshold 0): a
     * wait that blocks gets trims; 21 waits whose event is already there (7 kinds) must get no
     * work at all */
    char *argv[] = {TS_IDLE_PATH, "ready-wait", "50000", "21", NULL};
    char *env[] = {PRELOAD, "TRIMSHIM_POLICY=interval", "TRIMSHIM_INTERVAL_MS=20",
                   "TRIMSHIM_THRESHOLD=0", NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 120), 0);
    expect_ok(&r, "ready-wait");
    fprintf(stderr, "ready_wait_is_not_delayed: %s", r.out);
    ck_assert_int_eq(ts_json_num(r.out, "mode", -1), 2);
    ck_assert_int_eq(ts_json_num(r.out, "blocked_result", -1), 0);
    ck_assert_int_ge(ts_json_num(r.out, "blocked_trims", -1), 1);
    ck_assert_int_eq(ts_json_num(r.out, "ready_ok", -1), 21);
    ck_assert_int_eq(ts_json_num(r.out, "ready_looks", -1), 0);
    ck_assert_int_eq(ts_json_num(r.out, "ready_trims", -1), 0);
    /* no work means one extra zero-timeout syscall: microseconds; 50 ms is scheduling noise
     * on a loaded 2-CPU box, still below a probe plus a trim of this heap */
    ck_assert_int_lt(ts_json_num(r.out, "ready_max_ms", -1), 50);
}
END_TEST

static void check_waits(const char *out)
{
    /* timeouts are never shorter than asked (149: the measurement's own rounding) */
    ck_assert_int_eq(ts_json_num(out, "poll_r", -1), 0);
    ck_assert_int_ge(ts_json_num(out, "poll_ms", -1), 149);
    ck_assert_int_eq(ts_json_num(out, "select_r", -1), 0);
    ck_assert_int_ge(ts_json_num(out, "select_ms", -1), 149);
    ck_assert_int_eq(ts_json_num(out, "select_bit", -1), 0);
    ck_assert_int_eq(ts_json_num(out, "select_tv_us", -1), 0);
    ck_assert_int_eq(ts_json_num(out, "select_ready_r", -1), 1);
    ck_assert_int_eq(ts_json_num(out, "select_ready_bit", -1), 1);
    ck_assert_int_eq(ts_json_num(out, "pselect_r", -1), 0);
    ck_assert_int_ge(ts_json_num(out, "pselect_ms", -1), 149);
    ck_assert_int_eq(ts_json_num(out, "epoll_r", -1), 0);
    ck_assert_int_ge(ts_json_num(out, "epoll_ms", -1), 149);
    ck_assert_int_eq(ts_json_num(out, "ppoll_r", -1), 0);
    ck_assert_int_ge(ts_json_num(out, "ppoll_ms", -1), 149);
    ck_assert_int_eq(ts_json_num(out, "nanosleep_r", -1), 0);
    ck_assert_int_ge(ts_json_num(out, "nanosleep_ms", -1), 199);
    /* a handler 60 ms into a 200 ms sleep: EINTR at once, ~140 ms not slept */
    ck_assert_int_eq(ts_json_num(out, "nanosleep_intr_r", 0), -1);
    ck_assert_int_eq(ts_json_num(out, "nanosleep_intr_errno_eintr", -1), 1);
    ck_assert_int_lt(ts_json_num(out, "nanosleep_intr_ms", -1), 150);
    ck_assert_int_ge(ts_json_num(out, "nanosleep_rem_ms", -1), 50);
    ck_assert_int_le(ts_json_num(out, "nanosleep_rem_ms", -1), 141);
    ck_assert_int_eq(ts_json_num(out, "poll_intr_r", 0), -1);
    ck_assert_int_eq(ts_json_num(out, "poll_intr_eintr", -1), 1);
    ck_assert_int_lt(ts_json_num(out, "poll_intr_ms", -1), 1000);
    ck_assert_int_eq(ts_json_num(out, "clock_abs_r", -1), 0);
    ck_assert_int_eq(ts_json_num(out, "clock_abs_late", -1), 1);
    ck_assert_int_eq(ts_json_num(out, "clock_rel_r", -1), 0);
    ck_assert_int_ge(ts_json_num(out, "clock_rel_ms", -1), 149);
    ck_assert_int_eq(ts_json_num(out, "usleep_r", -1), 0);
    ck_assert_int_ge(ts_json_num(out, "usleep_ms", -1), 149);
    ck_assert_int_eq(ts_json_num(out, "sleep_left", -1), 0);
    ck_assert_int_ge(ts_json_num(out, "sleep_ms", -1), 999);
    ck_assert_int_eq(ts_json_num(out, "pause_r", 0), -1);
    ck_assert_int_eq(ts_json_num(out, "pause_eintr", -1), 1);
    ck_assert_int_ge(ts_json_num(out, "pause_ms", -1), 99);
    ck_assert_int_lt(ts_json_num(out, "pause_ms", -1), 1000);
    ck_assert_int_eq(ts_json_num(out, "sigsuspend_r", 0), -1);
    ck_assert_int_eq(ts_json_num(out, "sigsuspend_eintr", -1), 1);
    ck_assert_int_ge(ts_json_num(out, "sigsuspend_ms", -1), 99);
    ck_assert_int_lt(ts_json_num(out, "sigsuspend_ms", -1), 1000);
    ck_assert_int_eq(ts_json_num(out, "sigtimedwait_r", 0), -1);
    ck_assert_int_eq(ts_json_num(out, "sigtimedwait_eagain", -1), 1);
    ck_assert_int_ge(ts_json_num(out, "sigtimedwait_ms", -1), 149);
    ck_assert_int_eq(ts_json_num(out, "sigwaitinfo_r", -1), SIGUSR2);
    ck_assert_int_eq(ts_json_num(out, "alarms", -1), 4);
}

START_TEST(waits_keep_their_semantics)
{
    char *argv[] = {TS_IDLE_PATH, "waits", NULL};
    /* interval 1 ms: nearly every wait goes through the shim's pieces */
    char *env[] = {PRELOAD, "TRIMSHIM_INTERVAL_MS=1", NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 120), 0);
    expect_ok(&r, "waits");
    ck_assert_int_eq(ts_json_num(r.out, "mode", -1), 2);
    ck_assert_int_ge(ts_json_num(r.out, "idle_looks", -1), 20);
    check_waits(r.out);
    /* the same without the shim: the program's own expectations hold there too */
    ck_assert_int_eq(ts_run(&r, argv, NULL, 120), 0);
    expect_ok(&r, "waits, no shim");
    check_waits(r.out);
}
END_TEST

START_TEST(signal_during_idle_trim)
{
    /* 200,000 free 8 KiB chunks: the first trim takes ~0.4 s here */
    char path[] = "/tmp/trimshim-e2e-sig-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char log[128];
    snprintf(log, sizeof log, "TRIMSHIM_LOG=%s", path);
    char *env[] = {PRELOAD, log, "TRIMSHIM_VERBOSE=2", NULL};
    /* SIGTERM, default action: not held back by the shim's work, the process ends at once */
    char *term[] = {TS_IDLE_PATH, "signal-during-trim", "200000", "TERM", NULL};
    ck_assert_int_eq(ts_run(&r, term, env, 120), 0);
    expect_ok(&r, "signal-during-trim TERM");
    ck_assert_int_eq(ts_json_num(r.out, "decided", -1), 1);
    ck_assert_int_eq(ts_json_num(r.out, "signalled", -1), 1);
    ck_assert_int_eq(ts_json_num(r.out, "termsig", -1), SIGTERM);
    ck_assert_msg(ts_json_num(r.out, "trim_done_at_end", -1) == 0, "%s", r.out);
    /* SIGUSR1 with a handler: held back while the trim runs, then run (exit 7), not lost */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    char *usr1[] = {TS_IDLE_PATH, "signal-during-trim", "200000", "USR1", NULL};
    ck_assert_int_eq(ts_run(&r, usr1, env, 120), 0);
    expect_ok(&r, "signal-during-trim USR1");
    ck_assert_int_eq(ts_json_num(r.out, "decided", -1), 1);
    ck_assert_int_eq(ts_json_num(r.out, "exited", -1), 1);
    ck_assert_int_eq(ts_json_num(r.out, "status", -1), 7);
    ck_assert_msg(ts_json_num(r.out, "trim_done_at_end", -1) == 1, "%s", r.out);
    unlink(path);
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
    TCase *st = tcase_create("stats-file");
    tcase_set_timeout(st, 600);
    tcase_add_test(st, stats_file_of_the_seed);
    tcase_add_test(st, stats_kept_and_per_process);
    tcase_add_test(st, stats_bad_paths_one_line_no_harm);
    suite_add_tcase(su, st);
    TCase *idle = tcase_create("idle-points");
    tcase_set_timeout(idle, 600);
    tcase_add_test(idle, single_threaded_program_has_no_thread);
    tcase_add_test(idle, handler_inside_malloc_never_leads_to_a_trim);
    tcase_add_test(idle, raw_handler_stops_work_at_waits);
    tcase_add_test(idle, handler_left_with_longjmp);
    tcase_add_test(idle, handler_installed_before_the_shim);
    tcase_add_test(idle, sleeps_between_bursts_are_quiet);
    tcase_add_test(idle, ready_wait_is_not_delayed);
    tcase_add_test(idle, forked_child_measures_from_its_own_rss);
    tcase_add_test(idle, waits_keep_their_semantics);
    tcase_add_test(idle, signal_during_idle_trim);
    suite_add_tcase(su, idle);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
