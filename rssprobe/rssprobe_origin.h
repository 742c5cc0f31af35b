/* Which loaded object defines an allocator function for the program: the shim (is malloc
 * glibc's? else malloc_trim would do nothing) and the watch probe (whose statistics to read) ask
 * the same question. Internal: not installed, hidden in every shared object that links it. */
#ifndef RSSPROBE_ORIGIN_H
#define RSSPROBE_ORIGIN_H

#include <dlfcn.h>

/* Fills *info for the definition of `name` that the program's calls reach and returns 1, or 0
 * when none is found. dlsym(RTLD_DEFAULT) alone can answer with a canonical PLT entry in a
 * non-PIE executable that takes the function's address (Debian's /usr/bin/python3 does for
 * malloc): an undefined symbol with a value, which names the executable as the definer. Then the
 * definition is the first object after it, in the global lookup order, that defines `name`. */
__attribute__((visibility("hidden"))) int rssprobe_definition_of(const char *name, Dl_info *info);

#endif
