/* Check tests of the statistics file (promfile.c): its text parsed by a strict Prometheus text
 * parser (promparse.h), label escaping, the targets a rename must not replace (/dev/null, a
 * directory, a symlink to one), the write (temporary file, rename), removing only the file this
 * process wrote, collecting the files of dead processes, and the TRIMSHIM_STATS template. */
#define _GNU_SOURCE
#include "check_compat.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "env.h"
#include "promfile.h"
#include "promparse.h"

static const char *const states[] = {"running", "stopped", "off", "not-glibc", "valgrind",
                                     "failed", "waiting"};

static struct ts_prom_values sample_values(void)
{
    struct ts_prom_values v;
    memset(&v, 0, sizeof v);
    v.pid = 4242;
    v.program = "postgres";
    v.mode = "idle-points";
    v.policy = "adaptive";
    v.state = 0;
    v.state_names = states;
    v.nstates = 7;
    v.trims_quiet = 3;
    v.trims_busy = 1;
    v.trims_api = 2;
    v.returned_bytes = 629145600;
    v.trim_ns = 1500000001;
    v.probe_ns = 2500;
    v.cpu_ns = 12000000;
    v.probes = 9;
    v.futile = 1;
    v.refault_faults = 1400;
    v.wakeups = 77;
    v.idle_points = 70;
    v.heap_free_bytes = 1 << 20;
    v.heap_used_bytes = 3 << 20;
    v.rss_bytes = 25 << 20;
    v.start_time_s = 1700000000;
    return v;
}

static char text[16384];
static struct pp_result pr;

