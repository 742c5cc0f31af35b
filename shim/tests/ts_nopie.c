/* ts_nopie: a non-PIE executable (ET_EXEC: built -fno-pie -no-pie) that takes malloc's address,
 * as Debian's /usr/bin/python3.11 does. The linker then gives malloc a canonical PLT entry in the
 * executable, and dlsym(RTLD_DEFAULT, "malloc") answers with that stub, which dladdr names as the
 * executable's: the shim used to stand down ("malloc is not glibc's (it comes from
 * .../ts_nopie)"), and the watch probe to call the allocator unknown.
 *
 *   ts_nopie [N [MS]]   N (default 2000) x 64 KiB blocks, each followed by a 24-byte node that
 *                       stays; the blocks freed; then MS ms (default 3000) of nanosleep, where the
 *                       shim works in a single-threaded program. Prints one JSON line first:
 *                       whether dlsym's malloc is the stub in this executable (what makes the
 *                       program a test of that case at all). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Volatile and used below, so the compiler keeps the address taken. It is taken in code (main),
 * not in a static initializer: non-PIC code's absolute reference is what needs the canonical PLT
 * entry; a data initializer gets a dynamic relocation to libc's malloc instead. */
void *(*volatile pick)(size_t);

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
    long ms = argc > 2 ? strtol(argv[2], NULL, 10) : 3000;
    pick = malloc;
    Dl_info info;
    void *seen = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info self;
    int in_exe = seen && dladdr(seen, &info) && dladdr((void *)main, &self) &&
                 info.dli_fbase == self.dli_fbase;
    printf("{\"dlsym_malloc_in_executable\":%d,\"pick_is_dlsym\":%d}\n", in_exe,
           (void *)pick == seen);
    fflush(stdout);
    char **blocks = calloc((size_t)n, sizeof *blocks);
    char **nodes = calloc((size_t)n, sizeof *nodes);
    if (!blocks || !nodes)
        return 2;
    for (long i = 0; i < n; i++) {
        blocks[i] = pick(65536);
        nodes[i] = pick(24);
        if (!blocks[i] || !nodes[i])
            return 2;
        memset(blocks[i], 'b', 65536);
        memset(nodes[i], 'n', 24);
    }
    for (long i = 0; i < n; i++)
        free(blocks[i]);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    long kept = 0;
    for (long i = 0; i < n; i++)
        kept += nodes[i][0] == 'n';
    printf("{\"kept\":%ld}\n", kept);
    return 0;
}
