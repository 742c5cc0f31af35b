/* Pins the top-of-heap rule: one small live allocation above a large free region stops glibc's automatic trim of all of it (trim only ever shrinks the top chunk), whatever M_TRIM_THRESHOLD says; malloc_trim(0) still returns it. */
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

/* Global roots, so memcheck finds the pin reachable at exit. */
static char **blocks;
static char *pin;

int main(int argc, char **argv)
{
    long count = 10000, size = 64 * 1024;
    const struct scenario_option options[] = {
        {"--count", &count, 1, 100000000L},
        {"--size", &size, 1, 1L << 30},
        {0},
    };
    struct scenario s;

    scenario_init(&s, "top_pinned", options, argc, argv);
    scenario_phase(&s, "baseline");

    blocks = malloc((size_t)count * sizeof *blocks);
    if (!blocks)
        return 1;
    for (long i = 0; i < count; i++) {
        blocks[i] = malloc((size_t)size);
        if (!blocks[i])
            return 1;
        memset(blocks[i], 'a', (size_t)size);
    }
    /* The whole difference from array_control: 16 bytes allocated last, so they sit on the top. */
    pin = malloc(16);
    if (!pin)
        return 1;
    memset(pin, 'p', 16);
    scenario_phase(&s, "peak");

    for (long i = 0; i < count; i++)
        free(blocks[i]);
    free(blocks);
    blocks = NULL;
    scenario_keep(&s, pin, 16);
    scenario_finish(&s);
}
