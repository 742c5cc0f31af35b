/* Deterministic mutation driver for the C fuzz targets: the same LLVMFuzzerTestOneInput that
 * libFuzzer calls, run from a plain main so ctest can run it with gcc's ASan/UBSan and a bound on
 * time, with no clang needed. Same seed, same inputs: a failure seen once is seen again.
 *
 *   fuzz_X [--iterations N] [--seconds T] [--seed S] [--artifacts DIR] PATH...
 *
 * PATH: a file or a directory of files (seeds, regression inputs). Every file is first run as it
 * is (the regression replay), then N mutants of them (or as many as fit in T seconds, whichever
 * comes first). A target reports a broken contract through fuzz_fail(); the input that did it
 * (or that ASan/UBSan died on) is written to DIR/crash-<hash> for fuzz/regressions/. */
#define _GNU_SOURCE
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<sanitizer/common_interface_defs.h>)
#include <sanitizer/common_interface_defs.h>
#define HAVE_DEATH_CALLBACK 1
#endif
#endif

/* Mutants are kept under this size: the parsers' real inputs are at most a few KiB (status is
 * ~1.5 KiB), and a cap keeps each input in the microseconds. */
#define MAX_LEN 65536

struct blob {
    uint8_t *data;
    size_t len;
};

static struct blob *seeds;
static size_t nseeds;
static const uint8_t *cur_data;
static size_t cur_len;
static const char *artifacts = ".";

static void save_current(void)
{
    char path[4096];
    uint64_t h = 1469598103934665603ull; /* FNV-1a: a stable name for the same input */
    for (size_t i = 0; i < cur_len; i++)
        h = (h ^ cur_data[i]) * 1099511628211ull;
    snprintf(path, sizeof path, "%s/crash-%016llx", artifacts, (unsigned long long)h);
    FILE *f = fopen(path, "wb");
    if (f) {
        if (cur_len)
            fwrite(cur_data, 1, cur_len, f);
        fclose(f);
        fprintf(stderr, "fuzz: input saved as %s (%zu bytes)\n", path, cur_len);
    }
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fuzz_say_broken(fmt, ap);
    va_end(ap);
    save_current();
    abort();
}

#ifdef HAVE_DEATH_CALLBACK
static void on_death(void) { save_current(); }
#endif

static void add_seed(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    uint8_t *buf = malloc(MAX_LEN);
    size_t n = fread(buf, 1, MAX_LEN, f);
    fclose(f);
    seeds = realloc(seeds, (nseeds + 1) * sizeof *seeds);
    seeds[nseeds].data = buf;
    seeds[nseeds].len = n;
    nseeds++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        add_seed(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n] = malloc(strlen(path) + strlen(e->d_name) + 2);
        sprintf(names[n], "%s/%s", path, e->d_name);
        n++;
    }
    if (d)
        closedir(d);
    /* sorted: the order, and so every mutant, must not depend on the file system */
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        add_seed(names[i]);
        free(names[i]);
    }
    free(names);
}

/* xorshift64*: fixed seed, same sequence everywhere */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* [*s, *e): a random line of b, its newline included (len > 0) */
static void some_line(const uint8_t *b, size_t len, size_t *s, size_t *e)
{
    *s = below(len);
    while (*s > 0 && b[*s - 1] != '\n')
        (*s)--;
    *e = *s;
    while (*e < len && b[*e] != '\n')
        (*e)++;
    if (*e < len)
        (*e)++;
}

static const char *const tokens[] = {
    "0", "1", "-1", "2", "7", "4095", "4096", "65535", "2147483647", "2147483648", "4294967295",
    "4294967296", "9223372036854775807", "9223372036854775808", "18446744073709551615",
    "18446744073709551616", "99999999999999999999999999", "1099511627776", "1099511627777",
    "3600000", "3600001", "86400000", "86400001", "50", "50.0001", "0.0001", "100.5", "0.00001",
    " kB", "kB", "k", "K", "M", "G", "iB", "B", "%", "%p", "%%", "/", ":", "\n", "\t", " ", "\r",
    "Rss:", "Anonymous:", "AnonHugePages:", "VmRSS:", "RssAnon:", "RssFile:", "RssShmem:",
    "TRIMSHIM_", "=", "-", "[heap]", "rw-p", "00000000", "ffffffffffffffff", "7f0000000000",
    "\xff", "\x80", "\x01",
};

