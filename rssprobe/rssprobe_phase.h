/* rssprobe_phase: report your own program's phases to `retention run`, from C or C++.
 *
 *     #include <rssprobe_phase.h>
 *     rssprobe_phase("baseline");
 *     ... allocate ...
 *     rssprobe_phase("peak");
 *     ... free, keeping some objects: rssprobe_phase_keep(p, size) for each ...
 *     rssprobe_phase("after_free");
 *
 * Each call measures RSS, anonymous RSS and the allocator's figures (glibc's mallinfo2) and hands
 * them to the runner under that name, through the file descriptor the runner passes in
 * RSSPROBE_PHASE_FD. Run any other way (no runner), a call does nothing and returns 0, so the
 * calls can stay in a test program for good. Nothing here allocates from the heap it measures.
 *
 * The cells of `retention run` ask for more after your "after_free" phase, as the case harness
 * does: RSSPROBE_PHASE_TRIM=1 (cell trim) calls malloc_trim(0) and reports "after_trim";
 * RSSPROBE_PHASE_IDLE=N (cells shim, jemalloc, ...) stays quiet N seconds, sampling, and reports
 * "after_idle". Link: -lrssprobe (pkg-config rssprobe), or find_package(retention) and
 * retention::rssprobe. Thread-safe; the phases of one program are reported in call order. */
#ifndef RSSPROBE_PHASE_H
#define RSSPROBE_PHASE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reports phase `name` (at most 64 characters: letters, digits, '_'). Returns 0 (also when not
 * run by the runner), or -1 when the report could not be written (errno set) or the name is
 * not acceptable (EINVAL). */
int rssprobe_phase(const char *name);

/* Declares an object that stays alive after the free, for the page floor (the pages no allocator
 * can return while it lives: metric floor_ratio) and for memcheck's count of still-reachable
 * blocks (figures live_objects, live_bytes). Returns 0, or -1 (errno ENOMEM or EINVAL). A no-op
 * returning 0 when not run by the runner. */
int rssprobe_phase_keep(const void *ptr, size_t size);

#ifdef __cplusplus
}
#endif
#endif
