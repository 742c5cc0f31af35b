/* A library preloaded next to the shim (before or after it) whose constructor allocates, frees
 * and makes the dynamic linker allocate and free (dlopen/dlclose), before or after the shim's own
 * constructor ran: neither may disturb the other. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

__attribute__((constructor)) static void early(void)
{
    for (int i = 1; i <= 2000; i++) {
        char *p = malloc((size_t)i * 97);
        memset(p, i & 0xff, 16);
        free(p);
    }
    void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
    if (h)
        dlclose(h);
    void *q = calloc(1000, 8);
    q = realloc(q, 100000);
    free(q);
}
