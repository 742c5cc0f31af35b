/* A small parser of the Prometheus text exposition format (version 0.0.4), strict where the
 * format is: what a scraper (node_exporter's textfile collector, Prometheus itself) would refuse,
 * it refuses. Header-only, for the shim's tests.
 *
 * Checks: every line ends in '\n'; "# HELP name text" and "# TYPE name type" (counter, gauge,
 * untyped, summary, histogram) at most once per name, TYPE before the family's samples; sample
 * lines "name{label="value",...} value" with valid metric and label names, escapes \\ \" \n only,
 * no duplicate label name in a sample; a value that is a float (or +Inf, -Inf, NaN); no
 * timestamps (the textfile collector refuses them); a family's samples contiguous; no series
 * twice; counters' names end in _total. Samples are kept for lookups. */
#ifndef TS_PROMPARSE_H
#define TS_PROMPARSE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PP_MAX_SAMPLES 256
#define PP_MAX_FAMILIES 64

struct pp_sample {
    char name[128];
    char labels[512]; /* as written, between the braces, for lookups */
    double value;
};

struct pp_result {
    int ok;
    char error[256];
    int nsamples, nfamilies;
    struct pp_sample s[PP_MAX_SAMPLES];
    char family[PP_MAX_FAMILIES][128];
    char type[PP_MAX_FAMILIES][16];
    int help_seen[PP_MAX_FAMILIES], type_seen[PP_MAX_FAMILIES], samples_done[PP_MAX_FAMILIES];
    int has_samples[PP_MAX_FAMILIES];
};

static int pp_name_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
static int pp_name_char(int c) { return pp_name_start(c) || (c >= '0' && c <= '9'); }

static int pp_fail(struct pp_result *r, int line, const char *what)
{
    r->ok = 0;
    snprintf(r->error, sizeof r->error, "line %d: %s", line, what);
    return 0;
}

/* reads a metric name at *p into out; 0 if none */
static int pp_name(const char **p, char *out, size_t size)
{
    const char *s = *p;
    size_t n = 0;
    if (!pp_name_start((unsigned char)*s))
        return 0;
    while (pp_name_char((unsigned char)*s)) {
        if (n + 1 >= size)
            return 0;
        out[n++] = *s++;
    }
    out[n] = 0;
    *p = s;
    return 1;
}

static int pp_family(struct pp_result *r, const char *name)
{
    for (int i = 0; i < r->nfamilies; i++)
        if (!strcmp(r->family[i], name))
            return i;
    if (r->nfamilies >= PP_MAX_FAMILIES)
        return -1;
    snprintf(r->family[r->nfamilies], sizeof r->family[0], "%s", name);
    r->type[r->nfamilies][0] = 0;
    return r->nfamilies++;
}

static int pp_value(const char *s, double *v, const char **end)
{
    if (!strncmp(s, "+Inf", 4) || !strncmp(s, "-Inf", 4) || !strncmp(s, "NaN", 3)) {
        *v = s[0] == 'N' ? NAN : s[0] == '-' ? -INFINITY : INFINITY;
        *end = s + (s[0] == 'N' ? 3 : 4);
        return 1;
    }
    char *e;
    *v = strtod(s, &e);
    if (e == s)
        return 0;
    *end = e;
    return 1;
}

