/* loop: machine-mail detection and a per-sender rate breaker, so trackbridge never answers a
 * machine (Guarantee 5): auto-replies (RFC 3834), bulk and list mail, bounces and receipts
 * (RFC 3464 / 8098 reports), our own mail coming back, out-of-office subjects. The verdict
 * only stops acknowledgements; whether a job is opened is the rules' business. */
#ifndef TB_MAIL_LOOP_H
#define TB_MAIL_LOOP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Who "we" are: our mail domains (borrowed strings) and the X-Loop value we stamp. */
struct mail_loop_config {
    const char *const *our_domains; /* n_our_domains entries; may be NULL when 0 */
    size_t n_our_domains;
    const char *loop_id;            /* X-Loop value naming us; NULL = "trackbridge" */
};

/* The header our outgoing mail carries so it is recognised when it comes back. */
#define MAIL_LOOP_MARKER_HEADER "X-Trackbridge"

/* Checks a message object (parse.h; borrowed). Returns 1 when it is machine mail and writes
 * a short reason ("auto-submitted: auto-replied", "bounce: delivery-status report", ...) into
 * reason (reason_size bytes, may be 0); 0 when it looks like a person wrote it. */
int mail_loop_is_auto(const json_t *msg, const struct mail_loop_config *cfg, char *reason,
                      size_t reason_size);

/* 1 when domain (case-insensitive) is one of cfg's domains or a subdomain of one. */
int mail_loop_our_domain(const struct mail_loop_config *cfg, const char *domain);

/* ---- Rate breaker --------------------------------------------------------------------- */

/* Trips when one sender sends more than max_per_window messages within window_ms: the
 * classic loop signature (two auto-responders answering each other). Thread-safe. */
struct mail_loop_breaker;

enum mail_breaker_verdict { MAIL_BREAKER_PASS, MAIL_BREAKER_TRIP };

/* max_senders bounds memory: when full, expired entries go first, then the oldest window.
 * NULL when an argument is 0 or memory runs out. */
struct mail_loop_breaker *mail_loop_breaker_new(unsigned max_per_window, int64_t window_ms,
                                                size_t max_senders);
void mail_loop_breaker_free(struct mail_loop_breaker *b);
/* Counts one message from sender (an address; compared case-insensitively) at now_ms
 * (monotonic clock). TRIP while the sender is over its budget in the current window. */
enum mail_breaker_verdict mail_loop_breaker_hit(struct mail_loop_breaker *b, const char *sender,
                                                int64_t now_ms);
/* Senders currently tracked (for metrics and tests). */
size_t mail_loop_breaker_size(struct mail_loop_breaker *b);

#endif
