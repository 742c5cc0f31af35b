/* Pins the seed's control: the same 64 KiB blocks with their pointers in one array (no small live objects between them) coalesce into the top of the heap at free, so glibc trims them back without any malloc_trim. */
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

#define BLOCK_SIZE (64 * 1024)

/* A global root, so memcheck finds the array reachable at exit (see list_retention.c). */
static char **blocks;

int main(int argc, char **argv)
{
    struct scenario s;

    scenario_init(&s, "array_control", 10000, argc, argv);
    scenario_phase(&s, "baseline");

    /* Allocated before the blocks, so it sits below them and pins nothing above it. */
    blocks = malloc((size_t)s.count * sizeof *blocks);
    if (!blocks)
        return 1;
    for (long i = 0; i < s.count; i++) {
        blocks[i] = malloc(BLOCK_SIZE);
        if (!blocks[i])
            return 1;
        memset(blocks[i], 'a', BLOCK_SIZE);
    }
    scenario_phase(&s, "peak");

    for (long i = 0; i < s.count; i++) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    scenario_keep(&s, blocks, (size_t)s.count * sizeof *blocks);
    scenario_finish(&s);
}