static int pp_parse(const char *text, struct pp_result *r)
{
    memset(r, 0, sizeof *r);
    r->ok = 1;
    int line = 0, current = -1;
    const char *p = text;
    while (*p) {
        line++;
        const char *eol = strchr(p, '\n');
        if (!eol)
            return pp_fail(r, line, "no newline at the end");
        char buf[1024];
        size_t len = (size_t)(eol - p);
        if (len >= sizeof buf)
            return pp_fail(r, line, "line too long");
        memcpy(buf, p, len);
        buf[len] = 0;
        p = eol + 1;
        const char *q = buf;
        if (len == 0)
            continue;
        if (*q == '#') {
            char name[128];
            if (!strncmp(q, "# HELP ", 7) || !strncmp(q, "# TYPE ", 7)) {
                int help = q[2] == 'H';
                q += 7;
                if (!pp_name(&q, name, sizeof name) || *q != ' ')
                    return pp_fail(r, line, "bad name in HELP/TYPE");
                q++;
                int f = pp_family(r, name);
                if (f < 0)
                    return pp_fail(r, line, "too many families");
                if (r->has_samples[f])
                    return pp_fail(r, line, "HELP/TYPE after the family's samples");
                if (help) {
                    if (r->help_seen[f]++)
                        return pp_fail(r, line, "second HELP");
                    for (const char *c = q; *c; c++)
                        if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
                            return pp_fail(r, line, "bad escape in HELP");
                } else {
                    if (r->type_seen[f]++)
                        return pp_fail(r, line, "second TYPE");
                    static const char *const types[] = {"counter", "gauge", "untyped",
                                                        "summary", "histogram"};
                    int known = 0;
                    for (size_t i = 0; i < 5; i++)
                        known |= !strcmp(q, types[i]);
                    if (!known)
                        return pp_fail(r, line, "unknown TYPE");
                    snprintf(r->type[f], sizeof r->type[f], "%s", q);
                    if (!strcmp(q, "counter") &&
                        (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total")))
                        return pp_fail(r, line, "a counter whose name does not end in _total");
                }
            }
            continue; /* other comments are allowed */
        }
        struct pp_sample sm;
        memset(&sm, 0, sizeof sm);
        if (!pp_name(&q, sm.name, sizeof sm.name))
            return pp_fail(r, line, "bad metric name");
        if (*q == '{') {
            q++;
            const char *start = q;
            char seen[16][64];
            int nseen = 0;
            while (*q != '}') {
                char lname[64];
                if (!pp_name(&q, lname, sizeof lname) || strchr(lname, ':'))
                    return pp_fail(r, line, "bad label name");
                for (int i = 0; i < nseen; i++)
                    if (!strcmp(seen[i], lname))
                        return pp_fail(r, line, "label twice");
                if (nseen < 16)
                    snprintf(seen[nseen++], sizeof seen[0], "%s", lname);
                if (*q++ != '=' || *q++ != '"')
                    return pp_fail(r, line, "label without =\"");
                while (*q && *q != '"') {
                    if (*q == '\\') {
                        q++;
                        if (*q != '\\' && *q != '"' && *q != 'n')
                            return pp_fail(r, line, "bad escape in a label value");
                    }
                    if (!*q)
                        break;
                    q++;
                }
                if (*q++ != '"')
                    return pp_fail(r, line, "unterminated label value");
                if (*q == ',')
                    q++;
                else if (*q != '}')
                    return pp_fail(r, line, "label not followed by , or }");
            }
            size_t ll = (size_t)(q - start);
            if (ll >= sizeof sm.labels)
                return pp_fail(r, line, "labels too long");
            memcpy(sm.labels, start, ll);
            q++;
        }
        if (*q++ != ' ')
            return pp_fail(r, line, "no space before the value");
        const char *end;
        if (!pp_value(q, &sm.value, &end))
            return pp_fail(r, line, "bad value");
        if (*end != 0)
            return pp_fail(r, line, "something after the value (a timestamp?)");
        int f = pp_family(r, sm.name);
        if (f < 0)
            return pp_fail(r, line, "too many families");
        if (current != f) {
            if (r->samples_done[f])
                return pp_fail(r, line, "family samples not contiguous");
            if (current >= 0)
                r->samples_done[current] = 1;
            current = f;
        }
        for (int i = 0; i < r->nsamples; i++)
            if (!strcmp(r->s[i].name, sm.name) && !strcmp(r->s[i].labels, sm.labels))
                return pp_fail(r, line, "a series twice");
        if (r->nsamples >= PP_MAX_SAMPLES)
            return pp_fail(r, line, "too many samples");
        r->has_samples[f] = 1;
        r->s[r->nsamples++] = sm;
    }
    return r->ok;
}

/* the sum of a metric's samples whose labels contain `with` (NULL: all); -1 if none */
static double pp_sum(const struct pp_result *r, const char *name, const char *with)
{
    double sum = 0;
    int found = 0;
    for (int i = 0; i < r->nsamples; i++)
        if (!strcmp(r->s[i].name, name) && (!with || strstr(r->s[i].labels, with))) {
            sum += r->s[i].value;
            found = 1;
        }
    return found ? sum : -1;
}

#endif
