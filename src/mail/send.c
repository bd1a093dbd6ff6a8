/* send: outbox JSON → RFC 5322 text (headers cleaned of CR/LF and controls, RFC 2047 words,
 * quoted-printable bodies), the built-in notices, and the sender: the loop thread takes due
 * outbox rows and stores outcomes; one worker thread runs libesmtp's blocking session.
 * See send.h for the message shape and the outcome rules. */
#include "mail/send.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

/* auth-client.h first: libesmtp.h declares smtp_auth_set_context only after it. */
#include <auth-client.h>
#include <libesmtp.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/util.h"
#include "config.h"
#include "mail/html2text.h"
#include "mail/loop.h"
#include "mail/parse.h"
#include "store.h"

#define MS_ADDR_MAX 254
#define MS_NAME_MAX 200
#define MS_QP_LINE 76
#define MS_WORD_BYTES 39 /* UTF-8 bytes per encoded-word: base64 of 39 is 52, +12 → 64 */

/* Build failures: INVALID is the message's fault (dead letter), NOMEM is ours (try later). */
enum ms_build_rc { MS_BUILD_OK = 0, MS_BUILD_INVALID = -1, MS_BUILD_NOMEM = -2 };

/* ---- Small string helpers --------------------------------------------------------------- */

static int ms_is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int ms_all_ascii_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return 0;
    return 1;
}

static char *ms_trim_dup(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return util_strndup(s, n);
}

/* Length of the longest prefix of s (at most max bytes) that ends at a UTF-8 boundary. */
static size_t ms_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Domain: letters, digits, '-' and '.', 1..253 bytes, labels not empty. */
static int ms_domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
        if (c == '.' && d[i + 1] == '.')
            return 0;
    }
    return 1;
}

/* An address we are willing to put in an envelope and a header: dot-atom local part, a plain
 * host name (or [literal]) domain, ASCII only. */
static int ms_addr_ok(const char *a)
{
    size_t n = strlen(a);
    const char *at = strrchr(a, '@');
    if (n == 0 || n > MS_ADDR_MAX || !at || at == a || at[1] == '\0')
        return 0;
    for (const char *p = a; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(ms_is_atext(c) || c == '.'))
            return 0;
        if (c == '.' && (p == a || p + 1 == at || p[1] == '.'))
            return 0;
    }
    const char *d = at + 1;
    if (d[0] == '[') {
        size_t dl = strlen(d);
        if (dl < 3 || d[dl - 1] != ']')
            return 0;
        for (const char *p = d + 1; p < d + dl - 1; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
                  (*p >= 'A' && *p <= 'F') || *p == '.' || *p == ':'))
                return 0;
        return 1;
    }
    return ms_domain_ok(d);
}

/* ---- Addresses ---------------------------------------------------------------------------- */

struct ms_mailbox {
    char *name; /* one clean line, may be "" */
    char *addr;
};

struct ms_list {
    struct ms_mailbox *v;
    size_t n;
};

static void ms_list_free(struct ms_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].addr);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Parses one mailbox "addr", "<addr>", "Name <addr>" or "\"Name\" <addr>" (already one
 * line). 0, MS_BUILD_INVALID with *err, or MS_BUILD_NOMEM. */
static int ms_parse_mailbox(const char *in, struct ms_mailbox *out, char **err)
{
    memset(out, 0, sizeof *out);
    char *s = mail_parse_clean_line(in);
    int rc = MS_BUILD_NOMEM;
    if (!s)
        goto done;
    size_t n = strlen(s);
    const char *lt = n > 0 && s[n - 1] == '>' ? strrchr(s, '<') : NULL;
    if (lt) {
        out->addr = ms_trim_dup(lt + 1, (size_t)(s + n - 1 - (lt + 1)));
        char *name = ms_trim_dup(s, (size_t)(lt - s));
        if (!out->addr || !name) {
            free(name);
            goto done;
        }
        size_t nl = strlen(name);
        if (nl >= 2 && name[0] == '"' && name[nl - 1] == '"') {
            /* Unquote: drop the quotes and the backslashes of quoted pairs. */
            size_t w = 0;
            for (size_t r = 1; r + 1 < nl; r++) {
                if (name[r] == '\\' && r + 2 < nl)
                    r++;
                name[w++] = name[r];
            }
            name[w] = '\0';
        }
        out->name = name;
    } else {
        out->addr = util_strdup(s);
        out->name = util_strdup("");
        if (!out->addr || !out->name)
            goto done;
    }
    if (strlen(out->name) > MS_NAME_MAX)
        out->name[ms_utf8_cut(out->name, strlen(out->name), MS_NAME_MAX)] = '\0';
    if (!ms_addr_ok(out->addr)) {
        *err = util_asprintf("not a usable mail address: \"%.80s\"", out->addr);
        rc = *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
        goto done;
    }
    rc = MS_BUILD_OK;
done:
    free(s);
    if (rc != MS_BUILD_OK) {
        free(out->name);
        free(out->addr);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* Appends the mailboxes of one string, split at ',' and ';' outside quotes and <>. */
static int ms_list_add_string(struct ms_list *l, const char *s, char **err)
{
    size_t n = strlen(s), start = 0;
    int inq = 0, inangle = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? s[i] : ',';
        if (c == '\\' && inq && i + 1 < n) {
            i++;
            continue;
        }
        if (c == '"')
            inq = !inq;
        else if (!inq && c == '<')
            inangle = 1;
        else if (!inq && c == '>')
            inangle = 0;
        if ((c != ',' && c != ';') || (i < n && (inq || inangle)))
            continue;
        char *part = ms_trim_dup(s + start, i - start);
        start = i + 1;
        if (!part)
            return MS_BUILD_NOMEM;
        if (*part == '\0') {
            free(part);
            continue;
        }
        if (l->n >= MAIL_SEND_MAX_RECIPIENTS) {
            free(part);
            *err = util_asprintf("more than %d recipients", MAIL_SEND_MAX_RECIPIENTS);
            return *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
        }
        struct ms_mailbox *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
        if (!nv) {
            free(part);
            return MS_BUILD_NOMEM;
        }
        l->v = nv;
        int rc = ms_parse_mailbox(part, &l->v[l->n], err);
        free(part);
        if (rc != MS_BUILD_OK)
            return rc;
        l->n++;
    }
    return MS_BUILD_OK;
}

/* Reads field (a string or an array of strings) of msg into l. */
static int ms_list_from_json(struct ms_list *l, const json_t *msg, const char *field, char **err)
{
    json_t *v = json_object_get(msg, field);
    if (!v || json_is_null(v))
        return MS_BUILD_OK;
    if (json_is_string(v))
        return ms_list_add_string(l, json_string_value(v), err);
    if (!json_is_array(v)) {
        *err = util_asprintf("%s: expected a string or an array of strings", field);
        return *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
    }
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        if (!json_is_string(x)) {
            *err = util_asprintf("%s[%zu]: expected a string", field, i);
            return *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
        }
        int rc = ms_list_add_string(l, json_string_value(x), err);
        if (rc != MS_BUILD_OK)
            return rc;
    }
    return MS_BUILD_OK;
}

int mail_send_from_domain(const char *from, char *out, size_t size)
{
    struct ms_mailbox mb;
    char *err = NULL;
    if (!from || size == 0 || ms_parse_mailbox(from, &mb, &err) != MS_BUILD_OK) {
        free(err);
        return -1;
    }
    const char *d = strrchr(mb.addr, '@') + 1;
    int rc = -1;
    if (ms_domain_ok(d) && strlen(d) < size) {
        size_t i = 0;
        for (; d[i]; i++)
            out[i] = (d[i] >= 'A' && d[i] <= 'Z') ? (char)(d[i] + 32) : d[i];
        out[i] = '\0';
        rc = 0;
    }
    free(mb.name);
    free(mb.addr);
    return rc;
}