START_TEST(format_parses)
{
    struct ts_prom_values v = sample_values();
    size_t n = ts_prom_format(text, sizeof text, &v);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(strlen(text), n);
    ck_assert_msg(pp_parse(text, &pr), "%s\n%s", pr.error, text);
    ck_assert(pp_sum(&pr, "trimshim_trims_total", NULL) == 6);
    ck_assert(pp_sum(&pr, "trimshim_trims_total", "kind=\"quiet\"") == 3);
    ck_assert(pp_sum(&pr, "trimshim_trims_total", "kind=\"busy\"") == 1);
    ck_assert(pp_sum(&pr, "trimshim_returned_bytes_total", NULL) == 629145600.0);
    /* seconds with nanosecond digits: 1.500000001 */
    ck_assert(pp_sum(&pr, "trimshim_trim_seconds_total", NULL) > 1.5 &&
              pp_sum(&pr, "trimshim_trim_seconds_total", NULL) < 1.5000001);
    ck_assert(pp_sum(&pr, "trimshim_refault_minor_faults_total", NULL) == 1400);
    ck_assert(pp_sum(&pr, "trimshim_state", "state=\"running\"") == 1);
    ck_assert(pp_sum(&pr, "trimshim_state", NULL) == 1); /* one state at a time */
    ck_assert(pp_sum(&pr, "trimshim_info", "mode=\"idle-points\"") == 1);
    ck_assert(pp_sum(&pr, "trimshim_resident_bytes", NULL) == 25 << 20);
    /* every sample names its process: files of several processes merge without clashes */
    for (int i = 0; i < pr.nsamples; i++)
        ck_assert_msg(strstr(pr.s[i].labels, "pid=\"4242\"") != NULL, "%s", pr.s[i].name);
    /* the names the README documents */
    static const char *const names[] = {
        "trimshim_info", "trimshim_state", "trimshim_trims_total",
        "trimshim_returned_bytes_total", "trimshim_trim_seconds_total", "trimshim_probes_total",
        "trimshim_probe_seconds_total", "trimshim_cpu_seconds_total",
        "trimshim_futile_trims_total", "trimshim_refault_minor_faults_total",
        "trimshim_wakeups_total", "trimshim_idle_point_looks_total", "trimshim_heap_free_bytes",
        "trimshim_heap_used_bytes", "trimshim_resident_bytes", "trimshim_start_time_seconds"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        ck_assert_msg(pp_sum(&pr, names[i], NULL) >= 0, "%s missing", names[i]);
    ck_assert_int_eq(pr.nfamilies, (int)(sizeof names / sizeof *names));
}
END_TEST

START_TEST(parser_refuses_what_scrapers_refuse)
{
    /* the parser must be able to fail, or format_parses proves nothing */
    static const char *const bad[] = {
        "x_total{a=\"1\"} 1",                               /* no newline */
        "# TYPE x_total counter\nx_total 1 1700000000\n",   /* a timestamp */
        "# TYPE x counter\nx 1\n",                          /* counter without _total */
        "x{a=\"1\",a=\"2\"} 1\n",                           /* label twice */
        "x{a=\"\\t\"} 1\n",                                 /* bad escape */
        "x 1\ny 2\nx 3\n",                                  /* not contiguous */
        "x{a=\"1\"} 1\nx{a=\"1\"} 2\n",                     /* a series twice */
        "# TYPE x gauge\n# TYPE x gauge\nx 1\n",            /* second TYPE */
        "x 1\n# TYPE x gauge\n",                            /* TYPE after samples */
        "1x 1\n",                                           /* bad name */
        "x abc\n",                                          /* bad value */
        "# TYPE x gauges\nx 1\n",                           /* unknown type */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!pp_parse(bad[i], &pr), "accepted: %s", bad[i]);
    ck_assert(pp_parse("# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"\\\\\\n\"} +Inf\n", &pr));
}
END_TEST

START_TEST(labels_escaped)
{
    struct ts_prom_values v = sample_values();
    v.program = "we\"ird\\na\nme\x01";
    ck_assert_uint_gt(ts_prom_format(text, sizeof text, &v), 0);
    ck_assert_msg(pp_parse(text, &pr), "%s\n%s", pr.error, text);
    ck_assert_ptr_nonnull(strstr(text, "program=\"we\\\"ird\\\\na\\nme?\""));
    char b[8];
    ts_prom_escape_label("\"\"\"\"\"\"", b, sizeof b);
    ck_assert_str_eq(b, "\\\"\\\"\\\""); /* cut whole: never half an escape */
}
END_TEST

START_TEST(format_too_small_is_nothing)
{
    struct ts_prom_values v = sample_values();
    char small[512];
    ck_assert_uint_eq(ts_prom_format(small, sizeof small, &v), 0);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */

static char dir[64];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof dir, "/tmp/trimshim-prom-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(targets_a_rename_must_not_replace)
{
    char why[256], p[256];
    mkdir_tmp();
    ck_assert_int_eq(ts_prom_check_target("/dev/null", why, sizeof why), -1);
    ck_assert_msg(strstr(why, "character device") != NULL, "%s", why);
    ck_assert_int_eq(ts_prom_check_target(dir, why, sizeof why), -1); /* a directory */
    ck_assert_msg(strstr(why, "directory") != NULL, "%s", why);
    snprintf(p, sizeof p, "%s/link", dir);
    ck_assert_int_eq(symlink("/tmp", p), 0);
    ck_assert_int_eq(ts_prom_check_target(p, why, sizeof why), -1); /* a symlink to one */
    snprintf(p, sizeof p, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    ck_assert_int_eq(ts_prom_check_target(p, why, sizeof why), -1);
    ck_assert_msg(strstr(why, "FIFO") != NULL, "%s", why);
    ck_assert_int_eq(ts_prom_check_target("/nonexistent-dir-x/a.prom", why, sizeof why), -1);
    ck_assert_msg(strstr(why, "/nonexistent-dir-x") != NULL, "%s", why);
    snprintf(p, sizeof p, "%s/new.prom", dir);
    ck_assert_int_eq(ts_prom_check_target(p, why, sizeof why), 0); /* not there yet */
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    close(fd);
    ck_assert_int_eq(ts_prom_check_target(p, why, sizeof why), 0); /* a regular file */
    /* and the write itself refuses them too (something may have been put there since) */
    dev_t dev;
    ino_t ino;
    ck_assert_int_ne(ts_prom_write("/dev/null", 1, "x\n", 2, &dev, &ino), 0);
    struct stat st;
    ck_assert_int_eq(stat("/dev/null", &st), 0);
    ck_assert(S_ISCHR(st.st_mode));
    snprintf(p, sizeof p, "%s/link", dir);
    ck_assert_int_ne(ts_prom_write(p, 1, "x\n", 2, &dev, &ino), 0);
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    rm_tmp();
}
END_TEST

START_TEST(write_rename_remove_own)
{
    mkdir_tmp();
    char p[256], tmp[300];
    snprintf(p, sizeof p, "%s/trimshim-7.prom", dir);
    dev_t dev;
    ino_t ino;
    ck_assert_int_eq(ts_prom_write(p, 7, "a 1\n", 4, &dev, &ino), 0);
    char buf[64] = {0};
    int fd = open(p, O_RDONLY);
    ck_assert_int_eq(read(fd, buf, sizeof buf - 1), 4);
    close(fd);
    ck_assert_str_eq(buf, "a 1\n");
    snprintf(tmp, sizeof tmp, "%s/.trimshim-7.prom.7.tmp", dir);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* renamed away */
    /* a stale temporary file of a dead process with the same PID does not stop the write */
    fd = open(tmp, O_WRONLY | O_CREAT, 0600);
    close(fd);
    ck_assert_int_eq(ts_prom_write(p, 7, "a 2\n", 4, &dev, &ino), 0);
    /* someone else's file at the path now: not removed */
    char other[300];
    snprintf(other, sizeof other, "%s/other", dir);
    fd = open(other, O_WRONLY | O_CREAT, 0644);
    close(fd);
    ck_assert_int_eq(rename(other, p), 0);
    ck_assert_int_eq(ts_prom_remove_own(p, dev, ino), 0);
    ck_assert_int_eq(access(p, F_OK), 0);
    ck_assert_int_eq(ts_prom_write(p, 7, "a 3\n", 4, &dev, &ino), 0);
    ck_assert_int_eq(ts_prom_remove_own(p, dev, ino), 1);
    ck_assert_int_ne(access(p, F_OK), 0);
    rm_tmp();
}
END_TEST

static void put_file(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

START_TEST(stale_files_of_dead_processes)
{
    mkdir_tmp();
    /* a PID that is certainly dead: a child that has been reaped */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    char tmpl[256], p[300];
    snprintf(tmpl, sizeof tmpl, "%s/trimshim-%%p.prom", dir);
    const char *ours = "# HELP trimshim_info x\n";
    snprintf(p, sizeof p, "%s/trimshim-%d.prom", dir, (int)dead);
    put_file(p, ours);
    char alive[300], self[300], foreign[300], other_name[300];
    snprintf(alive, sizeof alive, "%s/trimshim-1.prom", dir); /* init: alive */
    put_file(alive, ours);
    snprintf(self, sizeof self, "%s/trimshim-%d.prom", dir, (int)getpid());
    put_file(self, ours);
    pid_t dead2 = fork();
    if (dead2 == 0)
        _exit(0);
    waitpid(dead2, NULL, 0);
    snprintf(foreign, sizeof foreign, "%s/trimshim-%d.prom", dir, (int)dead2);
    put_file(foreign, "someone else's text, not ours\n"); /* the name fits, the content not */
    snprintf(other_name, sizeof other_name, "%s/trimshim-%dx.prom", dir, (int)dead);
    put_file(other_name, ours);
    ck_assert_int_eq(ts_prom_collect_stale(tmpl, (long)getpid()), 1);
    ck_assert_int_ne(access(p, F_OK), 0);
    ck_assert_int_eq(access(alive, F_OK), 0);
    ck_assert_int_eq(access(self, F_OK), 0);
    ck_assert_int_eq(access(foreign, F_OK), 0);
    ck_assert_int_eq(access(other_name, F_OK), 0);
    /* a template without %p in the file name collects nothing */
    snprintf(tmpl, sizeof tmpl, "%s/fixed.prom", dir);
    ck_assert_int_eq(ts_prom_collect_stale(tmpl, (long)getpid()), 0);
    rm_tmp();
}
END_TEST

START_TEST(templates)
{
    char out[TS_STATS_PATH_MAX];
    ck_assert_ptr_null(ts_check_stats_template("/tmp/m/trimshim-%p.prom"));
    ck_assert_int_eq(ts_expand_stats_template("/tmp/m/trimshim-%p.prom", 123, out, sizeof out), 0);
    ck_assert_str_eq(out, "/tmp/m/trimshim-123.prom");
    ck_assert_int_eq(ts_expand_stats_template("/x/a%%b-%p-%p", 9, out, sizeof out), 0);
    ck_assert_str_eq(out, "/x/a%b-9-9");
    ck_assert_int_eq(ts_expand_stats_template("/fixed.prom", 9, out, sizeof out), 0);
    ck_assert_str_eq(out, "/fixed.prom");
    static const char *const bad[] = {"", "stats.prom", "./s.prom", "/tmp/%x.prom", "/tmp/a%",
                                      "/tmp/", "/tmp/%p/s.prom", "/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(ts_check_stats_template(bad[i]) != NULL, "accepted '%s'", bad[i]);
        ck_assert_int_eq(ts_expand_stats_template(bad[i], 1, out, sizeof out), -1);
    }
    char longp[TS_STATS_PATH_MAX + 8];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    ck_assert_ptr_nonnull(ts_check_stats_template(longp));
    char small[8];
    ck_assert_int_eq(ts_expand_stats_template("/tmp/%p", 123456, small, sizeof small), -1);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("prom");
    TCase *tc = tcase_create("prom");
    tcase_add_test(tc, format_parses);
    tcase_add_test(tc, parser_refuses_what_scrapers_refuse);
    tcase_add_test(tc, labels_escaped);
    tcase_add_test(tc, format_too_small_is_nothing);
    tcase_add_test(tc, targets_a_rename_must_not_replace);
    tcase_add_test(tc, write_rename_remove_own);
    tcase_add_test(tc, stale_files_of_dead_processes);
    tcase_add_test(tc, templates);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
