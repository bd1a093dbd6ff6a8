/* sim_faults: failures a test injects into the simulated API through POST /_sim/faults — the
 * next N calls matching a method and a path regex (POSIX extended, ignoring case) get a status
 * with a §3.1-like body (and Retry-After), a stall before being handled, or a dropped
 * connection. This module only keeps and matches the list; sim_http acts on a hit. */
#ifndef TB_SIM_FAULTS_H
#define TB_SIM_FAULTS_H

#include <stddef.h>

#include <jansson.h>

#define SIM_FAULTS_MAX 256

/* What one matching call must suffer. */
struct sim_fault_hit {
    long id;
    int status;       /* 0: answer normally (after the delay) */
    int retry_after;  /* seconds for Retry-After, -1 for none */
    int delay_ms;     /* stall before anything else, 0 for none */
    int drop;         /* close the connection without an answer */
};

typedef struct sim_faults sim_faults_t;

/* An empty fault list (NULL on OOM); free releases it (NULL is a no-op). */
sim_faults_t *sim_faults_new(void);
void sim_faults_free(sim_faults_t *f);

/* Adds one fault (a JSON object) or several (an array), borrowed: {"status", "count",
 * "retryAfter", "delayMs", "drop", "path", "method"}. Returns a new array of the faults as
 * stored (with ids), or NULL with a message in err when any is invalid (none is added). */
json_t *sim_faults_add(sim_faults_t *f, json_t *spec, char *err, size_t errlen);
/* The pending faults with their remaining counts, as a new array. NULL on OOM. */
json_t *sim_faults_list(const sim_faults_t *f);
/* Drops every pending fault. */
void sim_faults_clear(sim_faults_t *f);

/* Consumes one use of the oldest fault matching method and path: 1 with hit filled, 0 when
 * none matches. A fault whose count reaches 0 is removed. */
int sim_faults_take(sim_faults_t *f, const char *method, const char *path,
                    struct sim_fault_hit *hit);

#endif