/* ---- Header encoding ------------------------------------------------------------------------- */

/* Appends text as RFC 2047 B-encoded words (UTF-8), folding between words. *col is the
 * current line length. */
static int ms_put_words(buf_t *b, const char *text, size_t *col)
{
    size_t n = strlen(text);
    size_t off = 0;
    int first = 1;
    while (off < n) {
        size_t take = ms_utf8_cut(text + off, n - off, MS_WORD_BYTES);
        if (take == 0)
            take = 1; /* a stray continuation byte: never loop forever */
        char *b64 = crypto_b64_encode(text + off, take, 0);
        if (!b64)
            return -1;
        size_t wl = 12 + strlen(b64);
        int rc = 0;
        if (!first && *col + 1 + wl > 76) {
            rc |= buf_puts(b, "\r\n ");
            *col = 1;
        } else if (!first) {
            rc |= buf_putc(b, ' ');
            (*col)++;
        }
        rc |= buf_printf(b, "=?UTF-8?B?%s?=", b64);
        *col += wl;
        free(b64);
        if (rc < 0)
            return -1;
        off += take;
        first = 0;
    }
    return 0;
}

/* Appends an unstructured value (a clean line): plain ASCII folded at spaces, else words. */
static int ms_put_unstructured(buf_t *b, const char *text, size_t col)
{
    if (!ms_all_ascii_printable(text))
        return ms_put_words(b, text, &col);
    /* An ASCII line that looks like an encoded word must be encoded, or it would decode. */
    if (strstr(text, "=?"))
        return ms_put_words(b, text, &col);
    const char *p = text;
    while (*p) {
        const char *sp = strchr(p + 1, ' ');
        size_t wl = sp ? (size_t)(sp - p) : strlen(p);
        if (col + wl > 78 && p != text && *p == ' ') {
            if (buf_puts(b, "\r\n") < 0)
                return -1;
            col = 0;
        }
        if (buf_append(b, p, wl) < 0)
            return -1;
        col += wl;
        p += wl;
    }
    return 0;
}

/* Appends a display name: atoms as is, other ASCII as a quoted string, else words. */
static int ms_put_phrase(buf_t *b, const char *name, size_t *col)
{
    int atoms = 1;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (!ms_is_atext(*p) && *p != ' ')
            atoms = 0;
    if (atoms) {
        *col += strlen(name);
        return buf_puts(b, name);
    }
    if (ms_all_ascii_printable(name) && !strstr(name, "=?")) {
        int rc = buf_putc(b, '"');
        for (const char *p = name; *p; p++) {
            if (*p == '"' || *p == '\\')
                rc |= buf_putc(b, '\\');
            rc |= buf_putc(b, *p);
        }
        rc |= buf_putc(b, '"');
        *col += strlen(name) + 2;
        return rc;
    }
    return ms_put_words(b, name, col);
}

/* "Name: a, \"B\" <b>" with one mailbox per line after the first. */
static int ms_put_list(buf_t *b, const char *hdr, const struct ms_list *l)
{
    if (buf_printf(b, "%s: ", hdr) < 0)
        return -1;
    for (size_t i = 0; i < l->n; i++) {
        size_t col = i == 0 ? strlen(hdr) + 2 : 1;
        if (i > 0 && buf_puts(b, ",\r\n ") < 0)
            return -1;
        if (l->v[i].name[0]) {
            if (ms_put_phrase(b, l->v[i].name, &col) < 0 || buf_putc(b, ' ') < 0)
                return -1;
        }
        if (buf_printf(b, "<%s>", l->v[i].addr) < 0)
            return -1;
    }
    return buf_puts(b, "\r\n");
}

/* ---- Message-IDs -------------------------------------------------------------------------- */

/* Cleans an id ("<x@y>" or "x@y") to its bare form; NULL when it is not a usable id
 * (printable ASCII without spaces, quotes or brackets, with an '@'). */
static char *ms_clean_id(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
        s++;
        n -= 2;
    }
    if (n == 0 || n > MAIL_SEND_MAX_ID || !memchr(s, '@', n))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' || c == ',')
            return NULL;
    }
    return util_strndup(s, n);
}

/* 1 when s is one id with at most surrounding blanks. */
static int ms_one_id(const char *s)
{
    char *id = ms_clean_id(s);
    int ok = id != NULL;
    free(id);
    return ok;
}

/* The ref of msg into kind/number; 1 found, 0 none, -1 malformed (with *err). */
static int ms_ref(const json_t *msg, enum mail_ref_kind *kind, char number[MAIL_REF_NUMBER_MAX + 1],
                  char **err)
{
    json_t *ref = json_object_get(msg, "ref");
    if (!ref || json_is_null(ref))
        return 0;
    json_t *k = json_object_get(ref, "kind"), *num = json_object_get(ref, "number");
    if (!json_is_object(ref) || mail_ref_kind_parse(json_string_value(k), kind) < 0) {
        *err = util_asprintf("ref: expected {\"kind\": \"job_request\"|\"job\", \"number\": N}");
        return -1;
    }
    if (json_is_integer(num) && json_integer_value(num) >= 0) {
        snprintf(number, MAIL_REF_NUMBER_MAX + 1, "%lld", (long long)json_integer_value(num));
    } else if (json_is_string(num) && json_string_length(num) >= 1 &&
               json_string_length(num) <= MAIL_REF_NUMBER_MAX) {
        const char *v = json_string_value(num);
        for (const char *p = v; *p; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z') || *p == '-')) {
                *err = util_asprintf("ref.number: expected 1..64 of [A-Za-z0-9-]");
                return -1;
            }
        memcpy(number, v, strlen(v) + 1);
    } else {
        *err = util_asprintf("ref.number: expected a number or a string");
        return -1;
    }
    return 1;
}

char *mail_send_message_id(const json_t *msg, const char *domain, const char *seed)
{
    if (!domain || !ms_domain_ok(domain))
        return NULL;
    enum mail_ref_kind kind = MAIL_REF_NONE;
    char number[MAIL_REF_NUMBER_MAX + 1];
    char *err = NULL;
    int has_ref = msg ? ms_ref(msg, &kind, number, &err) : 0;
    free(err);
    char hex[17];
    if (seed) {
        unsigned char h[32];
        crypto_sha256(seed, strlen(seed), h);
        crypto_hex(h, 8, hex);
    } else {
        unsigned char r[8];
        if (util_random(r, sizeof r) < 0)
            return NULL;
        crypto_hex(r, sizeof r, hex);
    }
    char *id = NULL;
    if (has_ref == 1 && !seed) {
        char *bracketed = mail_ref_make_message_id(kind, number, domain);
        id = bracketed ? ms_clean_id(bracketed) : NULL;
        free(bracketed);
    } else if (has_ref == 1) {
        id = util_asprintf("tb.%s.%s.%s@%s", mail_ref_kind_name(kind), number, hex, domain);
    } else {
        id = util_asprintf("tb.mail.%s@%s", hex, domain);
    }
    return id;
}

/* ---- Bodies ----------------------------------------------------------------------------- */

/* Valid UTF-8 without NULs and with LF line ends; malloc'd or NULL on OOM. */
static char *ms_norm_text(const char *s, size_t n)
{
    size_t ul = 0;
    char *u = mail_parse_to_utf8("utf-8", s, n, &ul);
    if (!u)
        return NULL;
    size_t w = 0;
    for (size_t r = 0; r < ul; r++) {
        if (u[r] == '\r') {
            u[w++] = '\n';
            if (r + 1 < ul && u[r + 1] == '\n')
                r++;
        } else {
            u[w++] = u[r];
        }
    }
    u[w] = '\0';
    return u;
}

