/* send: outbound mail — turning outbox messages (JSON) into RFC 5322 text with our own
 * Message-ID, threading and auto-reply headers, and sending them through an SMTP relay with
 * libesmtp on a worker thread, from the durable outbox (retry with backoff, dead letters).
 * Also the built-in notices (acknowledgement, completion, dead-letter alert) as outbox JSON.
 * Not here: deciding who gets mail (rules, delivery), inbound mail (parse, imap).
 *
 * Outbox message (the JSON stored with store_outbox_add; unknown keys are ignored, and a
 * rendered plan step {"op": "send_mail", "body": {...}} is accepted for its body):
 *   to           required: "a@b", "Name <a@b>", "a@b, Other <c@d>" (',' or ';' separated)
 *                or an array of such strings
 *   cc           optional, same forms
 *   subject      required string (one line is kept: CR, LF and controls become spaces)
 *   text         the text/plain body; required unless html is given (then derived from it)
 *   html         optional: makes the message multipart/alternative
 *   in_reply_to  optional Message-ID ("<id>" or "id") the mail answers
 *   references   optional: "<a> <b>" or an array of ids; in_reply_to is appended when absent
 *   ref          optional {"kind": "job_request"|"job", "number": N or "N"}: the ticket the
 *                mail is about; our Message-ID then reads <tb.{kind}.{number}.{hex}@{domain}>
 *                so replies thread back (ref.h)
 *   auto         "auto-replied" (answers a person's mail) or "auto-generated" (default)
 *   corr_key     optional correlation key, remembered with the Message-ID (store_sent_mail_put)
 *   request_id   optional integer request id, remembered likewise
 * Limits: MAIL_SEND_MAX_RECIPIENTS addresses in to + cc, MAIL_SEND_MAX_BODY bytes per body,
 * MAIL_SEND_MAX_REFERENCES ids in References (the first and the latest are kept). */
#ifndef TB_MAIL_SEND_H
#define TB_MAIL_SEND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/ref.h"
#include "store.h"

struct event_base;
struct tb_config;

#define MAIL_SEND_MAX_RECIPIENTS 100
#define MAIL_SEND_MAX_BODY (1024u * 1024)
#define MAIL_SEND_MAX_SUBJECT 900 /* bytes of UTF-8 kept, cut at a character */
#define MAIL_SEND_MAX_REFERENCES 20
#define MAIL_SEND_MAX_ID 250 /* bytes of one Message-ID */

/* ---- Building ------------------------------------------------------------------------- */

/* A message ready for SMTP. Everything is owned by the struct (mail_built_clear). */
struct mail_built {
    char *data; /* the whole RFC 5322 message, CRLF line ends */
    size_t len;
    char *message_id; /* our Message-ID without <> */
    char *from_addr;  /* envelope sender (the From address) */
    char **rcpt;      /* envelope recipients: to + cc addresses, deduplicated */
    size_t nrcpt;
    char *corr_key;     /* from the message; may be NULL */
    int64_t request_id; /* from the message; 0 when none */
};
void mail_built_clear(struct mail_built *b);

/* Builds msg (borrowed; see the shape above) as sent by from ("Name <addr>" or "addr"), with
 * Message-ID message_id (with or without <>; NULL: a new one from mail_send_message_id) and
 * Date now_ms (0: now). 0 with *out filled, or -1 with *err (malloc'd, one line: what is
 * wrong with the message) and *out empty. Never reads the network or the store. */
int mail_send_build(const json_t *msg, const char *from, const char *message_id, int64_t now_ms,
                    struct mail_built *out, char **err);

/* A Message-ID (malloc'd, without <>) for msg (borrowed): with a "ref", the ref.h form
 * tb.{kind}.{number}.{hex}@{domain}; else tb.mail.{hex}@{domain}. seed NULL: a random hex
 * (mail_ref_make_message_id); else hex derived from seed, so the same seed gives the same id.
 * NULL when domain is not a host name or memory runs out. */
char *mail_send_message_id(const json_t *msg, const char *domain, const char *seed);

/* Copies the domain of from's address ("Helpdesk <help@fm.example.com>" → "fm.example.com")
 * into out (size bytes, lowercased). 0, or -1 when from has no usable address. */
int mail_send_from_domain(const char *from, char *out, size_t size);

/* Checks msg (borrowed) as mail_send_build would (from is not needed). 0, or -1 with *err. */
int mail_send_check(const json_t *msg, char **err);

/* Checks msg (borrowed; the store copies it), gives it a Message-ID (from a new mail_send_message_id with from's domain) and
 * queues it in the outbox at next_at (0: at once); loop thread. *id (may be NULL) gets the row.
 * INVALID with *err (malloc'd) when msg or from is unusable; else the store's status. */
enum store_status mail_send_enqueue(struct store *s, const json_t *msg, const char *from,
                                    int64_t next_at, int64_t *id, char **err);

/* ---- Built-in notices (outbox JSON, new references; NULL on OOM or missing to) ----------- */

