/* parse: one mail message → a normalised "mail message" JSON object, with GMime 3 doing the
 * MIME work (RFC 2047 words, transfer encodings, charsets, addresses, dates, references).
 * Also the builder the provider formats use, so raw mail and SendGrid/Mailgun/Postmark posts
 * end in the same fields. Not here: loop detection (loop.h), ticket references (ref.h). */
#ifndef TB_MAIL_PARSE_H
#define TB_MAIL_PARSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The message object (every string valid UTF-8; header-derived strings are one line):
 *   subject, from {address, name, domain}, to [address], cc [address], reply_to, date
 *   (ISO 8601 UTC or ""), message_id, in_reply_to, references [id] (ids without <>),
 *   body, body_stripped, html (only when there is an HTML part), headers {lowercased name:
 *   first value}, attachments [{name, type, size[, content (base64)]}], return_path (only
 *   when known; "" for the null sender <>). Providers add envelope, spam_score, ... */

struct mail_limits {
    size_t max_bytes;            /* whole message; beyond → reject */
    size_t max_depth;            /* MIME nesting (the message itself is depth 0) */
    size_t max_parts;            /* MIME parts, containers included */
    size_t max_text_bytes;       /* body / html kept; longer text is cut at a character */
    int keep_attachments;        /* keep attachment content (base64) ... */
    size_t max_attachment_bytes; /* ... when its decoded size is at most this */
};
#define MAIL_DEFAULT_MAX_BYTES (25u * 1024 * 1024)
#define MAIL_DEFAULT_MAX_DEPTH 16
#define MAIL_DEFAULT_MAX_PARTS 200
#define MAIL_DEFAULT_MAX_TEXT_BYTES (1024u * 1024)
/* Hard caps of the builder: distinct header names kept, bytes per header value kept,
 * addresses per list, ids in references. Later ones are ignored, never an error. */
#define MAIL_MAX_HEADERS 500
#define MAIL_MAX_HEADER_VALUE 8192
#define MAIL_MAX_ADDRESSES 1000
#define MAIL_MAX_REFERENCES 500
/* Header lines in a whole message (all parts): GMime keeps an object of ~500 bytes for each,
 * so a flood of them is refused (messages) or cut (header blocks) before parsing. */
#define MAIL_MAX_HEADER_LINES 20000
#define MAIL_DEFAULT_MAX_ATTACHMENT_BYTES (1024u * 1024)

/* Outcome of parsing: REJECT is final (the input is bad or too big, *err says why);
 * TEMPFAIL means resources ran out here and the same input may pass later. */
enum mail_result { MAIL_OK, MAIL_REJECT, MAIL_TEMPFAIL };

/* Fills lim with the defaults above (keep_attachments off). */
void mail_parse_limits_default(struct mail_limits *lim);
/* Initialises GMime once for the process; safe from any thread, any number of times. Every
 * function here calls it, so callers need not. */
void mail_parse_init(void);

/* Parses a raw RFC 5322 message (an mbox "From " first line is skipped). OK: *msg is a new
 * message object. REJECT/TEMPFAIL: *err is a malloc'd one-line reason. lim NULL = defaults. */
enum mail_result mail_parse_message(const char *data, size_t len, const struct mail_limits *lim,
                                    json_t **msg, char **err);
/* Adds the fields of a raw header block (no body) to msg (borrowed): what SendGrid's
 * "headers" field carries. First values win over fields already set. 0, or -1 on OOM. */
int mail_parse_header_block(json_t *msg, const char *data, size_t len,
                            const struct mail_limits *lim);

/* ---- Builder: used by parse itself and by provider.c -------------------------------- */
/* In every builder call msg is borrowed: the caller keeps its reference. */

/* New message object with every field at its empty default; NULL on OOM. */
json_t *mail_parse_msg_new(void);
/* Records one raw header value (folded, RFC 2047 or 8-bit) in msg (borrowed): in headers and
 * in the field it feeds (subject, from, to, cc, reply-to, date, message-id, in-reply-to,
 * references, return-path); the first of a name wins, bad names are ignored. 0, -1 on OOM. */
int mail_parse_add_header(json_t *msg, const char *name, const char *value);
/* Appends one mailbox to field "from" (sets it when empty), "to", "cc" or "reply_to" (sets
 * it when empty). address is cleaned and lowercased; name may be NULL. 0 or -1. */
int mail_parse_add_mailbox(json_t *msg, const char *field, const char *address,
                           const char *name);
/* Sets a text field ("body", "body_stripped", "html") from UTF-8 text: invalid sequences
 * become U+FFFD, CRLF becomes LF, NULs go, the result is cut to lim->max_text_bytes. 0/-1. */
int mail_parse_set_text(json_t *msg, const char *field, const char *text, size_t len,
                        const struct mail_limits *lim);
/* Appends {name, type, size[, content]} to attachments; content (base64) only when
 * lim->keep_attachments and size <= lim->max_attachment_bytes (data NULL: size only). 0/-1. */
int mail_parse_add_attachment(json_t *msg, const char *name, const char *type,
                              const void *data, size_t size, const struct mail_limits *lim);
/* Completes msg: body from the HTML when there is no plain text, body_stripped from body
 * when not set. 0 or -1 on OOM. */
int mail_parse_finish(json_t *msg, const struct mail_limits *lim);

/* ---- Text helpers ------------------------------------------------------------------- */

/* Converts len bytes in charset (NULL/unknown: UTF-8 when valid, else windows-1252;
 * iso-8859-1 and us-ascii are read as windows-1252, as mailers mean them) to valid UTF-8
 * without NULs. Returns a malloc'd NUL-terminated string (length in *out_len) or NULL. */
char *mail_parse_to_utf8(const char *charset, const char *data, size_t len, size_t *out_len);
/* What a linear scan of raw MIME finds before GMime builds its tree (whose memory and time
 * grow with parts, header lines and open boundaries): see mail_parse_prescan. */
struct mail_prescan {
    size_t containers;   /* Content-Type headers opening multipart or message/rfc822 */
    size_t parts;        /* delimiter lines of declared boundaries (each opens a part) */
    size_t header_lines; /* header fields in every header block (continuations excluded) */
    size_t header_cut;   /* offset where header line max_header_lines + 1 starts, or len */
};
/* Scans data: header blocks are the top one, those after a "--" line and those of embedded
 * messages; boundaries come from their Content-Type (any "--" line counts when one cannot be
 * read). Never fails; counts are exact for well-formed mail and upper bounds otherwise. */
void mail_parse_prescan(const char *data, size_t len, size_t max_header_lines,
                        struct mail_prescan *out);
/* Writes cp as UTF-8 into out (U+FFFD for 0, a surrogate or a value past U+10FFFF); returns
 * the bytes written, 1 to 4. */
size_t mail_parse_utf8_put(uint32_t cp, char out[4]);
/* One-line copy of s for anything that may reach an outgoing header: CR, LF, TAB and other
 * control characters (C0, DEL, C1, U+2028/2029) become one space, runs of them collapse,
 * the ends are trimmed, invalid UTF-8 becomes U+FFFD. malloc'd, or NULL on OOM / NULL s. */
char *mail_parse_clean_line(const char *s);

#endif