/* 1 when text (LF lines) can go as 7bit: ASCII, lines of at most 998 bytes. */
static int ms_is_7bit(const char *t)
{
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        if (*p == '\n') {
            col = 0;
            continue;
        }
        if (*p >= 0x80 || (*p < 0x20 && *p != '\t') || *p == 0x7f || ++col > 998)
            return 0;
    }
    return 1;
}

/* Appends text (LF lines) with CRLF line ends, 7bit. */
static int ms_put_7bit(buf_t *b, const char *t)
{
    for (const char *p = t; *p; p++) {
        if (*p == '\n' ? buf_puts(b, "\r\n") < 0 : buf_putc(b, *p) < 0)
            return -1;
    }
    return t[0] && t[strlen(t) - 1] != '\n' ? buf_puts(b, "\r\n") : 0;
}

/* Appends text (LF lines) quoted-printable (RFC 2045 6.7), CRLF line ends, lines of at most
 * 76 characters. A leading '.' or "From " is encoded so no transport touches it. */
static int ms_put_qp(buf_t *b, const char *t)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t col = 0;
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)t; *p && rc == 0; p++) {
        unsigned char c = *p;
        if (c == '\n') {
            rc |= buf_puts(b, "\r\n");
            col = 0;
            continue;
        }
        int at_eol = p[1] == '\n' || p[1] == '\0';
        int enc = c == '=' || c >= 0x7f || (c < 0x20 && c != '\t') ||
                  ((c == ' ' || c == '\t') && at_eol) || (col == 0 && c == '.') ||
                  (col == 0 && c == 'F' && strncmp((const char *)p, "From ", 5) == 0);
        size_t w = enc ? 3 : 1;
        /* Room for this character and, unless the line ends here, a soft break '='. */
        if (col + w > (at_eol ? MS_QP_LINE : MS_QP_LINE - 1)) {
            rc |= buf_puts(b, "=\r\n");
            col = 0;
            if (c == '.' || (c == 'F' && strncmp((const char *)p, "From ", 5) == 0)) {
                enc = 1;
                w = 3;
            }
        }
        if (enc) {
            char e[3] = {'=', hexd[c >> 4], hexd[c & 15]};
            rc |= buf_append(b, e, 3);
        } else {
            rc |= buf_putc(b, (char)c);
        }
        col += w;
    }
    if (rc == 0 && t[0] && t[strlen(t) - 1] != '\n')
        rc |= buf_puts(b, "\r\n");
    return rc;
}

/* ---- The message -------------------------------------------------------------------------- */

static void ms_date(int64_t ms, char out[40])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void mail_built_clear(struct mail_built *b)
{
    if (!b)
        return;
    free(b->data);
    free(b->message_id);
    free(b->from_addr);
    for (size_t i = 0; i < b->nrcpt; i++)
        free(b->rcpt[i]);
    free(b->rcpt);
    free(b->corr_key);
    memset(b, 0, sizeof *b);
}

/* The references of msg plus in_reply_to, bounded, as bare ids. */
static int ms_references(const json_t *msg, const char *irt, char ***ids, size_t *n, char **err)
{
    json_t *r = json_object_get(msg, "references");
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = MS_BUILD_NOMEM;
    char *joined = NULL;
    buf_t all;
    buf_init(&all, 0);
    if (r && !json_is_null(r) && !json_is_string(r) && !json_is_array(r)) {
        *err = util_asprintf("references: expected a string or an array of ids");
        rc = *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
        goto fail;
    }
    /* Gather the raw tokens: a string splits at whitespace and commas. */
    if (json_is_string(r)) {
        if (buf_puts(&all, json_string_value(r)) < 0)
            goto fail;
    } else if (json_is_array(r)) {
        size_t i;
        json_t *x;
        json_array_foreach(r, i, x)
        {
            if (!json_is_string(x)) {
                *err = util_asprintf("references[%zu]: expected a string", i);
                rc = *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
                goto fail;
            }
            /* One id per element: an element with spaces or line breaks is not an id. */
            const char *e = json_string_value(x);
            if (strpbrk(e, " \t\r\n,") && !ms_one_id(e))
                continue;
            if (buf_putc(&all, ' ') < 0 || buf_puts(&all, e) < 0)
                goto fail;
        }
    }
    if (irt && (buf_putc(&all, ' ') < 0 || buf_puts(&all, irt) < 0))
        goto fail;
    joined = buf_steal(&all);
    if (!joined)
        goto fail;
    for (char *p = joined; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r' || *p == '\n')
            p++;
        if (!*p)
            break;
        char *e = p;
        while (*e && *e != ' ' && *e != '\t' && *e != ',' && *e != '\r' && *e != '\n')
            e++;
        char save = *e;
        *e = '\0';
        char *id = ms_clean_id(p);
        *e = save;
        p = e;
        if (!id)
            continue; /* a broken id in someone else's header: leave it out */
        int dup = 0;
        for (size_t i = 0; i < cnt; i++)
            dup |= strcmp(v[i], id) == 0;
        if (dup) {
            free(id);
            continue;
        }
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                free(id);
                goto fail;
            }
            v = nv;
            cap = nc;
        }
        v[cnt++] = id;
        if (cnt > 4 * MAIL_SEND_MAX_REFERENCES)
            break;
    }
    /* Keep the first (the thread's root) and the latest ones. */
    if (cnt > MAIL_SEND_MAX_REFERENCES) {
        size_t drop = cnt - MAIL_SEND_MAX_REFERENCES;
        for (size_t i = 1; i <= drop; i++)
            free(v[i]);
        memmove(&v[1], &v[1 + drop], (cnt - 1 - drop) * sizeof *v);
        cnt -= drop;
    }
    free(joined);
    *ids = v;
    *n = cnt;
    return MS_BUILD_OK;
fail:
    buf_free(&all);
    free(joined);
    for (size_t i = 0; i < cnt; i++)
        free(v[i]);
    free(v);
    return rc;
}

/* The text of a body field: a string of at most MAIL_SEND_MAX_BODY bytes, normalised. */
static int ms_body_field(const json_t *msg, const char *field, char **out, char **err)
{
    *out = NULL;
    json_t *v = json_object_get(msg, field);
    if (!v || json_is_null(v))
        return MS_BUILD_OK;
    if (!json_is_string(v)) {
        *err = util_asprintf("%s: expected a string", field);
        return *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
    }
    if (json_string_length(v) > MAIL_SEND_MAX_BODY) {
        *err = util_asprintf("%s: longer than %u bytes", field, MAIL_SEND_MAX_BODY);
        return *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
    }
    *out = ms_norm_text(json_string_value(v), json_string_length(v));
    return *out ? MS_BUILD_OK : MS_BUILD_NOMEM;
}

/* The message object itself, unwrapping a rendered plan step. */
static const json_t *ms_unwrap(const json_t *msg)
{
    json_t *op = json_object_get(msg, "op");
    json_t *body = json_object_get(msg, "body");
    if (json_is_string(op) && strcmp(json_string_value(op), "send_mail") == 0 &&
        json_is_object(body))
        return body;
    return msg;
}

static int ms_add_rcpt(struct mail_built *out, const char *addr)
{
    for (size_t i = 0; i < out->nrcpt; i++)
        if (strcasecmp(out->rcpt[i], addr) == 0)
            return 0;
    char **nv = realloc(out->rcpt, (out->nrcpt + 1) * sizeof *nv);
    if (!nv)
        return -1;
    out->rcpt = nv;
    if (!(out->rcpt[out->nrcpt] = util_strdup(addr)))
        return -1;
    out->nrcpt++;
    return 0;
}

