/* Pins the seed's retention in plain C: freed 64 KiB blocks, each followed by a small live list node, stay resident because no free chunk reaches the top of the heap; malloc_trim(0) returns them. */
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

#define BLOCK_SIZE (64 * 1024)

struct node {
    struct node *next;
    char *block;
};

/* A global root, as a long-lived index would be: memcheck must find the list reachable at exit,
 * and a local could live only in a register that exit() has already clobbered. */
static struct node *head;

int main(int argc, char **argv)
{
    struct scenario s;

    scenario_init(&s, "list_retention", 10000, argc, argv);
    scenario_phase(&s, "baseline");

    for (long i = 0; i < s.count; i++) {
        char *block = malloc(BLOCK_SIZE);
        struct node *n = malloc(sizeof *n);
        if (!block || !n)
            return 1;
        memset(block, 'a', BLOCK_SIZE);
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
