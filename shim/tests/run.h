/* Test utility: run a program with a scrubbed environment plus extra variables, capture stdout and
 * stderr, kill it at a timeout. Header-only (static functions) for the shim's test programs. */
#ifndef TS_TEST_RUN_H
#define TS_TEST_RUN_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TS_RUN_BUF 65536

struct ts_run {
    int exited;    /* 1: exited normally, status in code */
    int code;      /* exit status, or the signal number when !exited */
    int timed_out; /* killed at the timeout */
    double secs;   /* wall time */
    char out[TS_RUN_BUF];
    char err[TS_RUN_BUF];
};

__attribute__((unused)) static double ts_run_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Runs argv[0] (a path) with environ minus LD_PRELOAD, TRIMSHIM_x, GLIBC_TUNABLES, MALLOC_x, plus
 * env_extra ("NAME=VALUE", NULL-terminated, may be NULL). Returns 0, or -1 if it could not
 * start. */
__attribute__((unused)) static int ts_run(struct ts_run *r, char *const argv[], char *const env_extra[], double timeout_s)
{
    memset(r, 0, sizeof *r);
    char *envv[512];
    int n = 0;
    for (char **e = environ; *e && n < 400; e++) {
        if (!strncmp(*e, "LD_PRELOAD=", 11) || !strncmp(*e, "TRIMSHIM_", 9) ||
            !strncmp(*e, "GLIBC_TUNABLES=", 15) || !strncmp(*e, "MALLOC_", 7) ||
            !strncmp(*e, "CK_", 3))
            continue;
        envv[n++] = *e;
    }
    for (int i = 0; env_extra && env_extra[i] && n < 510; i++)
        envv[n++] = env_extra[i];
    envv[n] = NULL;

    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
        return -1;
    double t0 = ts_run_now();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        setpgid(0, 0);
        execve(argv[0], argv, envv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    int open_fds = 2;
    struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    while (open_fds > 0) {
        double left = timeout_s - (ts_run_now() - t0);
        if (left <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            r->timed_out = 1;
            break;
        }
        int rc = poll(pf, 2, (int)(left * 1000) + 1);
        if (rc < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char *buf = i ? r->err : r->out;
            size_t *len = i ? &ne : &no;
            char tmp[4096];
            ssize_t k = read(pf[i].fd, tmp, sizeof tmp);
            if (k <= 0) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
                continue;
            }
            size_t room = TS_RUN_BUF - 1 - *len;
            size_t m = (size_t)k < room ? (size_t)k : room;
            memcpy(buf + *len, tmp, m);
            *len += m;
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    r->secs = ts_run_now() - t0;
    r->out[no] = 0;
    r->err[ne] = 0;
    if (WIFEXITED(st)) {
        r->exited = 1;
        r->code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        r->code = WTERMSIG(st);
    }
    return 0;
}

/* Number of '\n'-terminated lines in s. */
__attribute__((unused)) static int ts_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Value of "key": NUMBER in a JSON line (first occurrence in s), or def. */
__attribute__((unused)) static long long ts_json_num(const char *s, const char *key, long long def)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s, pat);
    if (!p)
        return def;
    return strtoll(p + strlen(pat), NULL, 10);
}

__attribute__((unused)) static int ts_file_exists(const char *path) { return path && *path && access(path, R_OK) == 0; }

#endif