static int ms_build(const json_t *cmsg, const char *from, const char *message_id, int64_t now_ms,
                    struct mail_built *out, char **err)
{
    const json_t *msg = ms_unwrap(cmsg);
    struct ms_list to = {0}, cc = {0};
    struct ms_mailbox fromb = {0};
    char *subject = NULL, *text = NULL, *html = NULL, *irt = NULL, *mid = NULL;
    char **refs = NULL;
    size_t nrefs = 0;
    buf_t b;
    buf_init(&b, 0);
    int rc = MS_BUILD_INVALID;
    memset(out, 0, sizeof *out);
    *err = NULL;

    if (!json_is_object(msg)) {
        *err = util_asprintf("expected a message object");
        goto done;
    }
    if (!from || (rc = ms_parse_mailbox(from, &fromb, err)) != MS_BUILD_OK) {
        if (!*err && rc != MS_BUILD_NOMEM)
            *err = util_asprintf("no usable From address");
        rc = rc == MS_BUILD_NOMEM ? rc : MS_BUILD_INVALID;
        goto done;
    }
    if ((rc = ms_list_from_json(&to, msg, "to", err)) != MS_BUILD_OK)
        goto done;
    if ((rc = ms_list_from_json(&cc, msg, "cc", err)) != MS_BUILD_OK)
        goto done;
    rc = MS_BUILD_INVALID;
    if (to.n == 0) {
        *err = util_asprintf("to: no recipient");
        goto done;
    }
    if (to.n + cc.n > MAIL_SEND_MAX_RECIPIENTS) {
        *err = util_asprintf("more than %d recipients", MAIL_SEND_MAX_RECIPIENTS);
        goto done;
    }
    json_t *sv = json_object_get(msg, "subject");
    if (!json_is_string(sv)) {
        *err = util_asprintf("subject: expected a string");
        goto done;
    }
    if ((rc = ms_body_field(msg, "text", &text, err)) != MS_BUILD_OK ||
        (rc = ms_body_field(msg, "html", &html, err)) != MS_BUILD_OK)
        goto done;
    rc = MS_BUILD_INVALID;
    if (!text && !html) {
        *err = util_asprintf("text: required (or html)");
        goto done;
    }
    json_t *av = json_object_get(msg, "auto");
    const char *autos = "auto-generated";
    if (av && !json_is_null(av)) {
        if (!json_is_string(av) || (strcmp(json_string_value(av), "auto-replied") != 0 &&
                                    strcmp(json_string_value(av), "auto-generated") != 0)) {
            *err = util_asprintf("auto: expected \"auto-replied\" or \"auto-generated\"");
            goto done;
        }
        autos = json_string_value(av);
    }
    json_t *iv = json_object_get(msg, "in_reply_to");
    if (iv && !json_is_null(iv)) {
        if (!json_is_string(iv)) {
            *err = util_asprintf("in_reply_to: expected a string");
            goto done;
        }
        /* An empty or unusable id (a template that rendered nothing) only loses threading. */
        irt = json_string_length(iv) ? ms_clean_id(json_string_value(iv)) : NULL;
    }
    json_t *cv = json_object_get(msg, "corr_key");
    if (cv && !json_is_null(cv) && !json_is_string(cv)) {
        *err = util_asprintf("corr_key: expected a string");
        goto done;
    }
    json_t *rv = json_object_get(msg, "request_id");
    if (rv && !json_is_null(rv) && !json_is_integer(rv)) {
        *err = util_asprintf("request_id: expected an integer");
        goto done;
    }
    enum mail_ref_kind kind;
    char number[MAIL_REF_NUMBER_MAX + 1];
    if (ms_ref(msg, &kind, number, err) < 0)
        goto done;
    if ((rc = ms_references(msg, irt, &refs, &nrefs, err)) != MS_BUILD_OK)
        goto done;
    rc = MS_BUILD_NOMEM;

    subject = mail_parse_clean_line(json_string_value(sv));
    if (!subject)
        goto done;
    subject[ms_utf8_cut(subject, strlen(subject), MAIL_SEND_MAX_SUBJECT)] = '\0';
    if (!text) {
        size_t tl = 0;
        char *t = mail_html2text(html, strlen(html), MAIL_SEND_MAX_BODY, &tl);
        if (!t)
            goto done;
        text = ms_norm_text(t, tl);
        free(t);
        if (!text)
            goto done;
    }
    if (message_id) {
        mid = ms_clean_id(message_id);
        if (!mid) {
            *err = util_asprintf("unusable Message-ID");
            rc = *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
            goto done;
        }
    } else {
        char domain[256];
        const char *d = strrchr(fromb.addr, '@') + 1;
        snprintf(domain, sizeof domain, "%s", d);
        mid = mail_send_message_id(msg, domain, NULL);
        if (!mid) {
            *err = util_asprintf("cannot make a Message-ID for domain %.80s", domain);
            rc = *err ? MS_BUILD_INVALID : MS_BUILD_NOMEM;
            goto done;
        }
    }

