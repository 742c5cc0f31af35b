/* Pins the seed's control: the same 64 KiB blocks with their pointers in one array (no small live objects between them) coalesce into the top of the heap at free, so glibc trims them back without any malloc_trim. */
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

/* A global root, so memcheck finds the array reachable at exit (see list_retention.c). */
static char **blocks;

int main(int argc, char **argv)
{
    long count = 10000, size = 64 * 1024;
    const struct scenario_option options[] = {
        {"--count", &count, 1, 100000000L},
        {"--size", &size, 1, 1L << 30},
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
    scenario_phase(&s, "peak");

    for (long i = 0; i < count; i++) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    scenario_keep(&s, blocks, (size_t)count * sizeof *blocks);
    scenario_finish(&s);
}
