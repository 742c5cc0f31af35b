/* A program whose freed heap the shim should trim, for the forced-mallinfo shim's tests
 * (test_mallinfo_shim.c): N blocks of exactly 64 KiB chunks, each followed by a 24-byte live
 * node (so no free chunk coalesces or reaches the top and glibc keeps them all), all blocks
 * freed, then quiet (100 ms sleeps) until RSS falls or the wait is over. Prints one JSON line.
 *
 * --shape: afterwards takes back free chunks until mallinfo's int free figure reads below 32 KiB
 * (the true figure stays 4 GiB above it): a heap that an unwidened reading would call empty.
 *
 * Usage: ts_bigheap --blocks N [--shape] [--wait-ms MS]
 * Output: {"blocks":N,"taken_back":K,"baseline_kb":..,"peak_kb":..,"after_free_kb":..,
 *          "after_idle_kb":..,"waited_ms":..,"free_reading":..,"free_true":..} (free_true -1
 *          without mallinfo2). Exit 0, 2 on bad usage, 3 when the heap cannot be shaped. */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "rssprobe_procfs.h"

#define BLOCK 65528                 /* + the 8-byte size field: a 64 KiB chunk */
#define CHUNK (UINT64_C(64) << 10)
#define SHAPED_BELOW (UINT64_C(32) << 10)

struct mi2 {
    size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

static long anon_kb(void)
{
    struct rssprobe_rss r;
    if (rssprobe_read_rss(&r) != 0)
        return -1;
    return r.anon_kb >= 0 ? r.anon_kb : r.rss_kb;
}

static uint32_t free_reading(void)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
    return (uint32_t)m.fordblks;
}

static long long free_true(void)
{
    struct mi2 (*fn)(void) = (struct mi2 (*)(void))dlsym(RTLD_DEFAULT, "mallinfo2");
    return fn ? (long long)fn().fordblks : -1;
}

static void *map_array(size_t n)
{
    void *p = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("ts_bigheap: mmap");
        exit(1);
    }
    return p;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    long blocks = 0, wait_ms = 20000;
    int shape = 0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--blocks") && i + 1 < argc) {
            blocks = strtol(argv[++i], &end, 10);
        } else if (!strcmp(argv[i], "--wait-ms") && i + 1 < argc) {
            wait_ms = strtol(argv[++i], &end, 10);
        } else if (!strcmp(argv[i], "--shape")) {
            shape = 1;
            continue;
        } else {
            fprintf(stderr, "ts_bigheap: unknown argument '%s' (--blocks N [--shape] [--wait-ms MS])\n", argv[i]);
            return 2;
        }
        if (end == NULL || *end != '\0' || blocks < 0 || wait_ms < 0) {
            fprintf(stderr, "ts_bigheap: bad number '%s'\n", argv[i]);
            return 2;
        }
    }
    if (blocks <= 0) {
        fprintf(stderr, "ts_bigheap: --blocks N (N > 0) is required\n");
        return 2;
    }

    /* Pointer arrays outside the heap: they are no part of what is measured. */
    void **b = map_array((size_t)blocks), **nodes = map_array((size_t)blocks);
    void **taken = map_array(1024);
    long taken_n = 0;

    long baseline = anon_kb();
    for (long i = 0; i < blocks; i++) {
        b[i] = malloc(BLOCK);
        nodes[i] = malloc(24);
        if (b[i] == NULL || nodes[i] == NULL) {
            fprintf(stderr, "ts_bigheap: out of memory at block %ld\n", i);
            return 1;
        }
        memset(b[i], 0x5a, BLOCK);
    }
    long peak = anon_kb();
    for (long i = 0; i < blocks; i++)
        free(b[i]);

    if (shape) {
        for (int round = 0; round < 64 && free_reading() >= SHAPED_BELOW; round++) {
            uint32_t r = free_reading();
            if (r >= CHUNK + SHAPED_BELOW / 2) {
                /* an exact-fit free chunk each: the free figure drops by 64 KiB apiece */
                for (uint64_t k = (r - SHAPED_BELOW / 2) / CHUNK; k > 0 && taken_n < 1024; k--)
                    taken[taken_n++] = malloc(BLOCK);
            } else if (taken_n < 1024) {
                /* split a free chunk: the figure drops by the new chunk's size */
                taken[taken_n++] = malloc(r - SHAPED_BELOW / 2 - 16);
            }
        }
        if (free_reading() >= SHAPED_BELOW) {
            fprintf(stderr, "ts_bigheap: could not shape the heap: mallinfo's free reads %u\n", free_reading());
            return 3;
        }
    }
    long after_free = anon_kb();
    uint32_t reading = free_reading();
    long long truth = free_true();

    /* Quiet: wait for the shim, until RSS gave back half the growth or the time is up. */
    uint64_t t0 = now_ms();
    long after_idle = after_free;
    while (now_ms() - t0 < (uint64_t)wait_ms) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        after_idle = anon_kb();
        if (after_idle - baseline <= (peak - baseline) / 2)
            break;
    }
    /* settle: the trim may still be going on in another thread */
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    after_idle = anon_kb();

    printf("{\"blocks\":%ld,\"taken_back\":%ld,\"baseline_kb\":%ld,\"peak_kb\":%ld,\"after_free_kb\":%ld,"
           "\"after_idle_kb\":%ld,\"waited_ms\":%llu,\"free_reading\":%u,\"free_true\":%lld}\n",
           blocks, taken_n, baseline, peak, after_free, after_idle, (unsigned long long)(now_ms() - t0),
           reading, truth);
    return 0;
}
