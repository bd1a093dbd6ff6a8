/* metrics: a small Prometheus registry (families → labelled series); see metrics.h. Series
 * are found by a linear scan of their family, which stays short: labels are bounded by the
 * configured sources, ops and statuses. */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX_FAMILIES 64
#define METRICS_MAX_SERIES 512 /* per family: a bound against unbounded label values */

static const double metrics_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,   0.25,   0.5,   1,    2.5,   5, 10};
#define METRICS_NBUCKETS (sizeof metrics_buckets / sizeof metrics_buckets[0])

struct metrics_series {
    char *labels;
    double value;                          /* counter / gauge; histogram sum */
    unsigned long long count;              /* histogram */
    unsigned long long bucket[METRICS_NBUCKETS];
};

struct metrics_family {
    char *name, *type, *help;
    int histogram;
    struct metrics_series *series;
    size_t n, cap;
};

static struct metrics_family metrics_families[METRICS_MAX_FAMILIES];
static size_t metrics_nfamilies;

static struct metrics_family *metrics_find(const char *name)
{
    for (size_t i = 0; i < metrics_nfamilies; i++)
        if (strcmp(metrics_families[i].name, name) == 0)
            return &metrics_families[i];
    return NULL;
}

int metrics_declare(const char *name, const char *type, const char *help)
{
    if (metrics_find(name))
        return 0;
    if (metrics_nfamilies >= METRICS_MAX_FAMILIES)
        return -1;
    struct metrics_family *f = &metrics_families[metrics_nfamilies];
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    f->type = strdup(type);
    f->help = strdup(help);
    if (!f->name || !f->type || !f->help) {
        free(f->name);
        free(f->type);
        free(f->help);
        return -1;
    }
    f->histogram = strcmp(type, "histogram") == 0;
    metrics_nfamilies++;
    return 0;
}

static struct metrics_series *metrics_series_get(const char *name, const char *labels)
{
    struct metrics_family *f = metrics_find(name);
    if (!f)
        return NULL;
    if (!labels)
        labels = "";
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->series[i].labels, labels) == 0)
            return &f->series[i];
    if (f->n >= METRICS_MAX_SERIES)
        return NULL;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct metrics_series *s = realloc(f->series, cap * sizeof *s);
        if (!s)
            return NULL;
        f->series = s;
        f->cap = cap;
    }
    struct metrics_series *s = &f->series[f->n];
    memset(s, 0, sizeof *s);
    if (!(s->labels = strdup(labels)))
        return NULL;
    f->n++;
    return s;
}

void metrics_add(const char *name, const char *labels, double delta)
{
    struct metrics_series *s = metrics_series_get(name, labels);
    if (s)
        s->value += delta;
}

void metrics_set(const char *name, const char *labels, double value)
{
    struct metrics_series *s = metrics_series_get(name, labels);
    if (s)
        s->value = value;
}

void metrics_observe(const char *name, const char *labels, double value)
{
    struct metrics_series *s = metrics_series_get(name, labels);
    if (!s)
        return;
    s->value += value;
    s->count++;
    for (size_t i = 0; i < METRICS_NBUCKETS; i++)
        if (value <= metrics_buckets[i])
            s->bucket[i]++;
}

void metrics_escape(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (; in && *in && o + 3 < n; in++) {
        if (*in == '\\' || *in == '"') {
            out[o++] = '\\';
            out[o++] = *in;
        } else if (*in == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *in;
        }
    }
    if (n)
        out[o < n ? o : n - 1] = '\0';
}

/* name{labels,extra} — joins the series labels and an extra label (le=...). */
static int metrics_put_name(buf_t *out, const char *name, const char *suffix,
                            const char *labels, const char *extra)
{
    int rc = buf_printf(out, "%s%s", name, suffix);
    int has = labels && *labels, hasx = extra && *extra;
    if (has || hasx)
        rc |= buf_printf(out, "{%s%s%s}", has ? labels : "", has && hasx ? "," : "",
                         hasx ? extra : "");
    return rc;
}

int metrics_render(buf_t *out)
{
    int rc = 0;
    for (size_t i = 0; i < metrics_nfamilies; i++) {
        struct metrics_family *f = &metrics_families[i];
        rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                         f->type);
        for (size_t j = 0; j < f->n; j++) {
            struct metrics_series *s = &f->series[j];
            if (!f->histogram) {
                rc |= metrics_put_name(out, f->name, "", s->labels, NULL);
                rc |= buf_printf(out, " %.17g\n", s->value);
                continue;
            }
            for (size_t b = 0; b < METRICS_NBUCKETS; b++) {
                char le[32];
                snprintf(le, sizeof le, "le=\"%g\"", metrics_buckets[b]);
                rc |= metrics_put_name(out, f->name, "_bucket", s->labels, le);
                rc |= buf_printf(out, " %llu\n", s->bucket[b]);
            }
            rc |= metrics_put_name(out, f->name, "_bucket", s->labels, "le=\"+Inf\"");
            rc |= buf_printf(out, " %llu\n", s->count);
            rc |= metrics_put_name(out, f->name, "_sum", s->labels, NULL);
            rc |= buf_printf(out, " %.17g\n", s->value);
            rc |= metrics_put_name(out, f->name, "_count", s->labels, NULL);
            rc |= buf_printf(out, " %llu\n", s->count);
        }
    }
    return rc ? -1 : 0;
}

void metrics_reset(void)
{
    for (size_t i = 0; i < metrics_nfamilies; i++) {
        struct metrics_family *f = &metrics_families[i];
        for (size_t j = 0; j < f->n; j++)
            free(f->series[j].labels);
        free(f->series);
        free(f->name);
        free(f->type);
        free(f->help);
    }
    metrics_nfamilies = 0;
}