    /* Headers. Every value that came from input went through mail_parse_clean_line (subject,
     * names) or a strict check (addresses, ids), so none can carry CR, LF or controls. */
    char date[40];
    ms_date(now_ms > 0 ? now_ms : util_now_ms(), date);
    struct ms_list froml = {&fromb, 1};
    int w = 0;
    w |= buf_printf(&b, "Date: %s\r\n", date);
    w |= ms_put_list(&b, "From", &froml);
    w |= ms_put_list(&b, "To", &to);
    if (cc.n)
        w |= ms_put_list(&b, "Cc", &cc);
    w |= buf_puts(&b, "Subject: ");
    w |= ms_put_unstructured(&b, subject, 9);
    w |= buf_puts(&b, "\r\n");
    w |= buf_printf(&b, "Message-ID: <%s>\r\n", mid);
    if (irt)
        w |= buf_printf(&b, "In-Reply-To: <%s>\r\n", irt);
    if (nrefs) {
        w |= buf_puts(&b, "References:");
        for (size_t i = 0; i < nrefs; i++)
            w |= buf_printf(&b, "%s<%s>", i == 0 ? " " : "\r\n ", refs[i]);
        w |= buf_puts(&b, "\r\n");
    }
    w |= buf_printf(&b, "Auto-Submitted: %s\r\n", autos);
    w |= buf_puts(&b, "X-Auto-Response-Suppress: All\r\n");
    w |= buf_printf(&b, "%s: %s\r\n", MAIL_LOOP_MARKER_HEADER, TB_VERSION);
    w |= buf_puts(&b, "MIME-Version: 1.0\r\n");
    if (!html) {
        int seven = ms_is_7bit(text);
        w |= buf_printf(&b,
                        "Content-Type: text/plain; charset=UTF-8\r\n"
                        "Content-Transfer-Encoding: %s\r\n\r\n",
                        seven ? "7bit" : "quoted-printable");
        w |= seven ? ms_put_7bit(&b, text) : ms_put_qp(&b, text);
    } else {
        /* "=_" cannot occur in quoted-printable text, so the boundary cannot either. */
        unsigned char r[12];
        char hex[25];
        if (util_random(r, sizeof r) < 0)
            goto done;
        crypto_hex(r, sizeof r, hex);
        w |= buf_printf(&b,
                        "Content-Type: multipart/alternative; boundary=\"=_tb_%s\"\r\n\r\n"
                        "This is a multi-part message in MIME format.\r\n\r\n"
                        "--=_tb_%s\r\n"
                        "Content-Type: text/plain; charset=UTF-8\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                        hex, hex);
        w |= ms_put_qp(&b, text);
        w |= buf_printf(&b,
                        "\r\n--=_tb_%s\r\n"
                        "Content-Type: text/html; charset=UTF-8\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                        hex);
        w |= ms_put_qp(&b, html);
        w |= buf_printf(&b, "\r\n--=_tb_%s--\r\n", hex);
    }
    if (w < 0)
        goto done;

    for (size_t i = 0; i < to.n; i++)
        if (ms_add_rcpt(out, to.v[i].addr) < 0)
            goto done;
    for (size_t i = 0; i < cc.n; i++)
        if (ms_add_rcpt(out, cc.v[i].addr) < 0)
            goto done;
    out->len = b.len;
    out->data = buf_steal(&b);
    out->message_id = mid;
    mid = NULL;
    out->from_addr = fromb.addr;
    fromb.addr = NULL;
    if (json_is_string(cv) && !(out->corr_key = util_strdup(json_string_value(cv))))
        goto done;
    out->request_id = json_is_integer(rv) ? (int64_t)json_integer_value(rv) : 0;
    if (!out->data)
        goto done;
    rc = MS_BUILD_OK;
done:
    if (rc == MS_BUILD_NOMEM && !*err)
        *err = util_strdup("out of memory");
    if (rc != MS_BUILD_OK)
        mail_built_clear(out);
    buf_free(&b);
    ms_list_free(&to);
    ms_list_free(&cc);
    free(fromb.name);
    free(fromb.addr);
    free(subject);
    free(text);
    free(html);
    free(irt);
    free(mid);
    for (size_t i = 0; i < nrefs; i++)
        free(refs[i]);
    free(refs);
    return rc;
}

int mail_send_build(const json_t *msg, const char *from, const char *message_id, int64_t now_ms,
                    struct mail_built *out, char **err)
{
    return ms_build(msg, from, message_id, now_ms, out, err) == MS_BUILD_OK ? 0 : -1;
}

int mail_send_check(const json_t *msg, char **err)
{
    struct mail_built b;
    /* A fixed sender and id: only the message itself is being judged. */
    int rc = ms_build(msg, "check@example.com", "check@example.com", 1, &b, err);
    mail_built_clear(&b);
    return rc == MS_BUILD_OK ? 0 : -1;
}

enum store_status mail_send_enqueue(struct store *s, const json_t *msg, const char *from,
                                    int64_t next_at, int64_t *id, char **err)
{
    char domain[256];
    *err = NULL;
    if (mail_send_from_domain(from, domain, sizeof domain) < 0) {
        *err = util_asprintf("no usable From address: %.80s", from ? from : "(none)");
        return STORE_INVALID;
    }
    if (mail_send_check(msg, err) < 0)
        return STORE_INVALID;
    char *mid = mail_send_message_id(ms_unwrap(msg), domain, NULL);
    if (!mid) {
        *err = util_strdup("out of memory");
        return STORE_UNAVAILABLE;
    }
    enum store_status st = store_outbox_add(s, msg, mid, next_at, id);
    free(mid);
    return st;
}

/* ---- Notices ------------------------------------------------------------------------------- */

/* "JR 1234" / "[JR-1234]" for a ticket. */
static void ms_labels(enum mail_ref_kind kind, const char *number, char label[96], char tag[96])
{
    const char *k = kind == MAIL_REF_JOB ? "Job" : "JR";
    snprintf(label, 96, "%s %s", k, number);
    snprintf(tag, 96, "[%s-%s]", k, number);
}

/* The notice subject: the tag unless the subject already names this ticket. */
static char *ms_notice_subject(const struct mail_notice *n, const char *tag, const char *what)
{
    char *subj = mail_parse_clean_line(n->subject ? n->subject : "");
    if (!subj)
        return NULL;
    struct mail_ref found;
    int tagged = mail_ref_match_subject(mail_ref_set_default(), subj, &found) == 1 &&
                 found.kind == n->kind && strcmp(found.number, n->number) == 0;
    char *out;
    if (!*subj)
        out = util_asprintf("%s %s", tag, what);
    else if (strcmp(what, "Re:") == 0 && strncasecmp(subj, "re:", 3) == 0)
        out = tagged ? util_strdup(subj) : util_asprintf("%s %s", tag, subj);
    else
        out = tagged ? util_asprintf("%s %s", what, subj)
                     : util_asprintf("%s %s %s", tag, what, subj);
    free(subj);
    return out;
}

/* The common fields of a notice; text is stolen. */
static json_t *ms_notice(const struct mail_notice *n, char *subject, char *text, const char *autos)
{
    json_t *m = NULL;
    if (!subject || !text)
        goto done;
    m = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "to", n->to, "subject", subject, "text",
                  text, "auto", autos, "ref", "kind", mail_ref_kind_name(n->kind), "number",
                  n->number);
    if (!m)
        goto done;
    int rc = 0;
    if (n->in_reply_to && *n->in_reply_to)
        rc |= json_object_set_new(m, "in_reply_to", json_string(n->in_reply_to));
    if (json_is_array(n->references))
        rc |= json_object_set_new(m, "references", json_deep_copy(n->references));
    if (n->corr_key)
        rc |= json_object_set_new(m, "corr_key", json_string(n->corr_key));
    if (n->request_id > 0)
        rc |= json_object_set_new(m, "request_id", json_integer(n->request_id));
    if (rc < 0) {
        json_decref(m);
        m = NULL;
    }
done:
    free(subject);
    free(text);
    return m;
}

static int ms_notice_ok(const struct mail_notice *n)
{
    return n && n->to && *n->to && n->number && *n->number &&
           (n->kind == MAIL_REF_JOB_REQUEST || n->kind == MAIL_REF_JOB);
}

json_t *mail_build_ack(const struct mail_notice *n)
{
    if (!ms_notice_ok(n))
        return NULL;
    char label[96], tag[96];
    ms_labels(n->kind, n->number, label, tag);
    const char *what = n->kind == MAIL_REF_JOB ? "job" : "request";
    char *text = util_asprintf(
        "Hello,\n\nyour %s has been logged as %s.\n\n%s%s"
        "Please keep %s in the subject when you write about it: replies are added to it.\n\n"
        "-- \n%s\nThis message was sent automatically.\n",
        what, label, n->note ? n->note : "", n->note ? "\n\n" : "", tag,
        n->signature ? n->signature : "Facilities helpdesk");
    return ms_notice(n, ms_notice_subject(n, tag, "Re:"), text, "auto-replied");
}

json_t *mail_build_completion(const struct mail_notice *n)
{
    if (!ms_notice_ok(n))
        return NULL;
    char label[96], tag[96];
    ms_labels(n->kind, n->number, label, tag);
    char *text =
        util_asprintf("Hello,\n\n%s has been completed.\n\n%s%s%s"
                      "-- \n%s\nThis message was sent automatically.\n",
                      label, n->note ? "Note: " : "", n->note ? n->note : "", n->note ? "\n\n" : "",
                      n->signature ? n->signature : "Facilities helpdesk");
    return ms_notice(n, ms_notice_subject(n, tag, "Completed:"), text, "auto-generated");
}

json_t *mail_build_dead_letter_alert(const struct mail_dead_letter *d)
{
    if (!d || !d->admin || !*d->admin)
        return NULL;
    char *subject = util_asprintf("[trackbridge] dead letter: %s%s%s%s", d->op ? d->op : "delivery",
                                  d->corr_key ? " (" : "", d->corr_key ? d->corr_key : "",
                                  d->corr_key ? ")" : "");
    char status[16] = "none";
    if (d->http_status > 0)
        snprintf(status, sizeof status, "%d", d->http_status);
    char *text =
        util_asprintf("A delivery to TrackplanFM failed for good and was kept as a dead letter.\n\n"
                      "delivery:    %lld\noperation:   %s\ncorrelation: %s\nsource:      %s\n"
                      "attempts:    %d\nlast status: %s\nlast error:  %s\n\n"
                      "Fix the cause, then replay it with `trackbridge replay` (delivery %lld).\n",
                      (long long)d->delivery_id, d->op ? d->op : "-",
                      d->corr_key ? d->corr_key : "-", d->source ? d->source : "-", d->attempts,
                      status, d->error ? d->error : "-", (long long)d->delivery_id);
    json_t *m = NULL;
    if (subject && text)
        m = json_pack("{s:s, s:s, s:s, s:s}", "to", d->admin, "subject", subject, "text", text,
                      "auto", "auto-generated");
    if (m && d->corr_key && json_object_set_new(m, "corr_key", json_string(d->corr_key)) < 0) {
        json_decref(m);
        m = NULL;
    }
    free(subject);
    free(text);
    return m;
}

/* ---- SMTP (libesmtp, blocking) ------------------------------------------------------------ */

const char *mail_send_outcome_name(enum mail_send_outcome o)
{
    switch (o) {
    case MAIL_SEND_SENT:
        return "sent";
    case MAIL_SEND_RETRY:
        return "retry";
    case MAIL_SEND_DEAD:
        return "dead";
    }
    return "?";
}

static pthread_once_t ms_auth_once = PTHREAD_ONCE_INIT;

static void ms_auth_init(void)
{
    auth_client_init();
}

struct ms_src {
    const char *data;
    size_t len;
};

/* libesmtp's message reader: the whole message in one piece. *ctx is malloc'd because
 * libesmtp frees it with free(). len NULL means "rewind". */
static const char *ms_msgcb(void **ctx, int *len, void *arg)
{
    const struct ms_src *src = arg;
    int *state = *ctx;
    if (!state) {
        state = malloc(sizeof *state);
        if (!state) {
            if (len)
                *len = 0;
            return NULL;
        }
        *state = 0;
        *ctx = state;
    }
    if (!len) {
        *state = 0;
        return NULL;
    }
    if (*state) {
        *len = 0;
        return NULL;
    }
    *state = 1;
    *len = (int)src->len;
    return src->data;
}

static int ms_interact(auth_client_request_t req, char **result, int fields, void *arg)
{
    const struct mail_smtp_conf *c = arg;
    for (int i = 0; i < fields; i++) {
        if (req[i].flags & AUTH_USER)
            result[i] = (char *)c->user;
        else if (req[i].flags & AUTH_PASS)
            result[i] = (char *)(c->password ? c->password : "");
        else if (req[i].flags & AUTH_REALM)
            result[i] = (char *)"";
        else
            return 0;
    }
    return 1;
}

/* What the recipients' replies say (a recipient without a reply counts in n only). */
struct ms_rcpt_tally {
    int n, ok, temp, perm;
    int temp_code, perm_code;
    char temp_text[256], perm_text[256];
};

static void ms_status_text(const smtp_status_t *st, char *out, size_t size)
{
    char *clean = mail_parse_clean_line(st && st->text ? st->text : "");
    snprintf(out, size, "%d %s", st ? st->code : 0, clean ? clean : "");
    free(clean);
}

static void ms_rcpt_cb(smtp_recipient_t r, const char *mailbox, void *arg)
{
    struct ms_rcpt_tally *t = arg;
    const smtp_status_t *st = smtp_recipient_status(r);
    int cls = st ? st->code / 100 : 0;
    t->n++;
    if (cls == 2) {
        t->ok++;
    } else if (cls == 5) {
        if (t->perm++ == 0) {
            t->perm_code = st->code;
            ms_status_text(st, t->perm_text, sizeof t->perm_text);
        }
        log_warn("mail recipient refused", "rcpt", mailbox, "reply", t->perm_text);
    } else if (cls == 4) {
        if (t->temp++ == 0) {
            t->temp_code = st ? st->code : 0;
            ms_status_text(st, t->temp_text, sizeof t->temp_text);
        }
    }
}

enum mail_send_outcome mail_send_smtp(const struct mail_smtp_conf *c, const struct mail_built *b,
                                      int *code, char **err)
{
    enum mail_send_outcome out = MAIL_SEND_RETRY;
    smtp_session_t session = NULL;
    auth_context_t actx = NULL;
    char *hostport = NULL;
    char text[300];
    *code = 0;
    *err = NULL;
    if (!c || !c->host || !b || !b->data || b->nrcpt == 0 || b->len > (size_t)0x7fffffff) {
        *err = util_strdup("nothing to send or no relay");
        out = MAIL_SEND_DEAD;
        goto done;
    }
    pthread_once(&ms_auth_once, ms_auth_init);
    session = smtp_create_session();
    hostport = util_asprintf("%s:%d", c->host, c->port > 0 ? c->port : 25);
    if (!session || !hostport || !smtp_set_server(session, hostport)) {
        *err = util_strdup("cannot set up the SMTP session");
        goto done;
    }
    long tmo = (long)(c->timeout_ms > 0 ? c->timeout_ms : 60000);
    if (tmo < 1000)
        tmo = 1000;
    static const int which[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA, Timeout_TRANSFER,
                                Timeout_DATA2};
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++)
        smtp_set_timeout(session, which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, tmo);
    if (c->starttls != MAIL_STARTTLS_DISABLED &&
        !smtp_starttls_enable(session, c->starttls == MAIL_STARTTLS_REQUIRED ? Starttls_REQUIRED
                                                                             : Starttls_ENABLED)) {
        *err = util_strdup("STARTTLS is not available in this libESMTP");
        goto done;
    }
    if (c->user && *c->user) {
        actx = auth_create_context();
        if (!actx) {
            *err = util_strdup("cannot set up SMTP AUTH");
            goto done;
        }
        auth_set_mechanism_flags(actx, AUTH_PLUGIN_PLAIN, 0);
        auth_set_interact_cb(actx, ms_interact, (void *)c);
        smtp_auth_set_context(session, actx);
    }
    smtp_message_t m = smtp_add_message(session);
    struct ms_src src = {b->data, b->len};
    if (!m || !smtp_set_reverse_path(m, b->from_addr) || !smtp_set_messagecb(m, ms_msgcb, &src)) {
        *err = util_strdup("cannot set up the SMTP message");
        goto done;
    }
    for (size_t i = 0; i < b->nrcpt; i++)
        if (!smtp_add_recipient(m, b->rcpt[i])) {
            *err = util_strdup("cannot add an SMTP recipient");
            goto done;
        }
    if (!smtp_start_session(session)) {
        char eb[128];
        const char *e = smtp_strerror(smtp_errno(), eb, sizeof eb);
        *err = util_asprintf("SMTP session to %s failed: %s", hostport, e ? e : "unknown error");
        goto done;
    }
    /* The sender's address first: a 5xx there refuses the whole message. 530 and 535 say
     * our own credentials are missing or wrong: that is fixed by configuration, so retry. */
    const smtp_status_t *rp = smtp_reverse_path_status(m);
    if (rp && rp->code / 100 == 4) {
        *code = rp->code;
        ms_status_text(rp, text, sizeof text);
        *err = util_asprintf("MAIL FROM: %s", text);
        goto done;
    }
    if (rp && rp->code / 100 == 5) {
        *code = rp->code;
        ms_status_text(rp, text, sizeof text);
        *err = util_asprintf("MAIL FROM: %s", text);
        out = (rp->code == 530 || rp->code == 535) ? MAIL_SEND_RETRY : MAIL_SEND_DEAD;
        goto done;
    }
    struct ms_rcpt_tally t;
    memset(&t, 0, sizeof t);
    smtp_enumerate_recipients(m, ms_rcpt_cb, &t);
    if (t.ok == 0 && t.temp > 0) {
        *code = t.temp_code;
        *err = util_asprintf("RCPT TO: %s", t.temp_text);
        goto done;
    }
    if (t.ok == 0 && t.perm > 0 && t.perm == t.n) {
        *code = t.perm_code;
        *err = util_asprintf("RCPT TO: %s", t.perm_text);
        out = MAIL_SEND_DEAD;
        goto done;
    }
    const smtp_status_t *ms = smtp_message_transfer_status(m);
    int cls = ms ? ms->code / 100 : 0;
    *code = ms ? ms->code : 0;
    ms_status_text(ms, text, sizeof text);
    if (cls == 2) {
        out = MAIL_SEND_SENT;
        if (t.perm + t.temp > 0)
            *err = util_asprintf("%d of %d recipients refused", t.perm + t.temp, t.n);
    } else if (cls == 5) {
        out = MAIL_SEND_DEAD;
        *err = util_asprintf("DATA: %s", text);
    } else if (cls == 4) {
        *err = util_asprintf("DATA: %s", text);
    } else {
        char eb[128];
        const char *e = smtp_strerror(smtp_errno(), eb, sizeof eb);
        *err = util_asprintf("the SMTP session ended before the message was accepted (%s)",
                             e ? e : "no reply");
    }
done:
    if (session)
        smtp_destroy_session(session);
    if (actx)
        auth_destroy_context(actx);
    free(hostport);
    if (!*err && out != MAIL_SEND_SENT)
        *err = util_strdup("out of memory");
    return out;
}

