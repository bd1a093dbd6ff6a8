/* imap: polls a mailbox over IMAP (libcurl; imap:// or imaps://) and hands each new message to
 * the intake as a request of an email source (content type message/rfc822, the Message-ID as
 * dedup key); only once the store has committed it is the message flagged \Seen or moved.
 * UIDs taken are remembered per mailbox in the store's kv, so each message is taken once; a
 * UIDVALIDITY change starts over (the dedup key keeps repeats out). Not here: parsing mail.
 *
 * Options: the "imap" block of an email source's options (all keys; unknown keys are errors):
 *   url          required: imap://host[:port] or imaps://host[:port] (no path, no userinfo)
 *   user         required
 *   password     required (the configuration resolves ${ENV} and file: references)
 *   mailbox      the mailbox to poll; default "INBOX" (printable ASCII, at most 100 bytes)
 *   interval     between polls: "30s", "5m" or seconds; default 60s (1s .. 1d)
 *   after        "seen" (default: flag \Seen) or "move" (UID MOVE, else COPY + \Deleted +
 *                EXPUNGE; the folder is created when missing)
 *   move_to      the folder for after: move (required then)
 *   tls_verify   verify the server's certificate and name; default true
 *   starttls     imap:// only: require STARTTLS; default false
 *   start        what the first poll (or one after a UIDVALIDITY change) takes: "unseen"
 *                (default: from the oldest unseen message on), "all", or "new" (only mail
 *                that arrives later)
 *   max_message_bytes  larger messages are left in the mailbox (logged); default 25 MiB
 *   max_per_poll       messages taken per poll; default 50 (1 .. 1000). When more were waiting,
 *                      the next poll starts at once instead of after interval (a failed poll
 *                      waits the interval)
 *   timeout      per IMAP command, connect included; default 60s */
#ifndef TB_MAIL_IMAP_H
#define TB_MAIL_IMAP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;

enum mail_imap_after { MAIL_IMAP_AFTER_SEEN = 0, MAIL_IMAP_AFTER_MOVE };
enum mail_imap_start { MAIL_IMAP_START_UNSEEN = 0, MAIL_IMAP_START_ALL, MAIL_IMAP_START_NEW };

/* Parsed options; strings owned (mail_imap_options_free). */
struct mail_imap_opts {
    char *url; /* without a trailing slash */
    char *user, *password;
    char *mailbox;
    int64_t interval_ms;
    enum mail_imap_after after;
    char *move_to; /* NULL unless after is MOVE */
    int tls_verify, starttls;
    enum mail_imap_start start;
    size_t max_message_bytes;
    size_t max_per_poll;
    int64_t timeout_ms;
};

/* The "imap" block of an email source's options (borrowed from options), or NULL. */
const json_t *mail_imap_options_of(const json_t *source_options);
/* Reads imap (borrowed; the block itself). 0, or -1 with *err (malloc'd, naming the key;
 * never the password) and *out empty (free is safe). */
int mail_imap_options_parse(const json_t *imap, struct mail_imap_opts *out, char **err);
void mail_imap_options_free(struct mail_imap_opts *o);
/* Validates imap for configuration checks; 0, or -1 with *err. */
int mail_imap_check_options(const json_t *imap, char **err);

/* The dedup key of a raw message: its Message-ID without <> when it has a usable one (also
 * what `trackbridge mail` sends as Idempotency-Key), else "sha256:" and the hex digest of the
 * bytes. malloc'd; NULL on OOM. */
char *mail_imap_message_key(const char *raw, size_t len);

/* Called on the loop thread for each message the intake stored (not for duplicates). */
typedef void (*mail_imap_stored_fn)(int64_t request_id, void *arg);

struct mail_imap_poller;

/* Starts polling imap (borrowed; parsed and copied) for source (the email source's name,
 * copied) on its own worker thread. Store calls are posted to base's loop thread and run
 * there; on_stored (may be NULL) runs there too. The first poll starts at once. NULL with
 * *err (malloc'd). */
struct mail_imap_poller *mail_imap_poller_new(struct event_base *base, struct store *store,
                                              const char *source, const json_t *imap,
                                              mail_imap_stored_fn on_stored, void *arg, char **err);
/* Polls now instead of at the next interval (a poll running goes on). Returns the number of
 * polls begun so far: the poll this kick brings has a greater one, so it has ended once
 * polls + failures (mail_imap_poller_stats) pass the returned value. Any thread. */
uint64_t mail_imap_poller_kick(struct mail_imap_poller *p);
/* Stops the worker (an IMAP command in progress is aborted) and frees. Messages whose intake
 * was still pending are committed by the store as usual; they are flagged on a later run
 * (their dedup key keeps them from being stored twice). Loop thread, before store_close;
 * NULL is a no-op. */
void mail_imap_poller_free(struct mail_imap_poller *p);

struct mail_imap_stats {
    uint64_t started;    /* polls begun */
    uint64_t polls;      /* polls that ran to the end */
    uint64_t failures;   /* polls cut short by an error */
    uint64_t stored;     /* messages the intake stored */
    uint64_t duplicates; /* messages the intake already had */
    uint64_t skipped;    /* messages left alone: too large, refused, unreadable */
    uint64_t uidvalidity_resets;
};
/* A snapshot of the counters. Any thread. */
void mail_imap_poller_stats(struct mail_imap_poller *p, struct mail_imap_stats *out);

#endif
