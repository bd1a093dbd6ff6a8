/* bench_rules: how fast the rules engine decides. Generates rule sets of 10, 100 and 1,000
 * rules (each with a regex condition on the alert name and a severity test; the matching rule
 * is the second to last, so nearly every rule is evaluated), runs events through them, and
 * times template rendering. Prints the median ns per event and per rule per event over
 * several rounds. Targets: at most 2 µs per rule per event (JIT), 1 ms per event at 1,000.
 * Usage: bench_rules [events per round, default 2000]. Build it in a Release folder without
 * sanitizers (cmake -DCMAKE_BUILD_TYPE=Release) for meaningful figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/util.h"
#include "plan.h"
#include "regex.h"
#include "rules.h"
#include "tmpl.h"

#define ROUNDS 9

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, dbl_cmp);
    return v[n / 2];
}

static char *gen_rules(int n)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "rules:\n");
    for (int i = 0; i < n; i++)
        buf_printf(&b,
                   "  - name: rule-%d\n"
                   "    sources: [prom]\n"
                   "    when:\n"
                   "      - {field: labels.alertname, regex: '^(?<name>Svc%dDown|Svc%dLatency)$'}\n"
                   "      - {field: severity, in: [critical, warning]}\n"
                   "    actions:\n"
                   "      - op: create_job\n"
                   "        body: {jobDetails: \"{{title}} on {{labels.instance}}\"}\n",
                   i, i, i);
    return buf_steal(&b);
}

static int bench_rules(int n, int events)
{
    char *text = gen_rules(n);
    struct tb_source src = {(char *)"prom", (char *)"alertmanager", NULL, NULL, 0, 0, 0};
    struct rules_opts o;
    memset(&o, 0, sizeof o);
    o.sources = &src;
    o.nsources = 1;
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    double t0 = now_ns();
    rules_t *r = rules_load_text("bench.yaml", text, &o, &dg);
    double load_ms = (now_ns() - t0) / 1e6;
    free(text);
    if (!r) {
        yamlx_diags_print(&dg, stderr);
        yamlx_diags_free(&dg);
        return -1;
    }
    yamlx_diags_free(&dg);
    char name[64];
    snprintf(name, sizeof name, "Svc%dDown", n - 2 >= 0 ? n - 2 : 0);
    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "source", "prom", "severity", "critical",
                  "title", "Service down", "labels", "alertname", name, "instance", "web-01:9100");
    struct rules_input in = {ev, NULL, "prom"};
    double per_event[ROUNDS];
    size_t want = (size_t)(n >= 2 ? n - 2 : 0);
    for (int round = 0; round < ROUNDS; round++) {
        double start = now_ns();
        for (int e = 0; e < events; e++) {
            size_t idx = 0;
            json_t *caps = NULL;
            if (rules_next(r, &in, 0, &idx, &caps) != RULES_MATCH || idx != want) {
                fprintf(stderr, "bench: the event did not match rule %zu\n", want);
                json_decref(caps);
                json_decref(ev);
                rules_unref(r);
                return -1;
            }
            json_decref(caps);
        }
        per_event[round] = (now_ns() - start) / events;
    }
    double med = median(per_event, ROUNDS);
    double evaluated = (double)(want + 1);
    printf("%5d rules: load %7.1f ms, median %9.0f ns/event, %6.1f ns/rule/event, %9.0f "
           "events/s\n",
           n, load_ms, med, med / evaluated, 1e9 / med);
    json_decref(ev);
    rules_unref(r);
    return 0;
}

static int bench_templates(int renders)
{
    const char *text =
        "[{{severity}}] {{title}}\n{{#text}}{{text}}\n{{/text}}Reported by {{source}} "
        "at {{time}}{{#site}} for site {{site}}{{/site}}.\n{{#labels.instance}}"
        "Instance: {{labels.instance}}\n{{/labels.instance}}Key: {{corr_key}}";
    struct tmpl_error te;
    tmpl_t *t = tmpl_compile(text, NULL, NULL, &te);
    if (!t) {
        fprintf(stderr, "bench: template: %s\n", te.msg);
        return -1;
    }
    json_t *data =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:s}", "severity", "critical", "title",
                  "Disk almost full", "text", "/srv has 3% space left", "source", "alertmanager",
                  "time", "2025-04-08T09:12:44.123Z", "site", "HQ", "labels", "instance",
                  "fs01:9100", "corr_key", "alert:alertmanager:c5a1b0e4d2f3a697");
    double per[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        double start = now_ns();
        for (int i = 0; i < renders; i++) {
            char *s = tmpl_render(t, data, 0, NULL, &te);
            if (!s) {
                fprintf(stderr, "bench: render: %s\n", te.msg);
                tmpl_free(t);
                json_decref(data);
                return -1;
            }
            free(s);
        }
        per[round] = (now_ns() - start) / renders;
    }
    double med = median(per, ROUNDS);
    printf("templates:  median %9.0f ns/render, %9.0f renders/s\n", med, 1e9 / med);
    tmpl_free(t);
    json_decref(data);
    return 0;
}

int main(int argc, char **argv)
{
    long events = 2000;
    if (argc > 1 && util_parse_long(argv[1], 1, 10000000, &events) < 0) {
        fprintf(stderr, "usage: bench_rules [events per round]\n");
        return 2;
    }
    char err[128];
    size_t off;
    rx_t *probe = rx_compile("^a+$", NULL, err, sizeof err, &off);
    printf("PCRE2 JIT: %s; %d rounds of %ld events, median reported\n",
           probe && rx_is_jit(probe) ? "on" : "off", ROUNDS, events);
    rx_free(probe);
    const int sizes[] = {10, 100, 1000};
    for (size_t i = 0; i < 3; i++) {
        long ev = sizes[i] == 1000 ? (events / 10 > 0 ? events / 10 : 1) : events;
        if (bench_rules(sizes[i], (int)ev) < 0)
            return 1;
    }
    return bench_templates((int)events * 5) < 0 ? 1 : 0;
}