/* ---- The sender --------------------------------------------------------------------------- */

struct ms_job {
    struct ms_job *next;
    int64_t id;
    int attempts;
    struct mail_built b;
    enum mail_send_outcome outcome;
    int code;
    char *error;
};

struct mail_sender {
    struct event_base *base;
    struct store *store;
    struct mail_sender_opts o; /* strings point at the owned copies below */
    char *host, *user, *password, *from;
    char domain[256];
    struct event *timer, *kick_ev, *done_ev;
    int pipe_r, pipe_w;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ms_job *queue, *queue_tail; /* mu */
    struct ms_job *done, *done_tail; /* mu */
    int stopping;                    /* mu */
    size_t inflight;                 /* loop thread */
    int more;                        /* the last poll filled a batch */
    struct mail_sender_stats st;
};

static void ms_job_free(struct ms_job *j)
{
    if (!j)
        return;
    mail_built_clear(&j->b);
    free(j->error);
    free(j);
}

static void ms_push(struct ms_job **head, struct ms_job **tail, struct ms_job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

int mail_sender_opts_from_config(const struct tb_config *c, struct mail_sender_opts *o)
{
    memset(o, 0, sizeof *o);
    if (!c || !c->smtp.host)
        return -1;
    o->smtp.host = c->smtp.host;
    o->smtp.port = c->smtp.port;
    o->smtp.starttls = c->smtp.starttls == TB_STARTTLS_REQUIRED  ? MAIL_STARTTLS_REQUIRED
                       : c->smtp.starttls == TB_STARTTLS_ENABLED ? MAIL_STARTTLS_ENABLED
                                                                 : MAIL_STARTTLS_DISABLED;
    o->smtp.user = c->smtp.user;
    o->smtp.password = c->smtp.password;
    o->from = c->smtp.from;
    return 0;
}

/* Full jitter: a random wait in [0, min(cap, base * 2^(attempts-1))]. */
static int64_t ms_backoff(const struct mail_sender *s, int attempts)
{
    int64_t ceil = s->o.backoff_base_ms;
    for (int i = 1; i < attempts && ceil < s->o.backoff_cap_ms; i++)
        ceil *= 2;
    if (ceil > s->o.backoff_cap_ms)
        ceil = s->o.backoff_cap_ms;
    return (int64_t)util_random_below((uint64_t)ceil + 1);
}

static void ms_report(struct mail_sender *s, int64_t id, enum mail_send_outcome out, int code,
                      const char *err, const char *mid, int attempts, int64_t next_at)
{
    char ids[24], codes[16], att[16];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    snprintf(codes, sizeof codes, "%d", code);
    snprintf(att, sizeof att, "%d", attempts);
    if (out == MAIL_SEND_SENT) {
        s->st.sent++;
        log_info("mail sent", "outbox_id", ids, "message_id", mid, "attempts", att);
    } else if (out == MAIL_SEND_RETRY) {
        s->st.retried++;
        char when[32];
        util_iso8601(next_at, when);
        log_warn("mail send failed, will retry", "outbox_id", ids, "attempts", att, "smtp", codes,
                 "error", err, "next_at", when);
    } else {
        s->st.dead++;
        log_error("mail dead-lettered", "outbox_id", ids, "attempts", att, "smtp", codes, "error",
                  err);
    }
    if (s->o.on_result) {
        struct mail_send_result r = {id, out, code, err, mid, attempts, next_at};
        s->o.on_result(&r, s->o.arg);
    }
}

static void ms_mark(struct mail_sender *s, int64_t id, enum store_outbox_state state,
                    int64_t next_at, const char *err)
{
    enum store_status st = store_outbox_mark(s->store, id, state, next_at, err);
    if (st != STORE_OK) {
        char ids[24];
        snprintf(ids, sizeof ids, "%lld", (long long)id);
        log_error("mail outbox update failed", "outbox_id", ids, "status", store_status_str(st));
    }
}

/* Stores one outcome (loop thread). */
static void ms_apply(struct mail_sender *s, struct ms_job *j)
{
    int64_t next_at = 0;
    enum mail_send_outcome out = j->outcome;
    char *gave_up = NULL;
    const char *err = j->error;
    if (out == MAIL_SEND_SENT) {
        ms_mark(s, j->id, STORE_OUT_SENT, 0, NULL);
        enum store_status st =
            store_sent_mail_put(s->store, j->b.message_id, j->b.corr_key, j->b.request_id);
        if (st != STORE_OK)
            log_warn("cannot remember a sent Message-ID", "message_id", j->b.message_id, "status",
                     store_status_str(st));
    } else if (out == MAIL_SEND_RETRY && j->attempts < s->o.max_attempts) {
        next_at = util_now_ms() + ms_backoff(s, j->attempts);
        ms_mark(s, j->id, STORE_OUT_RETRY, next_at, err);
    } else {
        if (out == MAIL_SEND_RETRY) {
            gave_up = util_asprintf("gave up after %d attempts: %s", j->attempts,
                                    err ? err : "temporary failure");
            if (gave_up)
                err = gave_up;
            out = MAIL_SEND_DEAD;
        }
        ms_mark(s, j->id, STORE_OUT_DEAD, 0, err);
    }
    ms_report(s, j->id, out, j->code, err, j->b.message_id, j->attempts, next_at);
    free(gave_up);
}

/* Takes one due row: builds it (a bad message becomes a dead letter at once) and queues it
 * for the worker after marking it sending. Returns 1 when queued. */
static int ms_take(struct mail_sender *s, const struct store_outbox_row *row, int *settled)
{
    char seed[80];
    snprintf(seed, sizeof seed, "outbox:%lld:%lld", (long long)row->id, (long long)row->created_at);
    char *gen = NULL, *err = NULL;
    const char *mid = row->message_id;
    if (!mid || !*mid)
        mid = gen = mail_send_message_id(ms_unwrap(row->message), s->domain, seed);
    struct ms_job *j = calloc(1, sizeof *j);
    int queued = 0;
    if (!j || !mid)
        goto done; /* out of memory: the row stays due */
    int rc = ms_build(row->message, s->from, mid, 0, &j->b, &err);
    if (rc == MS_BUILD_INVALID) {
        *settled += store_outbox_mark(s->store, row->id, STORE_OUT_DEAD, 0, err) == STORE_OK;
        ms_report(s, row->id, MAIL_SEND_DEAD, 0, err, NULL, row->attempts, 0);
        goto done;
    }
    if (rc != MS_BUILD_OK)
        goto done;
    enum store_status st = store_outbox_mark(s->store, row->id, STORE_OUT_SENDING, 0, NULL);
    if (st != STORE_OK) {
        char ids[24];
        snprintf(ids, sizeof ids, "%lld", (long long)row->id);
        log_warn("mail outbox row not taken", "outbox_id", ids, "status", store_status_str(st));
        goto done;
    }
    j->id = row->id;
    j->attempts = row->attempts + 1;
    pthread_mutex_lock(&s->mu);
    ms_push(&s->queue, &s->queue_tail, j);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    j = NULL;
    s->inflight++;
    queued = 1;
done:
    ms_job_free(j);
    free(gen);
    free(err);
    return queued;
}

static void ms_poll(struct mail_sender *s)
{
    if (s->inflight > 0)
        return;
    struct store_outbox_row *rows = NULL;
    size_t n = 0;
    enum store_status st = store_outbox_due(s->store, util_now_ms(), s->o.batch, &rows, &n);
    if (st != STORE_OK) {
        log_warn("mail outbox poll failed", "status", store_status_str(st));
        return;
    }
    int progress = 0;
    for (size_t i = 0; i < n; i++)
        progress += ms_take(s, &rows[i], &progress);
    store_outbox_rows_free(rows, n);
    /* A full batch means more may be due; look again once this one is done, but only when
     * something moved (never spin on rows the store refuses to change). */
    s->more = n == s->o.batch && progress > 0;
    if (s->more && s->inflight == 0)
        event_active(s->kick_ev, EV_TIMEOUT, 0); /* a whole batch went dead: look again */
}

static void ms_on_timer(evutil_socket_t fd, short what, void *arg)
{
    ms_poll(arg);
}

static void ms_on_done(evutil_socket_t fd, short what, void *arg)
{
    struct mail_sender *s = arg;
    char drain[64];
    while (read(s->pipe_r, drain, sizeof drain) > 0) {
    }
    pthread_mutex_lock(&s->mu);
    struct ms_job *list = s->done;
    s->done = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list) {
        struct ms_job *next = list->next;
        ms_apply(s, list);
        ms_job_free(list);
        s->inflight--;
        list = next;
    }
    if (s->inflight == 0 && s->more)
        event_active(s->kick_ev, EV_TIMEOUT, 0);
}

