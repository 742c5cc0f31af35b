/* TRIMSHIM_* environment parsing. Runs in the shim's constructor, before main: no allocation,
 * no stdio, no locale. Complaint lines are formatted into a stack buffer and handed to the sink. */
#include "env.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *const ts_env_names[] = {
    "TRIMSHIM_POLICY",    "TRIMSHIM_INTERVAL_MS", "TRIMSHIM_THRESHOLD", "TRIMSHIM_PAD",
    "TRIMSHIM_BUDGET",    "TRIMSHIM_BUSY_WAIT_MS", "TRIMSHIM_VERBOSE",  "TRIMSHIM_LOG",
    "TRIMSHIM_THREAD",    "TRIMSHIM_STATS",       "TRIMSHIM_STATS_KEEP",
    NULL,
};

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int eq_nocase(const char *a, const char *b)
{
    while (*a && *b && lower((unsigned char)*a) == lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == 0 && *b == 0;
}

int ts_parse_u64(const char *s, int allow_suffix, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        s++;
    }
    if (*s && allow_suffix) {
        unsigned shift;
        switch (*s) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return -1;
        }
        s++;
        if (s[0] == 'i' && s[1] == 'B')
            s += 2;
        else if (s[0] == 'B')
            s += 1;
        if (v > (UINT64_MAX >> shift))
            return -1;
        v <<= shift;
    }
    if (*s)
        return -1;
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int ts_parse_percent_ppm(const char *s, uint32_t min_ppm, uint32_t max_ppm, uint32_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    uint64_t whole = 0;
    while (*s >= '0' && *s <= '9') {
        whole = whole * 10 + (uint64_t)(*s - '0');
        if (whole > 100)
            return -1;
        s++;
    }
    uint64_t frac = 0; /* in 1/10000 of a percent */
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -1;
        uint64_t scale = 1000;
        while (*s >= '0' && *s <= '9') {
            if (scale == 0)
                return -1; /* more than 4 decimals */
            frac += (uint64_t)(*s - '0') * scale;
            scale /= 10;
            s++;
        }
    }
    if (*s == '%')
        s++;
    if (*s)
        return -1;
    uint64_t ppm = whole * 10000 + frac;
    if (ppm < min_ppm || ppm > max_ppm)
        return -1;
    *out = (uint32_t)ppm;
    return 0;
}

int ts_parse_policy(const char *s, enum ts_policy_kind *out)
{
    if (!s)
        return -1;
    if (eq_nocase(s, "adaptive"))
        *out = TS_POLICY_ADAPTIVE;
    else if (eq_nocase(s, "interval"))
        *out = TS_POLICY_INTERVAL;
    else if (eq_nocase(s, "off"))
        *out = TS_POLICY_OFF;
    else
        return -1;
    return 0;
}

int ts_parse_thread(const char *s, enum ts_thread_kind *out)
{
    if (!s)
        return -1;
    if (eq_nocase(s, "auto"))
        *out = TS_THREAD_AUTO;
    else if (eq_nocase(s, "always"))
        *out = TS_THREAD_ALWAYS;
    else
        return -1;
    return 0;
}

const char *ts_check_stats_template(const char *s)
{
    if (!s || !*s)
        return "empty (want an absolute file path, %p for the PID)";
    if (*s != '/')
        return "not an absolute path (the process's working directory is no place to look for "
               "it)";
    size_t len = 0, pids = 0;
    const char *last_slash = s;
    for (const char *p = s; *p; p++, len++) {
        if (*p == '/')
            last_slash = p;
        if (*p != '%')
            continue;
        if (p[1] == 'p')
            pids++;
        else if (p[1] != '%')
            return "a % that is neither %p (the PID) nor %% (a %)";
        p++;
        len++;
    }
    if (last_slash[1] == 0)
        return "ends in / (want a file path)";
    for (const char *p = s; p < last_slash; p++) {
        if (p[0] == '%' && p[1] == 'p')
            return "%p in a directory name (only the file name may vary by process)";
        if (p[0] == '%')
            p++;
    }
    /* a PID has at most 7 digits (pid_max <= 4194304); "%p" is 2 of them */
    if (len + pids * 5 > TS_STATS_PATH_MAX - 1)
        return "too long";
    return NULL;
}

