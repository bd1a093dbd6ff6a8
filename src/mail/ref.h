/* ref: which TrackplanFM ticket a mail is about — from the subject ("[JR-1042]", "[Job 4711]"
 * and configured patterns), a plus-address of a recipient ("helpdesk+JR-1042@…"), or the
 * thread: our outgoing Message-IDs are "<tb.{kind}.{number}.{random}@{domain}>", so a reply's
 * In-Reply-To/References give the ticket back without a lookup. Whether the sender may
 * update that ticket is the rules' and correlation's decision, not this module's. */
#ifndef TB_MAIL_REF_H
#define TB_MAIL_REF_H

#include <jansson.h>
#include <stddef.h>

enum mail_ref_kind { MAIL_REF_NONE = 0, MAIL_REF_JOB_REQUEST, MAIL_REF_JOB };
enum mail_ref_via { MAIL_REF_VIA_SUBJECT, MAIL_REF_VIA_PLUS, MAIL_REF_VIA_THREAD };

#define MAIL_REF_NUMBER_MAX 64

/* A found reference (a small value). number: 1..64 of [A-Za-z0-9-] (digits for the defaults;
 * a GUID fits). */
struct mail_ref {
    enum mail_ref_kind kind;
    enum mail_ref_via via;
    char number[MAIL_REF_NUMBER_MAX + 1];
};

/* "job_request" / "job" (and "" for NONE); "subject" / "plus" / "thread". */
const char *mail_ref_kind_name(enum mail_ref_kind kind);
const char *mail_ref_via_name(enum mail_ref_via via);
/* Parses "job_request" (also "jr", "request") or "job"; 0, or -1 when unknown. */
int mail_ref_kind_parse(const char *s, enum mail_ref_kind *out);

/* A compiled set of patterns: the configured ones first, then the defaults ("[JR-1042]",
 * "[Job #4711]" in subjects; "JR-1042", "job4711" as plus tags; docs/email.md), all
 * case-insensitive. Immutable once built: share it between threads freely. */
struct mail_ref_set;

/* Builds a set from patterns (borrowed; NULL or an array of {"pattern": regex with a named
 * group "number", "kind": "job_request"|"job", "in": "subject"|"plus" (default subject)}).
 * NULL with *err (malloc'd: which entry, PCRE2's message and offset) on a bad entry. */
struct mail_ref_set *mail_ref_set_new(const json_t *patterns, char **err);
/* The defaults alone, built once and shared (never free it). NULL only on OOM. */
const struct mail_ref_set *mail_ref_set_default(void);
void mail_ref_set_free(struct mail_ref_set *set);

/* Looks for a reference in a subject; 1 found (*out set, via subject), 0 none. */
int mail_ref_match_subject(const struct mail_ref_set *set, const char *subject,
                           struct mail_ref *out);
/* Looks at the "+tag" of an address ("helpdesk+JR-1042@fm.example.com"); 1 or 0. */
int mail_ref_match_plus(const struct mail_ref_set *set, const char *address,
                        struct mail_ref *out);

/* New Message-ID "<tb.{kind}.{number}.{16 hex random}@{domain}>" for mail about a ticket.
 * malloc'd; NULL when kind is NONE, number is not 1..64 of [A-Za-z0-9-], domain is not a
 * plain host name, or memory runs out. */
char *mail_ref_make_message_id(enum mail_ref_kind kind, const char *number, const char *domain);
/* Reads one of our Message-IDs back (with or without <>). 0 with *out (via thread) and the
 * domain copied into domain_out (domain_size bytes; may be NULL/0), or -1 when id is not ours. */
int mail_ref_parse_message_id(const char *id, struct mail_ref *out, char *domain_out,
                              size_t domain_size);

/* The reference of a message object (borrowed): subject, then plus-addresses of to/cc/
 * envelope.to, then In-Reply-To and References (newest first) naming our Message-IDs; the
 * last two only in our_domains when n_domains > 0. 1 found (*out set), 0 none. */
int mail_ref_find(const struct mail_ref_set *set, const json_t *msg,
                  const char *const *our_domains, size_t n_domains, struct mail_ref *out);

#endif