static void *ms_worker(void *arg)
{
    struct mail_sender *s = arg;
    /* A relay that hangs up mid-write must give EPIPE here, not kill the process. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && !s->queue)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping)
            break;
        struct ms_job *j = s->queue;
        s->queue = j->next;
        if (!s->queue)
            s->queue_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        j->outcome = mail_send_smtp(&s->o.smtp, &j->b, &j->code, &j->error);
        pthread_mutex_lock(&s->mu);
        ms_push(&s->done, &s->done_tail, j);
        ssize_t wr = write(s->pipe_w, "x", 1);
        (void)wr; /* a full pipe already wakes the loop */
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

struct mail_sender *mail_sender_new(struct event_base *base, struct store *store,
                                    const struct mail_sender_opts *opts, char **err)
{
    *err = NULL;
    if (!base || !store || !opts || !opts->smtp.host || !*opts->smtp.host) {
        *err = util_strdup("mail sender: no event loop, store or smtp.host");
        return NULL;
    }
    struct mail_sender *s = calloc(1, sizeof *s);
    if (!s) {
        *err = util_strdup("out of memory");
        return NULL;
    }
    s->pipe_r = s->pipe_w = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->base = base;
    s->store = store;
    s->o = *opts;
    if (mail_send_from_domain(opts->from, s->domain, sizeof s->domain) < 0) {
        *err = util_asprintf("smtp.from: not a usable address: %.80s",
                             opts->from ? opts->from : "(none)");
        goto fail;
    }
    s->host = util_strdup(opts->smtp.host);
    s->user = util_strdup(opts->smtp.user);
    s->password = util_strdup(opts->smtp.password);
    s->from = util_strdup(opts->from);
    if (!s->host || !s->from || (opts->smtp.user && !s->user) ||
        (opts->smtp.password && !s->password)) {
        *err = util_strdup("out of memory");
        goto fail;
    }
    s->o.smtp.host = s->host;
    s->o.smtp.user = s->user;
    s->o.smtp.password = s->password;
    s->o.from = s->from;
    if (s->o.max_attempts <= 0)
        s->o.max_attempts = 8;
    if (s->o.backoff_base_ms <= 0)
        s->o.backoff_base_ms = 30000;
    if (s->o.backoff_cap_ms <= 0)
        s->o.backoff_cap_ms = 3600000;
    if (s->o.backoff_cap_ms < s->o.backoff_base_ms)
        s->o.backoff_cap_ms = s->o.backoff_base_ms;
    if (s->o.poll_interval_ms <= 0)
        s->o.poll_interval_ms = 5000;
    if (s->o.batch == 0)
        s->o.batch = 20;
    if (s->o.batch > 1000)
        s->o.batch = 1000;
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        *err = util_asprintf("mail sender: pipe: %s", strerror(errno));
        goto fail;
    }
    s->pipe_r = fds[0];
    s->pipe_w = fds[1];
    struct timeval tv = {(time_t)(s->o.poll_interval_ms / 1000),
                         (suseconds_t)(s->o.poll_interval_ms % 1000) * 1000};
    s->timer = event_new(base, -1, EV_PERSIST, ms_on_timer, s);
    s->kick_ev = event_new(base, -1, 0, ms_on_timer, s);
    s->done_ev = event_new(base, s->pipe_r, EV_READ | EV_PERSIST, ms_on_done, s);
    if (!s->timer || !s->kick_ev || !s->done_ev || event_add(s->timer, &tv) < 0 ||
        event_add(s->done_ev, NULL) < 0) {
        *err = util_strdup("mail sender: cannot set up its events");
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, ms_worker, s) != 0) {
        *err = util_strdup("mail sender: cannot start the worker thread");
        goto fail;
    }
    s->thread_started = 1;
    event_active(s->kick_ev, EV_TIMEOUT, 0);
    return s;
