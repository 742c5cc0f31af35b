/* The runner's protocol variables as rssprobe reads them (rssprobe_env_long in rssprobe/phase.c:
 * RSSPROBE_PHASE_*, RETENTION_WATCH_*), checked against a reference reading written here.
 * Input: one value (up to its first NUL), read in each of the ranges the callers use.
 * Contract (rssprobe_internal.h): bare decimal digits with an optional '-', in range, are the
 * result and nothing is written; unset or empty is the default, silently; anything else is the
 * default with exactly one line on stderr that names the variable and the range. */
#define _GNU_SOURCE /* setenv, dup2 */
#include "fuzz_common.h"
#include "rssprobe_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME "RSSPROBE_FUZZ"
#define MAX_VALUE 400

static const struct { long min, max; const char *range; } ranges[] = {
    {0, INT_MAX, "0..2147483647"}, /* RSSPROBE_PHASE_FD */
    {0, 1, "0..1"},                /* RSSPROBE_PHASE_TRIM, RETENTION_WATCH_TRIM */
    {0, 3600, "0..3600"},          /* RSSPROBE_PHASE_IDLE */
    {1, 60000, "1..60000"},        /* RETENTION_WATCH_INTERVAL_MS */
    {1, LONG_MAX, "1..9223372036854775807"}, /* RETENTION_WATCH_PPID */
};

/* "-?[0-9]+" that fits a long -> 1 and *out */
static int ref_long(const char *s, long *out)
{
    int neg = *s == '-';
    const char *p = s + neg;
    unsigned long long v = 0, cap = neg ? (unsigned long long)LONG_MAX + 1 : LONG_MAX;
    if (*p < '0' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (cap - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (*p)
        return 0;
    *out = neg ? (v == (unsigned long long)LONG_MAX + 1 ? LONG_MIN : -(long)v) : (long)v;
    return 1;
}

static int g_pipe[2] = {-1, -1}, g_saved = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char value[MAX_VALUE + 1], said[1024];
    size_t n = size < MAX_VALUE ? size : MAX_VALUE;
    memcpy(value, data, n);
    value[n] = '\0';
    if (g_saved < 0) {
        g_saved = dup(STDERR_FILENO);
        FUZZ_CHECK(g_saved >= 0 && pipe(g_pipe) == 0, "no pipe for stderr");
        fcntl(g_pipe[0], F_SETFL, O_NONBLOCK);
    }
    setenv(NAME, value, 1);
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const long dflt = -77;
        dup2(g_pipe[1], STDERR_FILENO);
        long got = rssprobe_env_long(NAME, ranges[i].min, ranges[i].max, dflt);
        dup2(g_saved, STDERR_FILENO);
        ssize_t r = read(g_pipe[0], said, sizeof said - 1);
        said[r > 0 ? r : 0] = '\0';

        long want;
        int good = ref_long(value, &want) && want >= ranges[i].min && want <= ranges[i].max;
        if (good || value[0] == '\0') {
            FUZZ_CHECK(got == (good ? want : dflt), "%s in %s: %ld, want %ld", value,
                       ranges[i].range, got, good ? want : dflt);
            FUZZ_CHECK(said[0] == '\0', "%s in %s: said %s", value, ranges[i].range, said);
            continue;
        }
        FUZZ_CHECK(got == dflt, "%s in %s: %ld taken from a bad value", value, ranges[i].range, got);
        size_t len = strlen(said);
        FUZZ_CHECK(len > 0 && said[len - 1] == '\n' && strchr(said, '\n') == said + len - 1,
                   "%s in %s: not one line: [%s]", value, ranges[i].range, said);
        FUZZ_CHECK(strncmp(said, "rssprobe: " NAME "=", strlen("rssprobe: " NAME "=")) == 0 &&
                       strstr(said, ranges[i].range) != NULL,
                   "%s in %s: the line names neither variable nor range: %s", value,
                   ranges[i].range, said);
    }
    return 0;
}
