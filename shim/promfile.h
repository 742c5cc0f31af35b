/* trimshim statistics as a Prometheus text exposition file (the node_exporter textfile-collector
 * convention: write a temporary file in the same directory, rename it over the target).
 *
 * Formatting is pure (a caller's buffer, snprintf of integers and strings only: no floating
 * point, whose printf may allocate), so the unit tests parse its output. The file functions use
 * open/write/rename/unlink/stat and getdents64 into stack buffers: no heap, since they run on the
 * shim's thread or at the program's idle points. */
#ifndef TRIMSHIM_PROMFILE_H
#define TRIMSHIM_PROMFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ts_prom_values {
    long pid;
    const char *program;  /* the label value (escaped by the formatter) */
    const char *mode;     /* "thread", "idle-points", "none" */
    const char *policy;   /* "adaptive", "interval", "off" */
    int state;            /* index into state_names */
    const char *const *state_names;
    int nstates;
    uint64_t trims_quiet, trims_busy, trims_interval, trims_api;
    uint64_t returned_bytes;
    uint64_t trim_ns, probe_ns, cpu_ns;
    uint64_t probes, futile, refault_faults, wakeups, idle_points;
    uint64_t heap_free_bytes, heap_used_bytes, rss_bytes;
    uint64_t start_time_s; /* Unix time the shim started in this process */
};

/* The file's text into buf. Returns its length, or 0 if it does not fit (nothing usable). */
size_t ts_prom_format(char *buf, size_t size, const struct ts_prom_values *v);

/* "a" -> "a", `"` -> `\"`, `\` -> `\\`, newline -> `\n`; other control bytes become '?'.
 * Always NUL-terminates (size >= 1), cut to fit. */
void ts_prom_escape_label(const char *s, char *buf, size_t size);

/* May path be written? Its directory must exist and be a directory; the path itself must not
 * exist yet or be a regular file (following a symlink): a rename would replace a device (think
 * /dev/null as root), a directory or whatever else is there. Returns 0, or -1 with why (for the
 * complaint line) filled in. */
int ts_prom_check_target(const char *path, char *why, size_t why_size);

/* Writes len bytes of text to <dir>/.<name>.<pid>.tmp (created exclusively, never through a
 * symlink) and renames it over path. *dev / *ino: the file written (so that the process removes
 * only its own file at exit). Returns 0, or an errno value. */
int ts_prom_write(const char *path, long pid, const char *text, size_t len, dev_t *dev,
                  ino_t *ino);

/* Removes path if it is still the file ts_prom_write wrote (same device and inode). Returns 1 if
 * removed, 0 if not. */
int ts_prom_remove_own(const char *path, dev_t dev, ino_t ino);

/* Files of dead processes: for a template whose file name holds %p, removes the files of its
 * directory whose name is the template with some other PID, whose process no longer exists, and
 * that begin as this shim's files do. A process killed by a signal runs no exit code; its file
 * would otherwise stay for ever. Returns the number removed. */
int ts_prom_collect_stale(const char *tmpl, long self_pid);

#ifdef __cplusplus
}
#endif

#endif
