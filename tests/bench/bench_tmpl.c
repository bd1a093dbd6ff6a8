/* bench_tmpl: renders a realistic job description (built from an Alertmanager alert's labels
 * and annotations) over and over, and prints renders per second and nanoseconds per render,
 * for a short template with five variables and for the full job description.
 * Usage: bench_tmpl [SECONDS per case, default 1] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "tmpl.h"

static const char *const alert_json =
    "{\"status\": \"firing\", \"receiver\": \"trackbridge\","
    " \"labels\": {\"alertname\": \"DiskAlmostFull\", \"severity\": \"critical\","
    "  \"instance\": \"db1.lon.example.org:9100\", \"job\": \"node\", \"site\": \"LON-1\","
    "  \"building\": \"North Wing\", \"mountpoint\": \"/var/lib/postgresql\"},"
    " \"annotations\": {\"summary\": \"Disk /var/lib/postgresql on db1 is 93% full\","
    "  \"description\": \"Free space fell below 7% (12.4 GiB left) & is shrinking <fast>.\","
    "  \"runbook_url\": \"https://runbooks.example.org/disk-full\"},"
    " \"startsAt\": \"2025-04-08T12:00:00.000Z\", \"value\": 93.17, \"count\": 3,"
    " \"generatorURL\": \"http://prometheus:9090/graph?g0.expr=node_filesystem_avail\","
    " \"alerts\": [{\"labels\": {\"instance\": \"db1\"}}, {\"labels\": {\"instance\": \"db2\"}},"
    "  {\"labels\": {\"instance\": \"db3\"}}]}";

/* About 200 bytes with five variables. */
static const char *const short_text =
    "[{{labels.severity}}] {{labels.alertname}} on {{labels.instance}}\n"
    "{{annotations.summary}}\n"
    "Started {{startsAt}} - see the runbook before you touch the host, and close the job when "
    "the alert clears.\n";

static const char *const job_text =
    "{{annotations.summary}}\n"
    "\n"
    "Alert:     {{labels.alertname}} ({{labels.severity}})\n"
    "Site:      {{labels.site}} / {{labels.building}}\n"
    "Instance:  {{labels.instance}}{{#labels.mountpoint}} ({{.}}){{/labels.mountpoint}}\n"
    "Value:     {{value}} after {{count}} notifications\n"
    "Since:     {{startsAt}}\n"
    "{{#annotations.description}}\n"
    "\n"
    "{{{.}}}\n"
    "{{/annotations.description}}\n"
    "{{#alerts.1}}\n"
    "Also affected:\n"
    "{{#alerts}}\n"
    "  - {{labels.instance}}\n"
    "{{/alerts}}\n"
    "{{/alerts.1}}\n"
    "{{#annotations.runbook_url}}\n"
    "Runbook:   {{.}}\n"
    "{{/annotations.runbook_url}}\n"
    "{{^annotations.runbook_url}}\n"
    "No runbook: escalate to the on-call engineer.\n"
    "{{/annotations.runbook_url}}\n"
    "Source:    {{generatorURL}}\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *label, const char *text, json_t *data, int escape, double seconds)
{
    struct tmpl_error err;
    double t0 = now_s();
    tmpl_t *t = tmpl_compile(text, NULL, NULL, &err);
    double compile_us = (now_s() - t0) * 1e6;
    if (!t) {
        fprintf(stderr, "%s: %d:%d: %s\n", label, err.line, err.col, err.msg);
        return -1;
    }
    char *out = tmpl_render(t, data, escape, NULL, &err);
    if (!out) {
        fprintf(stderr, "%s: render: %s\n", label, err.msg);
        tmpl_free(t);
        return -1;
    }
    size_t outlen = strlen(out);
    free(out);
    long n = 0;
    size_t sink = 0;
    double start = now_s(), elapsed = 0;
    while (elapsed < seconds) {
        for (int i = 0; i < 1000; i++) {
            out = tmpl_render(t, data, escape, NULL, NULL);
            sink += out ? (size_t)out[0] : 0;
            free(out);
        }
        n += 1000;
        elapsed = now_s() - start;
    }
    printf("%-28s %5zu B in, %5zu B out, compile %6.1f us: %10.0f renders/s, %7.1f ns/render%s\n",
           label, strlen(text), outlen, compile_us, (double)n / elapsed, elapsed * 1e9 / (double)n,
           sink == 1 ? " " : "");
    tmpl_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    if (argc > 1 && (util_parse_double(argv[1], &seconds) < 0 || seconds <= 0)) {
        fprintf(stderr, "usage: %s [SECONDS]\n", argv[0]);
        return 2;
    }
    json_error_t jerr;
    json_t *data = json_loads(alert_json, 0, &jerr);
    if (!data) {
        fprintf(stderr, "bad alert JSON: %s\n", jerr.text);
        return 1;
    }
    int rc = 0;
    rc |= run("short, 5 variables, escaped", short_text, data, 1, seconds);
    rc |= run("short, 5 variables, raw", short_text, data, 0, seconds);
    rc |= run("job description, escaped", job_text, data, 1, seconds);
    json_decref(data);
    return rc ? 1 : 0;
}
