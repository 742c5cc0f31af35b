/* A library preloaded next to the shim (before or after it) whose constructor allocates, frees
 * and makes the dynamic linker allocate and free (dlopen/dlclose), before or after the shim's own
 * constructor ran: neither may disturb the other. It also installs a SIGUSR2 handler there:
 * preloaded before the shim, that handler exists before the shim's constructor, which must still
 * count it as a handler (and sigaction must still report it as the program's). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"))) volatile int ts_early_handled;

__attribute__((visibility("default"))) void ts_early_handler(int sig);
void ts_early_handler(int sig)
{
    (void)sig;
    ts_early_handled++;
}

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
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ts_early_handler;
    sigaction(SIGUSR2, &sa, NULL);
}
