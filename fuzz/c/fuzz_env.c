/* TRIMSHIM_* parsing (shim/env.c), checked against a reference reading of each variable written
 * here from README's grammar, not from env.c.
 * Input: environment entries, one per line (a 0x01 byte stands for a newline inside a value; a
 * NUL ends the entry, as in a real environment).
 * Contract (env.h): a malformed value gives exactly one complete line on the report callback,
 * naming the variable, and the default stays; a good value gives no line and is used; an unknown
 * TRIMSHIM_ name gives one line; the count returned is the number of lines. A usable statistics
 * path template also expands for the largest PID. */
#include "fuzz_common.h"
#include "env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 64

struct lines {
    int n;
    char text[MAX_ENTRIES * 2][400];
};

static void report(const char *line, void *ctx)
{
    struct lines *l = ctx;
    size_t len = strlen(line);
    FUZZ_CHECK(len > 0 && line[len - 1] == '\n', "report line without its newline: %s", line);
    FUZZ_CHECK(strchr(line, '\n') == line + len - 1, "report line with two newlines: %s", line);
    FUZZ_CHECK(strncmp(line, "trimshim: TRIMSHIM_", 19) == 0, "report line names no variable: %s",
               line);
    FUZZ_CHECK(l->n < MAX_ENTRIES * 2, "more report lines than entries");
    FUZZ_CHECK(len < sizeof l->text[0], "report line of %zu bytes", len);
    memcpy(l->text[l->n++], line, len + 1);
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int same_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (lower((unsigned char)*a) != lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* digits [suffix [B|iB]] -> 1 and *out; anything else 0. Capped arithmetic: any value past
 * 2^62 reads as 2^62, more than every limit. */
static int ref_number(const char *s, int suffix, unsigned long long *out)
{
    const unsigned long long cap = 1ull << 62;
    unsigned long long v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++)
        v = v > cap / 10 ? cap : v * 10 + (unsigned)(*p - '0');
    if (v > cap)
        v = cap;
    if (suffix && *p) {
        const char *u = "kKmMgG";
        const char *at = strchr(u, *p);
        if (!at || !*p)
            return 0;
        int shift = 10 * (int)(1 + (at - u) / 2);
        p++;
        if (!strcmp(p, "B") || !strcmp(p, "iB"))
            p += strlen(p);
        v = v > (cap >> shift) ? cap : v << shift;
    }
    if (*p)
        return 0;
    *out = v;
    return 1;
}

/* "W[.F{1,4}][%]" with W.F <= 50 -> ppm */
static int ref_percent(const char *s, unsigned long long *ppm)
{
    const char *p = s;
    unsigned long long w = 0, f = 0;
    if (*p < '0' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++)
        w = w > 1000 ? w : w * 10 + (unsigned)(*p - '0');
    if (*p == '.') {
        p++;
        int nd = 0;
        unsigned long long scale = 1000;
        for (; *p >= '0' && *p <= '9'; p++, nd++) {
            if (nd == 4)
                return 0;
            f += (unsigned)(*p - '0') * scale;
            scale /= 10;
        }
        if (nd == 0)
            return 0;
    }
    if (*p == '%')
        p++;
    if (*p)
        return 0;
    *ppm = w * 10000 + f;
    return *ppm <= TS_BUDGET_PPM_MAX;
}

static int ref_template(const char *s)
{
    if (s[0] != '/')
        return 0;
    size_t len = 0, last_slash = 0;
    for (size_t i = 0; s[i]; i++)
        if (s[i] == '/')
            last_slash = i;
    if (s[last_slash + 1] == 0)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '%') {
            if (s[i + 1] == 'p') {
                if (i < last_slash)
                    return 0;
                len += 7; /* the widest PID */
            } else if (s[i + 1] == '%') {
                len += 1;
            } else {
                return 0;
            }
            i++;
        } else {
            len++;
        }
    }
    return len <= TS_STATS_PATH_MAX - 1;
}