int ts_expand_stats_template(const char *tmpl, long pid, char *out, size_t size)
{
    char digits[24];
    int nd = snprintf(digits, sizeof digits, "%ld", pid);
    size_t o = 0;
    if (ts_check_stats_template(tmpl) != NULL || nd <= 0 || size == 0)
        return -1;
    for (const char *p = tmpl; *p; p++) {
        const char *add = p;
        size_t n = 1;
        if (*p == '%') {
            p++;
            if (*p == 'p') {
                add = digits;
                n = (size_t)nd;
            }
        }
        if (o + n >= size)
            return -1;
        memcpy(out + o, add, n);
        o += n;
    }
    out[o] = 0;
    return 0;
}

void ts_escape_value(const char *s, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (size == 0)
        return;
    for (size_t i = 0; s && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[4];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            tmp[n++] = '\\';
            tmp[n++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[n++] = (char)c;
        } else {
            tmp[n++] = '\\';
            tmp[n++] = 'x';
            tmp[n++] = hex[c >> 4];
            tmp[n++] = hex[c & 15];
        }
        if (o + n + 4 > size || o >= 64) {
            if (o + 4 <= size) {
                memcpy(buf + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(buf + o, tmp, n);
        o += n;
    }
    buf[o < size ? o : size - 1] = 0;
}

struct ctx {
    ts_report_fn report;
    void *rctx;
    int lines;
};

static void complain(struct ctx *c, const char *name, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void complain(struct ctx *c, const char *name, const char *value, const char *fmt, ...)
{
    char esc[96];
    char tail[160];
    char line[320];
    va_list ap;
    ts_escape_value(value, esc, sizeof esc);
    va_start(ap, fmt);
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "trimshim: %s=\"%s\": %s\n", name, esc, tail);
    c->lines++;
    if (c->report)
        c->report(line, c->rctx);
}

/* Value of NAME in envp, or NULL. The first occurrence, as glibc's getenv. */
static const char *lookup(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

static void parse_bytes(struct ctx *c, char *const *envp, const char *name, uint64_t *field)
{
    const char *v = lookup(envp, name);
    if (!v)
        return;
    uint64_t x;
    if (ts_parse_u64(v, 1, 0, TS_BYTES_MAX, &x) == 0)
        *field = x;
    else
        complain(c, name, v, "not a byte count (0..1T, suffix k/M/G allowed); using %llu",
                 (unsigned long long)*field);
}

static void parse_ms(struct ctx *c, char *const *envp, const char *name, uint64_t min_ms,
                     uint64_t max_ms, uint64_t *field_ns)
{
    const char *v = lookup(envp, name);
    if (!v)
        return;
    uint64_t x;
    if (ts_parse_u64(v, 0, min_ms, max_ms, &x) == 0)
        *field_ns = x * TS_NS_PER_MS;
    else
        complain(c, name, v, "not a whole number of milliseconds in %llu..%llu; using %llu",
                 (unsigned long long)min_ms, (unsigned long long)max_ms,
                 (unsigned long long)(*field_ns / TS_NS_PER_MS));
}

int ts_config_from_env(struct ts_config *cfg, char *const *envp, ts_report_fn report, void *rctx)
{
    struct ctx c = {report, rctx, 0};
    const char *v;
    ts_config_defaults(cfg);

    if ((v = lookup(envp, "TRIMSHIM_POLICY")) && ts_parse_policy(v, &cfg->policy) != 0)
        complain(&c, "TRIMSHIM_POLICY", v, "not one of adaptive, interval, off; using adaptive");
    if (cfg->policy == TS_POLICY_INTERVAL)
        cfg->interval_ns = (uint64_t)TS_DEFAULT_INTERVAL_INTERVAL_MS * TS_NS_PER_MS;

    parse_ms(&c, envp, "TRIMSHIM_INTERVAL_MS", TS_INTERVAL_MS_MIN, TS_INTERVAL_MS_MAX,
             &cfg->interval_ns);
    parse_bytes(&c, envp, "TRIMSHIM_THRESHOLD", &cfg->threshold);
    parse_bytes(&c, envp, "TRIMSHIM_PAD", &cfg->pad);

    if ((v = lookup(envp, "TRIMSHIM_BUDGET"))) {
        uint32_t ppm;
        if (ts_parse_percent_ppm(v, 0, TS_BUDGET_PPM_MAX, &ppm) == 0)
            cfg->budget_ppm = ppm;
        else
            complain(&c, "TRIMSHIM_BUDGET", v,
                     "not a percentage in 0..50 (e.g. 2 or 0.5); using %u.%u",
                     cfg->budget_ppm / 10000, cfg->budget_ppm % 10000 / 1000);
    }
    parse_ms(&c, envp, "TRIMSHIM_BUSY_WAIT_MS", 0, TS_BUSY_WAIT_MS_MAX, &cfg->busy_wait_ns);

    const char *log = lookup(envp, "TRIMSHIM_LOG");
    if (log) {
        if (*log == 0) {
            complain(&c, "TRIMSHIM_LOG", log, "empty (want \"stderr\" or a file path); ignored");
        } else {
            if (strcmp(log, "stderr") != 0)
                cfg->log_path = log;
            cfg->verbose = 1; /* asking for a log means wanting one */
        }
    }
    if ((v = lookup(envp, "TRIMSHIM_THREAD")) && ts_parse_thread(v, &cfg->thread) != 0)
        complain(&c, "TRIMSHIM_THREAD", v, "not auto or always; using auto");
    if ((v = lookup(envp, "TRIMSHIM_STATS"))) {
        const char *why = ts_check_stats_template(v);
        if (why)
            complain(&c, "TRIMSHIM_STATS", v, "%s; no statistics file", why);
        else
            cfg->stats_path = v;
    }
    if ((v = lookup(envp, "TRIMSHIM_STATS_KEEP"))) {
        uint64_t x;
        if (ts_parse_u64(v, 0, 0, 1, &x) == 0)
            cfg->stats_keep = (int)x;
        else
            complain(&c, "TRIMSHIM_STATS_KEEP", v, "not 0 or 1; using 0 (remove it at exit)");
    }
    if ((v = lookup(envp, "TRIMSHIM_VERBOSE"))) {
        uint64_t x;
        if (ts_parse_u64(v, 0, 0, TS_VERBOSE_MAX, &x) == 0)
            cfg->verbose = (int)x;
        else
            complain(&c, "TRIMSHIM_VERBOSE", v, "not 0, 1 or 2; using %d", cfg->verbose);
    }

    /* unknown TRIMSHIM_ names: most likely typos of a knob */
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, "TRIMSHIM_", 9) != 0)
            continue;
        const char *eqp = strchr(*e, '=');
        size_t n = eqp ? (size_t)(eqp - *e) : strlen(*e);
        int known = 0;
        for (const char *const *k = ts_env_names; *k; k++)
            if (strlen(*k) == n && strncmp(*k, *e, n) == 0)
                known = 1;
        if (!known) {
            char name[64], esc[96];
            size_t m = n < sizeof name - 1 ? n : sizeof name - 1;
            memcpy(name, *e, m);
            name[m] = 0;
            ts_escape_value(name, esc, sizeof esc);
            complain(&c, esc, eqp ? eqp + 1 : "", "unknown variable, ignored");
        }
    }
    return c.lines;
}
