/* provider: inbound mail as mail services post it — SendGrid Inbound Parse (multipart/form-data,
 * parsed fields or the raw "email" field), Mailgun routes (urlencoded or multipart, with the
 * timestamp/token/signature fields the auth module verifies), Postmark inbound (JSON) — turned
 * into the same message object as raw mail (parse.h). Also the `email` adapter's options.
 * Not here: verifying signatures (auth), deciding what a message means (loop, ref, rules). */
#ifndef TB_MAIL_PROVIDER_H
#define TB_MAIL_PROVIDER_H

#include <jansson.h>
#include <stddef.h>

#include "mail/parse.h"
#include "mail/ref.h"

enum mail_provider {
    MAIL_PROVIDER_AUTO = 0, /* as an option: decide per request; as a verdict: cannot tell */
    MAIL_PROVIDER_RAW,
    MAIL_PROVIDER_SENDGRID,
    MAIL_PROVIDER_MAILGUN,
    MAIL_PROVIDER_POSTMARK,
};

/* "auto", "raw", "sendgrid", "mailgun", "postmark". */
const char *mail_provider_name(enum mail_provider p);
/* Parses a provider name (case-insensitive); 0, or -1 when unknown. */
int mail_provider_parse_name(const char *s, enum mail_provider *out);

/* ---- Form bodies (multipart/form-data, application/x-www-form-urlencoded) ---------------- */

/* One field: value is the decoded bytes (NUL-terminated for convenience, len without it);
 * filename, content_type and charset are NULL unless the part carried them. */
struct mail_form_field {
    const char *name;
    const char *value;
    size_t len;
    const char *filename;
    const char *content_type;
    const char *charset;
};
struct mail_form;

#define MAIL_FORM_MAX_FIELDS 1000

/* Parses a form body by its content type (multipart/form-data through GMime, or urlencoded).
 * OK: *out is new (mail_form_free). REJECT: *err malloc'd (not a form, too big, more than
 * MAIL_FORM_MAX_FIELDS fields, no boundary). TEMPFAIL: out of memory. */
enum mail_result mail_form_parse(const char *body, size_t len, const char *content_type,
                                 const struct mail_limits *lim, struct mail_form **out,
                                 char **err);
void mail_form_free(struct mail_form *form);
size_t mail_form_count(const struct mail_form *form);
/* Borrowed; NULL past the end. */
const struct mail_form_field *mail_form_at(const struct mail_form *form, size_t i);
/* The first field named name (exact), borrowed; NULL when absent. */
const struct mail_form_field *mail_form_get(const struct mail_form *form, const char *name);

/* ---- Providers ---------------------------------------------------------------------------- */

/* Which provider sent this: by the media type of content_type and, for forms and JSON, by
 * the fields present (form and doc are borrowed, may be NULL). AUTO when it cannot tell. */
enum mail_provider mail_provider_detect(const char *content_type, const struct mail_form *form,
                                        const json_t *doc);

/* Each builds a message object (new, in *msg) from a provider post (form/doc borrowed).
 * REJECT with *err when the post lacks what the provider always sends or its raw message is
 * refused; TEMPFAIL on OOM. SendGrid prefers the raw "email" field when present. */
enum mail_result mail_provider_sendgrid(const struct mail_form *form,
                                        const struct mail_limits *lim, json_t **msg,
                                        char **err);
enum mail_result mail_provider_mailgun(const struct mail_form *form,
                                       const struct mail_limits *lim, json_t **msg,
                                       char **err);
enum mail_result mail_provider_postmark(const json_t *doc, const struct mail_limits *lim,
                                        json_t **msg, char **err);

/* The Mailgun signature fields of a raw request body, for the auth module (which verifies
 * HMAC-SHA256(key, timestamp + token) == signature before anything else is parsed).
 * 0 with three malloc'd strings, or -1 (not a form, or a field is missing). */
int mail_provider_mailgun_signature(const char *body, size_t len, const char *content_type,
                                    char **timestamp, char **token, char **signature);

/* ---- The `email` adapter's options ------------------------------------------------------ */

struct mail_options {
    enum mail_provider provider; /* AUTO: by content type and fields */
    struct mail_limits limits;
    struct mail_ref_set *refs;   /* owned; NULL = the defaults */
    char **our_domains;          /* owned, n_our_domains entries, lowercase */
    size_t n_our_domains;
    char *loop_id;               /* owned; X-Loop value naming us (default "trackbridge") */
};

/* Reads the options (borrowed object or NULL; keys in docs/email.md); unknown keys and bad
 * values are errors. 0, or -1 with *err malloc'd naming the option; *out is then empty
 * (mail_provider_options_free is safe either way). */
int mail_provider_options_parse(const json_t *options, struct mail_options *out, char **err);
/* Only validates (for configuration checks); 0 or -1 with *err. */
int mail_provider_options_check(const json_t *options, char **err);
void mail_provider_options_free(struct mail_options *o);

#endif
