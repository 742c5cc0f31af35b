/* trimshim configuration from TRIMSHIM_* environment variables. Pure: takes an environment array
 * and a sink for complaint lines, so the unit tests feed it garbage directly. A bad value yields
 * exactly one line naming the variable and the value, and the default is used. */
#ifndef TRIMSHIM_ENV_H
#define TRIMSHIM_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Receives one complete line, ending in '\n'. */
typedef void (*ts_report_fn)(const char *line, void *ctx);

/* Fills cfg from envp (a NULL-terminated "NAME=VALUE" array, e.g. environ; NULL = empty).
 * Unknown TRIMSHIM_* names are reported too (typos). Returns the number of lines reported.
 * cfg->log_path points into envp. */
int ts_config_from_env(struct ts_config *cfg, char *const *envp, ts_report_fn report, void *ctx);

/* Building blocks (exposed for the tests). All return 0 on success, -1 on a bad value (out is
 * then untouched). No locale, no allocation, no errno. */

/* Unsigned decimal, optionally (allow_suffix) followed by k/K, m/M, g/G (powers of 1024) and an
 * optional "B" or "iB"; in [min, max]. */
int ts_parse_u64(const char *s, int allow_suffix, uint64_t min, uint64_t max, uint64_t *out);

/* A percentage "2", "0.5", "2.5%" (at most 4 decimals), returned in ppm, in [min_ppm, max_ppm]. */
int ts_parse_percent_ppm(const char *s, uint32_t min_ppm, uint32_t max_ppm, uint32_t *out);

/* "adaptive", "interval", "off" (any case). */
int ts_parse_policy(const char *s, enum ts_policy_kind *out);

/* "auto", "always" (any case). */
int ts_parse_thread(const char *s, enum ts_thread_kind *out);

/* TRIMSHIM_STATS: NULL if s is a usable template (an absolute path; %p, the PID, only in the file
 * name; %% a %; short enough once expanded), else why not, for the complaint line. */
const char *ts_check_stats_template(const char *s);

/* Expands a template (%p: pid) into out. Returns 0, or -1 (bad template, no room). */
int ts_expand_stats_template(const char *tmpl, long pid, char *out, size_t size);

/* Copies s into buf for a message: printable ASCII kept, '"' and '\\' escaped, other bytes as
 * \xNN, cut at about 64 characters with "...". Always NUL-terminates (size >= 1). */
void ts_escape_value(const char *s, char *buf, size_t size);

/* The variable names, NULL-terminated (for the README and the tests). */
extern const char *const ts_env_names[];

/* Limits (inclusive). */
#define TS_INTERVAL_MS_MIN 1u
#define TS_INTERVAL_MS_MAX 3600000u
#define TS_BYTES_MAX (1ull << 40)
#define TS_BUDGET_PPM_MAX 500000u
#define TS_BUSY_WAIT_MS_MAX 86400000u
#define TS_VERBOSE_MAX 2u
#define TS_STATS_PATH_MAX 1024u /* the statistics file's path, expanded, with its NUL */

#ifdef __cplusplus
}
#endif

#endif