/* The first value of name in envp (glibc's getenv), or NULL. */
static const char *first(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (; *envp; envp++)
        if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

static int named(const struct lines *l, const char *name)
{
    char want[64];
    int count = 0;
    snprintf(want, sizeof want, "trimshim: %s=\"", name);
    for (int i = 0; i < l->n; i++)
        if (!strncmp(l->text[i], want, strlen(want)))
            count++;
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    char *envp[MAX_ENTRIES + 1];
    int n = 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    for (size_t i = 0; i < size; i++)
        if (copy[i] == 1)
            copy[i] = '\n';
    /* entries end at the input's newlines (the 0x01 bytes became newlines after the split) */
    char *p = copy;
    for (size_t i = 0; i <= size && n < MAX_ENTRIES; i++) {
        if (i == size || data[i] == '\n') {
            copy[i] = 0;
            envp[n++] = p;
            p = copy + i + 1;
        }
    }
    envp[n] = NULL;

    struct lines *got = calloc(1, sizeof *got);
    struct ts_config cfg, def;
    ts_config_defaults(&def);
    int ret = ts_config_from_env(&cfg, envp, report, got);
    FUZZ_CHECK(ret == got->n, "returned %d, reported %d lines", ret, got->n);

    int expect_lines = 0;
    const char *v;
    unsigned long long x;

#define ONE_LINE(name, bad)                                                                      \
    do {                                                                                         \
        int c = named(got, name);                                                                \
        FUZZ_CHECK(c == ((bad) ? 1 : 0), "%s=\"%s\": %d lines, want %d", name, v, c, (bad) ? 1 : 0); \
        expect_lines += (bad) ? 1 : 0;                                                           \
    } while (0)

    enum ts_policy_kind policy = def.policy;
    if ((v = first(envp, "TRIMSHIM_POLICY"))) {
        int ok = same_nocase(v, "adaptive") || same_nocase(v, "interval") || same_nocase(v, "off");
        ONE_LINE("TRIMSHIM_POLICY", !ok);
        if (ok)
            policy = same_nocase(v, "adaptive") ? TS_POLICY_ADAPTIVE
                     : same_nocase(v, "interval") ? TS_POLICY_INTERVAL : TS_POLICY_OFF;
    }
    FUZZ_CHECK(cfg.policy == policy, "policy %d, want %d", (int)cfg.policy, (int)policy);

    unsigned long long interval_ms = policy == TS_POLICY_INTERVAL ? TS_DEFAULT_INTERVAL_INTERVAL_MS
                                                                  : TS_DEFAULT_ADAPTIVE_INTERVAL_MS;
    if ((v = first(envp, "TRIMSHIM_INTERVAL_MS"))) {
        int ok = ref_number(v, 0, &x) && x >= TS_INTERVAL_MS_MIN && x <= TS_INTERVAL_MS_MAX;
        ONE_LINE("TRIMSHIM_INTERVAL_MS", !ok);
        if (ok)
            interval_ms = x;
    }
    FUZZ_CHECK(cfg.interval_ns == interval_ms * TS_NS_PER_MS, "interval %llu ns, want %llu ms",
               (unsigned long long)cfg.interval_ns, interval_ms);

    static const char *const bytes_names[2] = {"TRIMSHIM_THRESHOLD", "TRIMSHIM_PAD"};
    uint64_t bytes_got[2] = {cfg.threshold, cfg.pad}, bytes_def[2] = {def.threshold, def.pad};
    for (int k = 0; k < 2; k++) {
        unsigned long long want = bytes_def[k];
        if ((v = first(envp, bytes_names[k]))) {
            int ok = ref_number(v, 1, &x) && x <= TS_BYTES_MAX;
            ONE_LINE(bytes_names[k], !ok);
            if (ok)
                want = x;
        }
        FUZZ_CHECK(bytes_got[k] == want, "%s: %llu, want %llu", bytes_names[k],
                   (unsigned long long)bytes_got[k], want);
    }

    unsigned long long ppm = def.budget_ppm;
    if ((v = first(envp, "TRIMSHIM_BUDGET"))) {
        unsigned long long y;
        int ok = ref_percent(v, &y);
        ONE_LINE("TRIMSHIM_BUDGET", !ok);
        if (ok)
            ppm = y;
    }
    FUZZ_CHECK(cfg.budget_ppm == ppm, "budget %u ppm, want %llu", cfg.budget_ppm, ppm);

    unsigned long long busy_ms = TS_DEFAULT_BUSY_WAIT_MS;
    if ((v = first(envp, "TRIMSHIM_BUSY_WAIT_MS"))) {
        int ok = ref_number(v, 0, &x) && x <= TS_BUSY_WAIT_MS_MAX;
        ONE_LINE("TRIMSHIM_BUSY_WAIT_MS", !ok);
        if (ok)
            busy_ms = x;
    }
    FUZZ_CHECK(cfg.busy_wait_ns == busy_ms * TS_NS_PER_MS, "busy wait %llu ns, want %llu ms",
               (unsigned long long)cfg.busy_wait_ns, busy_ms);

    int verbose = 0;
    const char *log_path = NULL;
    if ((v = first(envp, "TRIMSHIM_LOG"))) {
        ONE_LINE("TRIMSHIM_LOG", *v == 0);
        if (*v) {
            verbose = 1;
            if (strcmp(v, "stderr") != 0)
                log_path = v;
        }
    }
    FUZZ_CHECK(cfg.log_path == log_path, "log path %s", cfg.log_path ? cfg.log_path : "(null)");

    enum ts_thread_kind thread = def.thread;
    if ((v = first(envp, "TRIMSHIM_THREAD"))) {
        int ok = same_nocase(v, "auto") || same_nocase(v, "always");
        ONE_LINE("TRIMSHIM_THREAD", !ok);
        if (ok)
            thread = same_nocase(v, "auto") ? TS_THREAD_AUTO : TS_THREAD_ALWAYS;
    }
    FUZZ_CHECK(cfg.thread == thread, "thread %d, want %d", (int)cfg.thread, (int)thread);

    const char *stats = NULL;
    if ((v = first(envp, "TRIMSHIM_STATS"))) {
        int ok = ref_template(v);
        ONE_LINE("TRIMSHIM_STATS", !ok);
        if (ok) {
            stats = v;
            char path[TS_STATS_PATH_MAX];
            FUZZ_CHECK(ts_expand_stats_template(v, 4194304, path, sizeof path) == 0,
                       "usable template %s does not expand for PID 4194304", v);
        }
    }
    FUZZ_CHECK(cfg.stats_path == stats, "stats path %s", cfg.stats_path ? cfg.stats_path : "(null)");

    int keep = 0;
    if ((v = first(envp, "TRIMSHIM_STATS_KEEP"))) {
        int ok = ref_number(v, 0, &x) && x <= 1;
        ONE_LINE("TRIMSHIM_STATS_KEEP", !ok);
        if (ok)
            keep = (int)x;
    }
    FUZZ_CHECK(cfg.stats_keep == keep, "stats keep %d, want %d", cfg.stats_keep, keep);

    if ((v = first(envp, "TRIMSHIM_VERBOSE"))) {
        int ok = ref_number(v, 0, &x) && x <= TS_VERBOSE_MAX;
        ONE_LINE("TRIMSHIM_VERBOSE", !ok);
        if (ok)
            verbose = (int)x;
    }
    FUZZ_CHECK(cfg.verbose == verbose, "verbose %d, want %d", cfg.verbose, verbose);

    /* every other TRIMSHIM_ entry is an unknown name: one line each */
    for (int i = 0; i < n; i++) {
        if (strncmp(envp[i], "TRIMSHIM_", 9) != 0)
            continue;
        size_t len = strcspn(envp[i], "=");
        int known = 0;
        for (const char *const *k = ts_env_names; *k; k++)
            if (strlen(*k) == len && !strncmp(*k, envp[i], len))
                known = 1;
        expect_lines += !known;
    }
    FUZZ_CHECK(got->n == expect_lines, "%d lines, want %d", got->n, expect_lines);

    /* the message helpers on their own: any buffer size, always terminated, never past it */
    for (size_t sz = 1; sz <= 80; sz += 13) {
        char *buf = malloc(sz);
        ts_escape_value(copy, buf, sz);
        FUZZ_CHECK(memchr(buf, 0, sz) != NULL, "escape into %zu bytes: no NUL", sz);
        free(buf);
    }
    free(got);
    free(copy);
    return 0;
}