fail:
    mail_sender_free(s);
    return NULL;
}

void mail_sender_kick(struct mail_sender *s)
{
    if (s)
        event_active(s->kick_ev, EV_TIMEOUT, 0);
}

void mail_sender_stats(const struct mail_sender *s, struct mail_sender_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    *out = s->st;
    out->inflight = s->inflight;
}

void mail_sender_free(struct mail_sender *s)
{
    if (!s)
        return;
    if (s->timer)
        event_free(s->timer);
    if (s->kick_ev)
        event_free(s->kick_ev);
    if (s->done_ev)
        event_free(s->done_ev);
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    /* The worker is gone: store what it finished, put back what it never started. */
    while (s->done) {
        struct ms_job *j = s->done;
        s->done = j->next;
        ms_apply(s, j);
        ms_job_free(j);
    }
    while (s->queue) {
        struct ms_job *j = s->queue;
        s->queue = j->next;
        ms_mark(s, j->id, STORE_OUT_RETRY, util_now_ms(), "not sent: the sender stopped");
        ms_job_free(j);
    }
    if (s->pipe_r >= 0)
        close(s->pipe_r);
    if (s->pipe_w >= 0)
        close(s->pipe_w);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->host);
    free(s->user);
    free(s->password);
    free(s->from);
    free(s);
}