/* One mutation of b (len <= MAX_LEN) in place; returns the new length. */
static size_t mutate_once(uint8_t *b, size_t len)
{
    size_t pos = below(len + 1);
    unsigned what = (unsigned)below(11);
    switch (what) {
    case 0: /* flip a bit */
        if (len)
            b[below(len)] ^= (uint8_t)(1u << below(8));
        return len;
    case 1: /* a random byte */
        if (len)
            b[below(len)] = (uint8_t)rnd();
        return len;
    case 2: { /* delete a range */
        if (!len)
            return len;
        size_t at = below(len), n = 1 + below(len - at < 16 ? len - at : 16);
        memmove(b + at, b + at + n, len - at - n);
        return len - n;
    }
    case 3:   /* a token (boundary number, key, separator) */
    case 4: { /* a token replacing a run of digits or bytes */
        const char *t = tokens[below(sizeof tokens / sizeof *tokens)];
        size_t tl = strlen(t);
        size_t cut = 0;
        if (what == 4)
            while (pos + cut < len && b[pos + cut] >= '0' && b[pos + cut] <= '9')
                cut++;
        if (len - cut + tl > MAX_LEN)
            return len;
        memmove(b + pos + tl, b + pos + cut, len - pos - cut);
        memcpy(b + pos, t, tl);
        return len - cut + tl;
    }
    case 5: { /* duplicate a line */
        if (!len)
            return len;
        size_t s, e;
        some_line(b, len, &s, &e);
        size_t n = e - s;
        if (len + n > MAX_LEN)
            return len;
        memmove(b + e + n, b + e, len - e);
        memcpy(b + e, b + s, n);
        return len + n;
    }
    case 6: { /* delete a line */
        if (!len)
            return len;
        size_t s, e;
        some_line(b, len, &s, &e);
        memmove(b + s, b + e, len - e);
        return len - (e - s);
    }
    case 7: { /* splice in a piece of another seed */
        const struct blob *o = &seeds[below(nseeds)];
        if (!o->len)
            return len;
        size_t at = below(o->len), n = 1 + below(o->len - at);
        if (len + n > MAX_LEN)
            n = MAX_LEN - len;
        memmove(b + pos + n, b + pos, len - pos);
        memcpy(b + pos, o->data + at, n);
        return len + n;
    }
    case 8: /* a NUL byte */
        if (len < MAX_LEN) {
            memmove(b + pos + 1, b + pos, len - pos);
            b[pos] = 0;
            return len + 1;
        }
        return len;
    case 9: { /* a very long run of one byte (a long line or number) */
        size_t n = 64 + below(4096);
        uint8_t c = (uint8_t)"9 a:\xff-0"[below(7)];
        if (len + n > MAX_LEN)
            return len;
        memmove(b + pos + n, b + pos, len - pos);
        memset(b + pos, c, n);
        return len + n;
    }
    default: /* truncate */
        return below(len + 1);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs one input from a heap block of exactly its size, so ASan sees any read past its end. */
static void run_one(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, data, len);
    cur_data = copy;
    cur_len = len;
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

int main(int argc, char **argv)
{
    unsigned long long iterations = 10000, seed = 0x5eed;
    double seconds = 0;
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
            iterations = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--artifacts") && i + 1 < argc)
            artifacts = argv[++i];
        else
            add_path(argv[i]);
    }
    if (nseeds == 0) {
        fprintf(stderr, "usage: %s [--iterations N] [--seconds T] [--seed S] [--artifacts DIR] PATH...\n",
                argv[0]);
        return 2;
    }
#ifdef HAVE_DEATH_CALLBACK
    __sanitizer_set_death_callback(on_death);
#endif
    rng_state = seed ? seed : 1;

    for (size_t s = 0; s < nseeds; s++)
        run_one(seeds[s].data, seeds[s].len);

    uint8_t *buf = malloc(MAX_LEN);
    double start = now_s();
    unsigned long long n;
    for (n = 0; n < iterations; n++) {
        if (seconds > 0 && (n & 63) == 0 && now_s() - start >= seconds)
            break;
        const struct blob *b = &seeds[below(nseeds)];
        size_t len = b->len;
        memcpy(buf, b->data, len);
        size_t k = 1 + below(8);
        while (k--)
            len = mutate_once(buf, len);
        run_one(buf, len);
    }
    printf("fuzz: %zu files replayed, %llu mutants in %.1f s, no contract broken\n", nseeds, n,
           now_s() - start);
    free(buf);
    return 0;
}
