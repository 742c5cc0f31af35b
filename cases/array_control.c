/* Pins the seed's control: the same 64 KiB blocks with their pointers in one array (no small live objects between them) coalesce into the top of the heap at free, so glibc trims them back without any malloc_trim. */
/* One binary, two cases: --pin-top BYTES allocates one small object after the blocks, on top of
 * the heap, which is all it takes to stop that trim (top_pinned). */
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

/* Global roots, so memcheck finds the live objects reachable at exit (see list_retention.c). */
static char **blocks;
static char *pin;

int main(int argc, char **argv)
{
    long count = 10000, size = 64 * 1024, pin_top = 0;
    const struct scenario_option options[] = {
        {"--count", &count, 1, 100000000L},
        {"--size", &size, 1, 1L << 30},
        {"--pin-top", &pin_top, 0, 4096},
        {0},
    };
    struct scenario s;

    scenario_init(&s, "array_control", options, argc, argv);
    scenario_phase(&s, "baseline");

    /* Allocated before the blocks, so it sits below them and pins nothing above it. */
    blocks = malloc((size_t)count * sizeof *blocks);
    if (!blocks)
        return 1;
    for (long i = 0; i < count; i++) {
        blocks[i] = malloc((size_t)size);
        if (!blocks[i])
            return 1;
        memset(blocks[i], 'a', (size_t)size);
    }
    if (pin_top) {
        pin = malloc((size_t)pin_top);
        if (!pin)
            return 1;
        memset(pin, 'p', (size_t)pin_top);
    }
    scenario_phase(&s, "peak");

    for (long i = 0; i < count; i++) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    scenario_keep(&s, blocks, (size_t)count * sizeof *blocks);
    if (pin)
        scenario_keep(&s, pin, (size_t)pin_top);
    scenario_finish(&s);
}
