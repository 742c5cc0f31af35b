/* What every C fuzz target shares: libFuzzer's entry point, and how a target says that a parser
 * broke its contract (the input is saved, then abort: the same death as an ASan report, for
 * libFuzzer too). */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The one line both drivers print before they abort. */
static inline void fuzz_say_broken(const char *fmt, va_list ap)
{
    fprintf(stderr, "fuzz: contract broken: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

#define FUZZ_CHECK(cond, ...)                                                                    \
    do {                                                                                         \
        if (!(cond))                                                                             \
            fuzz_fail(__VA_ARGS__);                                                              \
    } while (0)

#endif
