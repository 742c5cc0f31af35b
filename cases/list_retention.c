/* Pins the seed's retention in plain C: freed blocks, each followed by a small live list node, stay resident because no free chunk reaches the top of the heap; malloc_trim(0) returns them. */
/* One binary, several cases: --size moves the blocks across the mmap threshold
 * (mmap_threshold_control) and --first-free frees one large block first, which raises glibc's
 * dynamic mmap threshold (dynamic_mmap_threshold). */
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

struct node {
    struct node *next;
    char *block;
};

/* A global root, as a long-lived index would be: memcheck must find the list reachable at exit,
 * and a local could live only in a register that exit() has already clobbered. */
static struct node *head;

int main(int argc, char **argv)
{
    long count = 10000, size = 64 * 1024, first_free = 0;
    const struct scenario_option options[] = {
        {"--count", &count, 1, 100000000L},
        {"--size", &size, 1, 1L << 30},
        {"--first-free", &first_free, 0, 1L << 30},
        {0},
    };
    struct scenario s;

    scenario_init(&s, "list_retention", options, argc, argv);
    if (first_free) {
        /* Touched so it is a real mapping; freeing an mmapped chunk raises the threshold. */
        char *big = malloc((size_t)first_free);
        if (!big)
            return 1;
        memset(big, 'b', (size_t)first_free);
        free(big);
    }
    scenario_phase(&s, "baseline");

    for (long i = 0; i < count; i++) {
        char *block = malloc((size_t)size);
        struct node *n = malloc(sizeof *n);
        if (!block || !n)
            return 1;
        memset(block, 'a', (size_t)size);
        n->block = block;
        n->next = head;
        head = n;
    }
    scenario_phase(&s, "peak");

    for (struct node *n = head; n; n = n->next) {
        free(n->block);
        n->block = NULL;
        scenario_keep(&s, n, sizeof *n);
    }
    scenario_finish(&s);
}
