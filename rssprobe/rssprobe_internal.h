/* What rssprobe's own parts share and its users do not see: phase.c (in librssprobe) and the
 * watch probe (libwatchprobe.so, which links librssprobe) read the runner's protocol variables
 * the same way. Hidden: never exported from a shared object that links the archive. */
#ifndef RSSPROBE_INTERNAL_H
#define RSSPROBE_INTERNAL_H

/* The environment variable as a whole number in [min, max], else dflt: unset or empty silently
 * (not run by the runner), junk or out of range with one line on stderr naming the variable, its
 * value and the range (the runner never sets such a value: somebody set it by hand, and should
 * learn that it was ignored rather than find a phase or an interval missing). */
__attribute__((visibility("hidden"))) long rssprobe_env_long(const char *name, long min, long max, long dflt);

#endif
