/* Pins small-chunk residue: millions of small frees stay in glibc's tcache and fastbins (never coalesced, never returned) around a few survivors; malloc_trim(0) consolidates them and returns every page no survivor touches. */
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

/* Global root, so memcheck finds the survivors reachable at exit. */
static void **objects;

int main(int argc, char **argv)
{
    /* 64 B is a fastbin size (<= 128 B on 64-bit), so frees beyond tcache's 7 per size go to the
     * fastbins, which free() never coalesces. One survivor in 256 leaves ~4 of every 5 pages
     * with no live object, which is what trim can return. */
    long count = 2000000, size = 64, keep_every = 256;
    const struct scenario_option options[] = {
        {"--count", &count, 1, 100000000L},
        {"--size", &size, 1, 1L << 20},
        {"--keep-every", &keep_every, 1, 100000000L},
        {0},
    };
    struct scenario s;

    scenario_init(&s, "small_chunk_residue", options, argc, argv);
    scenario_phase(&s, "baseline");

    /* The pointer table is mmapped by glibc (16 MB, above the mmap threshold), not in the heap. */
    objects = malloc((size_t)count * sizeof *objects);
    if (!objects)
        return 1;
    for (long i = 0; i < count; i++) {
        objects[i] = malloc((size_t)size);
        if (!objects[i])
            return 1;
        memset(objects[i], 'a', (size_t)size);
    }
    scenario_phase(&s, "peak");

    scenario_keep(&s, objects, (size_t)count * sizeof *objects);
    for (long i = 0; i < count; i++) {
        if (i % keep_every == 0) {
            scenario_keep(&s, objects[i], (size_t)size);
            continue;
        }
        free(objects[i]);
        objects[i] = NULL;
    }
    scenario_finish(&s);
}
