/* A program of your own, reporting its phases to `retention run` through rssprobe_phase(): a cache
 * of 64 KiB entries, each followed by a small index record that outlives it; the cache is dropped,
 * the index kept. Run by hand it prints nothing and measures nothing: the calls return 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rssprobe_phase.h>

#define ENTRY_BYTES (64 * 1024)

struct record {
    struct record *next;
    long key;
};

/* The index stays reachable from a global until exit, so a leak checker sees it as reachable. */
static struct record *index_head;

int main(int argc, char **argv)
{
    long count = argc > 1 ? strtol(argv[1], NULL, 10) : 4000;
    if (count <= 0) {
        fprintf(stderr, "cache_drop: want a count > 0, got %s\n", argv[1]);
        return 2;
    }
    char **cache = calloc((size_t)count, sizeof *cache);
    if (cache == NULL)
        return 1;
    rssprobe_phase("baseline");
    for (long i = 0; i < count; i++) {
        cache[i] = malloc(ENTRY_BYTES);
        struct record *r = malloc(sizeof *r);
        if (cache[i] == NULL || r == NULL)
            return 1;
        memset(cache[i], (int)(i & 0x7f), ENTRY_BYTES);
        r->key = i;
        r->next = index_head;
        index_head = r;
    }
    rssprobe_phase("peak");
    for (long i = 0; i < count; i++)
        free(cache[i]);
    free(cache);
    for (struct record *r = index_head; r; r = r->next)
        rssprobe_phase_keep(r, sizeof *r);
    rssprobe_phase("after_free");
    return 0;
}