/* What a notice is about: the ticket and the request mail it answers. Borrowed. */
struct mail_notice {
    const char *to;           /* the requester's address (required) */
    enum mail_ref_kind kind;  /* JOB_REQUEST or JOB */
    const char *number;       /* the ticket number, e.g. "1234" */
    const char *subject;      /* the request mail's subject; may be NULL */
    const char *in_reply_to;  /* the request mail's Message-ID; may be NULL */
    const json_t *references; /* the request mail's references (array of ids); may be NULL */
    const char *corr_key;     /* may be NULL */
    int64_t request_id;       /* 0 when none */
    const char *note;         /* completion note, or extra text for the ack; may be NULL */
    const char *signature;    /* closing line; NULL = "Facilities helpdesk" */
};

/* Acknowledgement to the requester: "[JR-1234] Re: {subject}", "logged as JR 1234",
 * auto-replied, In-Reply-To/References to the request. */
json_t *mail_build_ack(const struct mail_notice *n);
/* Completion notice: "[JR-1234] Completed: {subject}" with the note, auto-generated. */
json_t *mail_build_completion(const struct mail_notice *n);

/* A delivery that became a dead letter, for the admin alert. Borrowed. */
struct mail_dead_letter {
    const char *admin; /* the admin address (required) */
    int64_t delivery_id;
    const char *op;       /* operation name; may be NULL */
    const char *corr_key; /* may be NULL */
    const char *source;   /* the request's source; may be NULL */
    int http_status;      /* 0 when none */
    int attempts;
    const char *error; /* the last error; may be NULL */
};
/* "[trackbridge] dead letter: {op} ({corr_key})" to the admin, auto-generated, with the
 * replay command in the text. */
json_t *mail_build_dead_letter_alert(const struct mail_dead_letter *d);

/* ---- Sending -------------------------------------------------------------------------- */

enum mail_starttls { MAIL_STARTTLS_DISABLED = 0, MAIL_STARTTLS_ENABLED, MAIL_STARTTLS_REQUIRED };

/* The relay. Strings are borrowed for the call that takes the struct (the sender copies). */
struct mail_smtp_conf {
    const char *host; /* required */
    int port;         /* 0: 25 */
    enum mail_starttls starttls;
    const char *user; /* NULL: no AUTH */
    const char *password;
    int64_t timeout_ms; /* each protocol step (not connect); 0: 60 s */
};

/* "try later" is kept apart from "no": RETRY covers connection failures, 4xx and a session
 * cut short; DEAD is a 5xx for the sender, every recipient or the message. */
enum mail_send_outcome { MAIL_SEND_SENT = 0, MAIL_SEND_RETRY, MAIL_SEND_DEAD };

/* "sent" / "retry" / "dead". */
const char *mail_send_outcome_name(enum mail_send_outcome o);

/* Sends b through the relay, blocking (a worker thread, the CLI or tests; never the loop).
 * *code gets the deciding SMTP reply code (0 when none) and *err (malloc'd, may stay NULL on
 * SENT) the server's text or the local failure. */
enum mail_send_outcome mail_send_smtp(const struct mail_smtp_conf *c, const struct mail_built *b,
                                      int *code, char **err);

/* One outbox message's fate, as the sender reports it (valid during the callback only). */
struct mail_send_result {
    int64_t outbox_id;
    enum mail_send_outcome outcome; /* RETRY also when the send failed but more attempts remain */
    int smtp_code;
    const char *error;      /* may be NULL */
    const char *message_id; /* without <>; NULL when the message could not be built */
    int attempts;           /* attempts made so far, this one included */
    int64_t next_at;        /* RETRY: when the next attempt is due */
};

struct mail_sender_opts {
    struct mail_smtp_conf smtp;
    const char *from;         /* required: "Name <addr>" or "addr" */
    int max_attempts;         /* 0: 8; the last failed attempt makes a dead letter */
    int64_t backoff_base_ms;  /* 0: 30 s; exponential, full jitter ... */
    int64_t backoff_cap_ms;   /* 0: 1 h; ... capped */
    int64_t poll_interval_ms; /* how often the outbox is polled; 0: 5 s */
    size_t batch;             /* messages taken per poll (one batch in flight); 0: 20 */
    /* Called on the loop thread after each outcome is stored; may be NULL. */
    void (*on_result)(const struct mail_send_result *r, void *arg);
    void *arg;
};

/* Fills o from the configuration's smtp block (strings borrowed from c) and the defaults.
 * 0, or -1 when c has no smtp.host (no outbound mail configured). */
int mail_sender_opts_from_config(const struct tb_config *c, struct mail_sender_opts *o);

struct mail_sender;

/* Creates a sender polling store's outbox on base (the loop thread; store calls stay there)
 * and its worker thread (libesmtp). opts is copied. NULL with *err (malloc'd). */
struct mail_sender *mail_sender_new(struct event_base *base, struct store *store,
                                    const struct mail_sender_opts *opts, char **err);
/* Polls the outbox now (after queueing mail) instead of at the next interval. Loop thread. */
void mail_sender_kick(struct mail_sender *s);
/* Stops the worker after the message it is sending (bounded by the SMTP timeouts), stores
 * the outcomes it has, puts taken but unsent messages back to retry, and frees. Loop thread,
 * before store_close; NULL is a no-op. */
void mail_sender_free(struct mail_sender *s);

struct mail_sender_stats {
    uint64_t sent, retried, dead;
    size_t inflight; /* taken from the outbox, outcome not yet stored */
};
/* Counters since mail_sender_new. Loop thread. */
void mail_sender_stats(const struct mail_sender *s, struct mail_sender_stats *out);

#endif
