/* What rssprobe's own parts share and its users do not see: phase.c (in librssprobe) and the
 * watch probe (libwatchprobe.so, which links librssprobe) read the runner's protocol variables
 * the same way. Hidden: never exported from a shared object that links the archive. */
#ifndef RSSPROBE_INTERNAL_H
#define RSSPROBE_INTERNAL_H

/* The environment variable as a whole number in [min, max], else dflt (unset, empty, junk or
 * out of range: the runner sets these, so anything else means "not run by the runner"). */
__attribute__((visibility("hidden"))) long rssprobe_env_long(const char *name, long min, long max, long dflt);

#endif
