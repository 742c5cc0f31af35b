/* libidlethread.so: a preloaded library that starts one thread which sleeps for ever. The
 * bench's "thread" mode: the cost any background trimmer pays before it does anything, because
 * glibc's malloc leaves its single-thread fast paths (no atomics, no arena lock) for good once a
 * process has a second thread. */
#define _POSIX_C_SOURCE 200809L /* C11 strict: sigset_t, pthread_sigmask */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static void *sleep_for_ever(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

__attribute__((constructor)) static void start_idle_thread(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the program's signals never land here */
    pthread_t t;
    if (pthread_create(&t, NULL, sleep_for_ever, NULL) == 0)
        pthread_detach(t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
