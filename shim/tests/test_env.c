/* Check tests of TRIMSHIM_* parsing (env.c): the pure parser fed garbage for every variable, and
 * the same garbage given to a real program with the shim preloaded: one line on stderr naming
 * the variable and the value, the default used, the program's output and status unaffected. */
#define _GNU_SOURCE
#include "check_compat.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "policy.h"
#include "run.h"

struct lines {
    int n;
    char text[4096];
};

static void collect(const char *line, void *ctx)
{
    struct lines *l = ctx;
    l->n++;
    size_t used = strlen(l->text);
    size_t len = strlen(line);
    if (used + len < sizeof l->text)
        memcpy(l->text + used, line, len + 1);
}

static int parse(char *const *envp, struct ts_config *cfg, struct lines *l)
{
    memset(l, 0, sizeof *l);
    return ts_config_from_env(cfg, envp, collect, l);
}

/* ------------------------------------------------------------------------------------------ */

START_TEST(u64_valid)
{
    uint64_t v = 7;
    ck_assert_int_eq(ts_parse_u64("0", 0, 0, 100, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(ts_parse_u64("123", 0, 0, 1000, &v), 0);
    ck_assert_uint_eq(v, 123);
    ck_assert_int_eq(ts_parse_u64("64k", 1, 0, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 65536);
    ck_assert_int_eq(ts_parse_u64("64K", 1, 0, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 65536);
    ck_assert_int_eq(ts_parse_u64("64KiB", 1, 0, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 65536);
    ck_assert_int_eq(ts_parse_u64("64kB", 1, 0, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 65536);
    ck_assert_int_eq(ts_parse_u64("3M", 1, 0, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 3u << 20);
    ck_assert_int_eq(ts_parse_u64("2G", 1, 0, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 2ull << 30);
    ck_assert_int_eq(ts_parse_u64("18446744073709551615", 0, 0, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

START_TEST(u64_garbage)
{
    static const char *const bad[] = {
        "",    "-1",   "+1",  " 1",   "1 ",   "abc",  "1x",   "1kk",  "0x10", "1e3",   "1.5",
        "k",   "1k ",  "1KIB", "1kib", "\n",  "18446744073709551616",    "99999999999999999999999",
        "17179869184G", "9223372036854775808k",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t v = 42;
        ck_assert_msg(ts_parse_u64(bad[i], 1, 0, UINT64_MAX, &v) == -1, "accepted '%s'", bad[i]);
        ck_assert_uint_eq(v, 42);
    }
    uint64_t v = 42;
    ck_assert_int_eq(ts_parse_u64("64k", 0, 0, UINT64_MAX, &v), -1); /* no suffix allowed */
    ck_assert_int_eq(ts_parse_u64("0", 0, 1, 10, &v), -1);           /* range */
    ck_assert_int_eq(ts_parse_u64("11", 0, 1, 10, &v), -1);
    ck_assert_int_eq(ts_parse_u64(NULL, 0, 0, 10, &v), -1);
    ck_assert_uint_eq(v, 42);
}
END_TEST

START_TEST(percent)
{
    uint32_t p = 9;
    ck_assert_int_eq(ts_parse_percent_ppm("2", 0, 500000, &p), 0);
    ck_assert_uint_eq(p, 20000);
    ck_assert_int_eq(ts_parse_percent_ppm("0.5", 0, 500000, &p), 0);
    ck_assert_uint_eq(p, 5000);
    ck_assert_int_eq(ts_parse_percent_ppm("2.5%", 0, 500000, &p), 0);
    ck_assert_uint_eq(p, 25000);
    ck_assert_int_eq(ts_parse_percent_ppm("0.0001", 0, 500000, &p), 0);
    ck_assert_uint_eq(p, 1);
    ck_assert_int_eq(ts_parse_percent_ppm("50", 0, 500000, &p), 0);
    ck_assert_uint_eq(p, 500000);
    ck_assert_int_eq(ts_parse_percent_ppm("0", 0, 500000, &p), 0);
    ck_assert_uint_eq(p, 0);
    static const char *const bad[] = {"",   "-1",     "50.0001", "51",  ".",   "1.",   ".5",
                                      "abc", "0.00001", "1%%",   "1 %", "1e1", "999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = 9;
        ck_assert_msg(ts_parse_percent_ppm(bad[i], 0, 500000, &p) == -1, "accepted '%s'", bad[i]);
        ck_assert_uint_eq(p, 9);
    }
}
END_TEST

START_TEST(policy_names)
{
    enum ts_policy_kind k = TS_POLICY_OFF;
    ck_assert_int_eq(ts_parse_policy("adaptive", &k), 0);
    ck_assert_int_eq(k, TS_POLICY_ADAPTIVE);
    ck_assert_int_eq(ts_parse_policy("INTERVAL", &k), 0);
    ck_assert_int_eq(k, TS_POLICY_INTERVAL);
    ck_assert_int_eq(ts_parse_policy("Off", &k), 0);
    ck_assert_int_eq(k, TS_POLICY_OFF);
    ck_assert_int_eq(ts_parse_policy("", &k), -1);
    ck_assert_int_eq(ts_parse_policy("adaptive ", &k), -1);
    ck_assert_int_eq(ts_parse_policy("adapt", &k), -1);
    ck_assert_int_eq(ts_parse_policy("offf", &k), -1);
    ck_assert_int_eq(k, TS_POLICY_OFF);
}
END_TEST

START_TEST(escape)
{
    char b[96];
    ts_escape_value("a\"b\\c\nd\x01\xff", b, sizeof b);
    ck_assert_str_eq(b, "a\\\"b\\\\c\\x0ad\\x01\\xff");
    char longv[300];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    ts_escape_value(longv, b, sizeof b);
    ck_assert_uint_le(strlen(b), 70);
    ck_assert_ptr_nonnull(strstr(b, "..."));
    char tiny[4];
    ts_escape_value("abcdef", tiny, sizeof tiny);
    ck_assert_uint_lt(strlen(tiny), sizeof tiny);
    ts_escape_value(NULL, b, sizeof b);
    ck_assert_str_eq(b, "");
}
END_TEST

START_TEST(defaults)
{
    struct ts_config c, d;
    struct lines l;
    char *envp[] = {"HOME=/root", "PATH=/bin", NULL};
    ck_assert_int_eq(parse(envp, &c, &l), 0);
    ts_config_defaults(&d);
    ck_assert_int_eq(c.policy, TS_POLICY_ADAPTIVE);
    ck_assert_uint_eq(c.interval_ns, 100 * TS_NS_PER_MS);
    ck_assert_uint_eq(c.threshold, d.threshold);
    ck_assert_uint_eq(c.pad, 0);
    ck_assert_uint_eq(c.budget_ppm, 20000);
    ck_assert_uint_eq(c.busy_wait_ns, 10 * TS_NS_PER_S);
    ck_assert_int_eq(c.verbose, 0);
    ck_assert_ptr_null(c.log_path);
    ck_assert_int_eq(c.thread, TS_THREAD_AUTO);
    ck_assert_ptr_null(c.stats_path);
    ck_assert_int_eq(c.stats_keep, 0);
    ck_assert_int_eq(parse(NULL, &c, &l), 0);
}
END_TEST

START_TEST(valid_values)
{
    struct ts_config c;
    struct lines l;
    char *envp[] = {"TRIMSHIM_POLICY=interval", "TRIMSHIM_THRESHOLD=1M", "TRIMSHIM_PAD=128k",
                    "TRIMSHIM_BUDGET=0.5",      "TRIMSHIM_BUSY_WAIT_MS=0", "TRIMSHIM_VERBOSE=2",
                    "TRIMSHIM_LOG=/tmp/x.log",  NULL};
    ck_assert_int_eq(parse(envp, &c, &l), 0);
    ck_assert_int_eq(c.policy, TS_POLICY_INTERVAL);
    ck_assert_uint_eq(c.interval_ns, 1000 * TS_NS_PER_MS); /* interval policy's default */
    ck_assert_uint_eq(c.threshold, 1 << 20);
    ck_assert_uint_eq(c.pad, 128 << 10);
    ck_assert_uint_eq(c.budget_ppm, 5000);
    ck_assert_uint_eq(c.busy_wait_ns, 0);
    ck_assert_int_eq(c.verbose, 2);
    ck_assert_str_eq(c.log_path, "/tmp/x.log");

    char *e2[] = {"TRIMSHIM_INTERVAL_MS=250", "TRIMSHIM_LOG=stderr", NULL};
    ck_assert_int_eq(parse(e2, &c, &l), 0);
    ck_assert_uint_eq(c.interval_ns, 250 * TS_NS_PER_MS);
    ck_assert_ptr_null(c.log_path);
    ck_assert_int_eq(c.verbose, 1); /* asking for a log turns it on */

    char *e3[] = {"TRIMSHIM_LOG=/tmp/y", "TRIMSHIM_VERBOSE=0", NULL};
    ck_assert_int_eq(parse(e3, &c, &l), 0);
    ck_assert_int_eq(c.verbose, 0);

    char *e4[] = {"TRIMSHIM_THREAD=Always", "TRIMSHIM_STATS=/var/lib/t/trimshim-%p.prom",
                  "TRIMSHIM_STATS_KEEP=1", NULL};
    ck_assert_int_eq(parse(e4, &c, &l), 0);
    ck_assert_int_eq(c.thread, TS_THREAD_ALWAYS);
    ck_assert_str_eq(c.stats_path, "/var/lib/t/trimshim-%p.prom");
    ck_assert_int_eq(c.stats_keep, 1);
    char *e5[] = {"TRIMSHIM_THREAD=auto", NULL};
    ck_assert_int_eq(parse(e5, &c, &l), 0);
    ck_assert_int_eq(c.thread, TS_THREAD_AUTO);
}
END_TEST

/* Every variable x garbage: exactly one line naming the variable and the value; default kept. */
static const char *const garbage[] = {"", "-1", "99999999999999999999999", "abc"};
static const char *const numeric_vars[] = {"TRIMSHIM_INTERVAL_MS", "TRIMSHIM_THRESHOLD",
                                           "TRIMSHIM_PAD",         "TRIMSHIM_BUDGET",
                                           "TRIMSHIM_BUSY_WAIT_MS", "TRIMSHIM_VERBOSE",
                                           "TRIMSHIM_POLICY",      "TRIMSHIM_THREAD",
                                           "TRIMSHIM_STATS_KEEP"};

static void check_default(const char *var, const struct ts_config *c)
{
    struct ts_config d;
    ts_config_defaults(&d);
    if (!strcmp(var, "TRIMSHIM_INTERVAL_MS"))
        ck_assert_uint_eq(c->interval_ns, d.interval_ns);
    else if (!strcmp(var, "TRIMSHIM_THRESHOLD"))
        ck_assert_uint_eq(c->threshold, d.threshold);
    else if (!strcmp(var, "TRIMSHIM_PAD"))
        ck_assert_uint_eq(c->pad, d.pad);
    else if (!strcmp(var, "TRIMSHIM_BUDGET"))
        ck_assert_uint_eq(c->budget_ppm, d.budget_ppm);
    else if (!strcmp(var, "TRIMSHIM_BUSY_WAIT_MS"))
        ck_assert_uint_eq(c->busy_wait_ns, d.busy_wait_ns);
    else if (!strcmp(var, "TRIMSHIM_VERBOSE"))
        ck_assert_int_eq(c->verbose, d.verbose);
    else if (!strcmp(var, "TRIMSHIM_POLICY"))
        ck_assert_int_eq(c->policy, d.policy);
    else if (!strcmp(var, "TRIMSHIM_THREAD"))
        ck_assert_int_eq(c->thread, d.thread);
    else if (!strcmp(var, "TRIMSHIM_STATS_KEEP"))
        ck_assert_int_eq(c->stats_keep, d.stats_keep);
    else
        ck_abort_msg("no default check for %s", var);
}

START_TEST(garbage_every_variable)
{
    for (size_t v = 0; v < sizeof numeric_vars / sizeof *numeric_vars; v++) {
        for (size_t g = 0; g < sizeof garbage / sizeof *garbage; g++) {
            char kv[256];
            snprintf(kv, sizeof kv, "%s=%s", numeric_vars[v], garbage[g]);
            char *envp[] = {kv, NULL};
            struct ts_config c;
            struct lines l;
            ck_assert_int_eq(parse(envp, &c, &l), 1);
            ck_assert_int_eq(l.n, 1);
            ck_assert_int_eq(ts_count_lines(l.text), 1);
            ck_assert_msg(strstr(l.text, numeric_vars[v]) != NULL, "%s", l.text);
            char quoted[256];
            snprintf(quoted, sizeof quoted, "=\"%s\"", garbage[g]);
            ck_assert_msg(strstr(l.text, quoted) != NULL, "%s", l.text);
            ck_assert_msg(strstr(l.text, "using") != NULL, "%s", l.text);
            check_default(numeric_vars[v], &c);
        }
    }
    /* TRIMSHIM_STATS: garbage is anything but an absolute path; no statistics file then */
    static const char *const bad_stats[] = {"", "-1", "abc", "stats.prom", "/tmp/%s.prom",
                                            "/tmp/%p/x.prom", "/tmp/"};
    for (size_t g = 0; g < sizeof bad_stats / sizeof *bad_stats; g++) {
        char kv[256];
        snprintf(kv, sizeof kv, "TRIMSHIM_STATS=%s", bad_stats[g]);
        char *envp[] = {kv, NULL};
        struct ts_config c;
        struct lines l;
        ck_assert_int_eq(parse(envp, &c, &l), 1);
        ck_assert_int_eq(ts_count_lines(l.text), 1);
        char quoted[256];
        snprintf(quoted, sizeof quoted, "TRIMSHIM_STATS=\"%s\"", bad_stats[g]);
        ck_assert_msg(strstr(l.text, quoted) != NULL, "%s", l.text);
        ck_assert_msg(strstr(l.text, "no statistics file") != NULL, "%s", l.text);
        ck_assert_ptr_null(c.stats_path);
    }
    /* TRIMSHIM_LOG takes any path: only empty is garbage */
    char *envp[] = {"TRIMSHIM_LOG=", NULL};
    struct ts_config c;
    struct lines l;
    ck_assert_int_eq(parse(envp, &c, &l), 1);
    ck_assert_ptr_nonnull(strstr(l.text, "TRIMSHIM_LOG=\"\""));
    ck_assert_ptr_null(c.log_path);
    ck_assert_int_eq(c.verbose, 0);
}
END_TEST

START_TEST(out_of_range)
{
    static const char *const cases[] = {
        "TRIMSHIM_INTERVAL_MS=0", "TRIMSHIM_INTERVAL_MS=3600001", "TRIMSHIM_THRESHOLD=2T",
        "TRIMSHIM_THRESHOLD=1099511627777", "TRIMSHIM_PAD=1025G", "TRIMSHIM_BUDGET=50.5",
        "TRIMSHIM_BUSY_WAIT_MS=86400001", "TRIMSHIM_VERBOSE=3", "TRIMSHIM_POLICY=aggressive",
        "TRIMSHIM_INTERVAL_MS=1e3", "TRIMSHIM_INTERVAL_MS=100ms", "TRIMSHIM_THRESHOLD=64 k",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *envp[] = {(char *)cases[i], NULL};
        struct ts_config c;
        struct lines l;
        ck_assert_msg(parse(envp, &c, &l) == 1, "%s", cases[i]);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(strchr(cases[i], '=') - cases[i]), cases[i]);
        ck_assert_ptr_nonnull(strstr(l.text, name));
        check_default(name, &c);
    }
}
END_TEST

START_TEST(several_bad_one_line_each_and_unknown)
{
    char *envp[] = {"TRIMSHIM_PAD=x", "TRIMSHIM_BUDGET=y", "TRIMSHIM_INTERVAL=100",
                    "TRIMSHIM_POLICY=adaptive", "NOT_TRIMSHIM_X=1", "TRIMSHIM_=", NULL};
    struct ts_config c;
    struct lines l;
    ck_assert_int_eq(parse(envp, &c, &l), 4);
    ck_assert_int_eq(ts_count_lines(l.text), 4);
    ck_assert_ptr_nonnull(strstr(l.text, "TRIMSHIM_INTERVAL=\"100\": unknown variable"));
    ck_assert_ptr_nonnull(strstr(l.text, "TRIMSHIM_PAD=\"x\""));
}
END_TEST

START_TEST(newline_in_value_stays_one_line)
{
    char *envp[] = {"TRIMSHIM_THRESHOLD=12\n34", NULL};
    struct ts_config c;
    struct lines l;
    ck_assert_int_eq(parse(envp, &c, &l), 1);
    ck_assert_int_eq(ts_count_lines(l.text), 1);
    ck_assert_ptr_nonnull(strstr(l.text, "12\\x0a34"));
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* the same garbage, end to end: a program with the shim preloaded */

static char *helper_argv[] = {TS_HELPER_PATH, "work", NULL};

static void baseline(struct ts_run *r)
{
    char *env[] = {"LD_PRELOAD=" TS_SHIM_PATH, NULL};
    ck_assert_int_eq(ts_run(r, helper_argv, env, 60), 0);
    ck_assert_int_eq(r->exited, 1);
    ck_assert_int_eq(r->code, 0);
    ck_assert_str_eq(r->err, "");
    ck_assert_ptr_nonnull(strstr(r->out, "checksum"));
}

START_TEST(e2e_garbage_every_variable)
{
    static struct ts_run base, r;
    baseline(&base);
    for (size_t v = 0; v < sizeof numeric_vars / sizeof *numeric_vars; v++) {
        for (size_t g = 0; g < sizeof garbage / sizeof *garbage; g++) {
            char kv[256];
            snprintf(kv, sizeof kv, "%s=%s", numeric_vars[v], garbage[g]);
            char *env[] = {"LD_PRELOAD=" TS_SHIM_PATH, kv, NULL};
            ck_assert_int_eq(ts_run(&r, helper_argv, env, 60), 0);
            ck_assert_msg(r.exited && r.code == 0, "%s: status %d", kv, r.code);
            ck_assert_str_eq(r.out, base.out);
            ck_assert_msg(ts_count_lines(r.err) == 1, "%s: stderr '%s'", kv, r.err);
            ck_assert_msg(strstr(r.err, numeric_vars[v]) != NULL, "%s", r.err);
            ck_assert_msg(!strncmp(r.err, "trimshim[", 9), "%s", r.err); /* names its PID */
            char quoted[256];
            snprintf(quoted, sizeof quoted, "=\"%s\"", garbage[g]);
            ck_assert_msg(strstr(r.err, quoted) != NULL, "%s", r.err);
        }
    }
    char *env[] = {"LD_PRELOAD=" TS_SHIM_PATH, "TRIMSHIM_LOG=", NULL};
    ck_assert_int_eq(ts_run(&r, helper_argv, env, 60), 0);
    ck_assert_int_eq(r.code, 0);
    ck_assert_str_eq(r.out, base.out);
    ck_assert_int_eq(ts_count_lines(r.err), 1);
    ck_assert_ptr_nonnull(strstr(r.err, "TRIMSHIM_LOG=\"\""));
}
END_TEST

START_TEST(e2e_unopenable_log_falls_back_to_stderr)
{
    static struct ts_run base, r;
    baseline(&base);
    char *env[] = {"LD_PRELOAD=" TS_SHIM_PATH, "TRIMSHIM_LOG=/nonexistent-dir/x.log", NULL};
    ck_assert_int_eq(ts_run(&r, helper_argv, env, 60), 0);
    ck_assert_int_eq(r.code, 0);
    ck_assert_str_eq(r.out, base.out);
    ck_assert_ptr_nonnull(strstr(r.err, "TRIMSHIM_LOG=\"/nonexistent-dir/x.log\": cannot open"));
    ck_assert_ptr_nonnull(strstr(r.err, "]: running"));
    ck_assert_msg(!strncmp(r.err, "trimshim[", 9), "%s", r.err);
}
END_TEST

START_TEST(e2e_log_file_gets_lines)
{
    static struct ts_run r;
    char path[] = "/tmp/trimshim-test-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char kv[128];
    snprintf(kv, sizeof kv, "TRIMSHIM_LOG=%s", path);
    char *argv[] = {TS_HELPER_PATH, "seed", "300", "--idle", "3000", "--target-kb", "0", NULL};
    /* TRIMSHIM_LOG set: verbose 1, the refault watch's line included */
    char *env[] = {"LD_PRELOAD=" TS_SHIM_PATH, kv, NULL};
    ck_assert_int_eq(ts_run(&r, argv, env, 120), 0);
    ck_assert_int_eq(r.code, 0);
    ck_assert_str_eq(r.err, "");
    char buf[8192] = {0};
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unlink(path);
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(buf, "]: running"));
    ck_assert_msg(strstr(buf, "]: trim 1 (quiet): returned ") != NULL, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, " ms (rss "));
    ck_assert_ptr_nonnull(strstr(buf, "]: exit: "));
    /* every line names its process, the same one */
    long pid = -1;
    for (const char *line = buf; *line; line = strchr(line, '\n') + 1) {
        char *end;
        ck_assert_msg(!strncmp(line, "trimshim[", 9), "line '%.60s'", line);
        long p = strtol(line + 9, &end, 10);
        ck_assert_msg(p > 0 && !strncmp(end, "]: ", 3), "line '%.60s'", line);
        if (pid < 0)
            pid = p;
        ck_assert_int_eq(p, pid);
        if (!strchr(line, '\n'))
            break;
    }
}
END_TEST

int main(void)
{
    Suite *su = suite_create("env");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, u64_valid);
    tcase_add_test(tc, u64_garbage);
    tcase_add_test(tc, percent);
    tcase_add_test(tc, policy_names);
    tcase_add_test(tc, escape);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, valid_values);
    tcase_add_test(tc, garbage_every_variable);
    tcase_add_test(tc, out_of_range);
    tcase_add_test(tc, several_bad_one_line_each_and_unknown);
    tcase_add_test(tc, newline_in_value_stays_one_line);
    suite_add_tcase(su, tc);
    TCase *e2e = tcase_create("preloaded");
    tcase_set_timeout(e2e, 300);
    tcase_add_test(e2e, e2e_garbage_every_variable);
    tcase_add_test(e2e, e2e_unopenable_log_falls_back_to_stderr);
    tcase_add_test(e2e, e2e_log_file_gets_lines);
    suite_add_tcase(su, e2e);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
