/* Writes the seeds that need a process with thread arenas: its /proc/self/maps (thread heaps
 * among the mappings) and malloc_info(3)'s XML (several <heap>s, size classes, mmapped chunks).
 * How the files under fuzz/seeds/maps and fuzz/seeds/malloc_info were made:
 *   cc -O1 -pthread capture_seeds.c -o /tmp/capture && /tmp/capture MAPS_OUT XML_OUT */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_barrier_t ready, done;

static void *worker(void *arg)
{
    void *keep[400];
    for (int i = 0; i < 400; i++)
        keep[i] = malloc(16 + (size_t)i * 97 * ((long)arg + 1));
    for (int i = 0; i < 400; i += 2)
        free(keep[i]); /* free chunks of many size classes */
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&done);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t t[3];
    if (argc != 3)
        return 2;
    pthread_barrier_init(&ready, NULL, 4);
    pthread_barrier_init(&done, NULL, 4);
    for (long i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    void *big = malloc(1 << 20); /* an mmapped chunk */
    pthread_barrier_wait(&ready);
    FILE *in = fopen("/proc/self/maps", "r"), *out = fopen(argv[1], "w");
    int c;
    while (in && out && (c = fgetc(in)) != EOF)
        fputc(c, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    FILE *x = fopen(argv[2], "w");
    if (x) {
        malloc_info(0, x);
        fclose(x);
    }
    pthread_barrier_wait(&done);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    free(big);
    return 0;
}
