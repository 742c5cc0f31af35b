/* fuzz_fail for the libFuzzer builds: libFuzzer saves the input itself when the process dies. */
#include "fuzz_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fuzz_say_broken(fmt, ap);
    va_end(ap);
    abort();
}
