/* provider: SendGrid / Mailgun / Postmark posts → message objects; form bodies; options.
 * See provider.h. Multipart form bodies go through GMime like mail (a form is MIME with
 * Content-Disposition: form-data), urlencoded bodies through the small decoder below. Every
 * field is converted to UTF-8 and every header-bound value is cleaned by the parse builder. */
#include "mail/provider.h"
#include "mail/imap.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/util.h"

/* A form is flat: a few nested multiparts (old browsers' multipart/mixed for several files)
 * are fine, more is an attack on the parser. */
#define PV_FORM_MAX_CONTAINERS 16

const char *mail_provider_name(enum mail_provider p)
{
    switch (p) {
    case MAIL_PROVIDER_AUTO:
        return "auto";
    case MAIL_PROVIDER_RAW:
        return "raw";
    case MAIL_PROVIDER_SENDGRID:
        return "sendgrid";
    case MAIL_PROVIDER_MAILGUN:
        return "mailgun";
    case MAIL_PROVIDER_POSTMARK:
        return "postmark";
    }
    return "auto";
}

int mail_provider_parse_name(const char *s, enum mail_provider *out)
{
    static const enum mail_provider all[] = {MAIL_PROVIDER_AUTO, MAIL_PROVIDER_RAW,
                                             MAIL_PROVIDER_SENDGRID, MAIL_PROVIDER_MAILGUN,
                                             MAIL_PROVIDER_POSTMARK};
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(s, mail_provider_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

/* The media type of a Content-Type value, lowercased, without parameters. */
static void pv_media_type(const char *ct, char *out, size_t size)
{
    size_t k = 0;
    if (ct)
        while (*ct == ' ' || *ct == '\t')
            ct++;
    while (ct && *ct && *ct != ';' && *ct != ' ' && *ct != '\t' && k + 1 < size) {
        char c = *ct++;
        out[k++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    out[k] = '\0';
}

/* ---- Forms ---------------------------------------------------------------------------- */

struct mail_form {
    struct mail_form_field *fields;
    size_t n, cap;
};

void mail_form_free(struct mail_form *form)
{
    if (!form)
        return;
    for (size_t i = 0; i < form->n; i++) {
        free((char *)form->fields[i].name);
        free((char *)form->fields[i].value);
        free((char *)form->fields[i].filename);
        free((char *)form->fields[i].content_type);
        free((char *)form->fields[i].charset);
    }
    free(form->fields);
    free(form);
}

size_t mail_form_count(const struct mail_form *form) { return form ? form->n : 0; }

const struct mail_form_field *mail_form_at(const struct mail_form *form, size_t i)
{
    return form && i < form->n ? &form->fields[i] : NULL;
}

const struct mail_form_field *mail_form_get(const struct mail_form *form, const char *name)
{
    for (size_t i = 0; form && name && i < form->n; i++)
        if (strcmp(form->fields[i].name, name) == 0)
            return &form->fields[i];
    return NULL;
}

/* Appends a field, copying everything. 0, -1 on OOM, 1 when the form is full. */
static int pv_form_push(struct mail_form *f, const char *name, size_t nlen, const char *value,
                        size_t vlen, const char *filename, const char *ctype,
                        const char *charset)
{
    if (f->n >= MAIL_FORM_MAX_FIELDS)
        return 1;
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 32;
        struct mail_form_field *nf = realloc(f->fields, ncap * sizeof *nf);
        if (!nf)
            return -1;
        f->fields = nf;
        f->cap = ncap;
    }
    struct mail_form_field *fld = &f->fields[f->n];
    memset(fld, 0, sizeof *fld);
    char *v = malloc(vlen + 1);
    fld->name = util_strndup(name, nlen);
    fld->value = v;
    if (v) {
        if (vlen)
            memcpy(v, value, vlen);
        v[vlen] = '\0';
    }
    fld->len = vlen;
    fld->filename = filename ? util_strdup(filename) : NULL;
    fld->content_type = ctype ? util_strdup(ctype) : NULL;
    fld->charset = charset ? util_strdup(charset) : NULL;
    f->n++; /* counted even when a copy failed, so mail_form_free releases it */
    if (!fld->name || !v || (filename && !fld->filename) || (ctype && !fld->content_type) ||
        (charset && !fld->charset))
        return -1;
    return 0;
}

static int pv_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded text ('+' is a space, %XX a byte) into out. */
static int pv_urldecode(buf_t *out, const char *s, size_t n)
{
    buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && pv_hex(s[i + 1]) >= 0 && pv_hex(s[i + 2]) >= 0) {
            c = (char)(pv_hex(s[i + 1]) * 16 + pv_hex(s[i + 2]));
            i += 2;
        }
        if (buf_putc(out, c) < 0)
            return -1;
    }
    return 0;
}

static enum mail_result pv_form_urlencoded(struct mail_form *f, const char *body, size_t len,
                                           char **err)
{
    buf_t name, value;
    buf_init(&name, 0);
    buf_init(&value, 0);
    enum mail_result res = MAIL_TEMPFAIL;
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(body + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end > i) {
            const char *eq = memchr(body + i, '=', end - i);
            size_t nend = eq ? (size_t)(eq - body) : end;
            if (pv_urldecode(&name, body + i, nend - i) < 0 ||
                pv_urldecode(&value, eq ? eq + 1 : body + end, eq ? end - nend - 1 : 0) < 0)
                goto done;
            int r = pv_form_push(f, name.data ? name.data : "", name.len,
                                 value.data ? value.data : "", value.len, NULL, NULL, NULL);
            if (r < 0)
                goto done;
            if (r > 0) {
                *err = util_asprintf("form has more than %d fields", MAIL_FORM_MAX_FIELDS);
                res = MAIL_REJECT;
                goto done;
            }
        }
        i = end + 1;
    }
    res = MAIL_OK;
done:
    buf_free(&name);
    buf_free(&value);
    return res;
}

/* One form-data part (or the leaves of a nested multipart, under the outer name). */
static int pv_form_part(struct mail_form *f, GMimeObject *obj, const char *outer_name,
                        int depth)
{
    const char *name = g_mime_object_get_content_disposition_parameter(obj, "name");
    if (!name)
        name = outer_name;
    if (GMIME_IS_MULTIPART(obj)) {
        if (depth > 0)
            return 0;
        int n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
        for (int i = 0; i < n; i++) {
            int r = pv_form_part(f, g_mime_multipart_get_part(GMIME_MULTIPART(obj), i), name,
                                 depth + 1);
            if (r != 0)
                return r;
        }
        return 0;
    }
    if (!name)
        return 0;
    const char *filename = g_mime_object_get_content_disposition_parameter(obj, "filename");
    char *ctype = NULL;
    const char *charset = NULL;
    if (g_mime_object_get_header(obj, "Content-Type")) {
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        ctype = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
        charset = g_mime_object_get_content_type_parameter(obj, "charset");
    }
    GMimeStream *mem = g_mime_stream_mem_new();
    if (GMIME_IS_PART(obj)) {
        GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(obj));
        if (dw)
            g_mime_data_wrapper_write_to_stream(dw, mem);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m)
            g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, mem);
    }
    GByteArray *arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    int r = pv_form_push(f, name, strlen(name), arr && arr->data ? (const char *)arr->data : "",
                         arr ? arr->len : 0, filename, ctype, charset);
    g_object_unref(mem);
    g_free(ctype);
    return r;
}

static enum mail_result pv_form_multipart(struct mail_form *f, const char *body, size_t len,
                                          const char *content_type, char **err)
{
    mail_parse_init();
    enum mail_result res = MAIL_TEMPFAIL;
    GMimeObject *top = NULL;
    char *ct = mail_parse_clean_line(content_type);
    buf_t b;
    buf_init(&b, 0);
    if (!ct)
        goto done;
    if (buf_puts(&b, "Content-Type: ") < 0 || buf_puts(&b, ct) < 0 ||
        buf_puts(&b, "\r\n\r\n") < 0 || buf_append(&b, body, len) < 0)
        goto done;
    struct mail_prescan ps;
    mail_parse_prescan(b.data, b.len, MAIL_MAX_HEADER_LINES, &ps);
    if (ps.containers > PV_FORM_MAX_CONTAINERS || ps.parts > MAIL_FORM_MAX_FIELDS ||
        ps.header_lines > MAIL_MAX_HEADER_LINES) {
        *err = util_asprintf("form body has more than %d fields, %d nested multiparts or %d "
                             "part header lines",
                             MAIL_FORM_MAX_FIELDS, PV_FORM_MAX_CONTAINERS, MAIL_MAX_HEADER_LINES);
        res = MAIL_REJECT;
        goto done;
    }
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(b.data, b.len);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    top = g_mime_parser_construct_part(p, NULL);
    g_object_unref(p);
    g_object_unref(st);
    if (!top || !GMIME_IS_MULTIPART(top) || !g_mime_multipart_get_boundary(GMIME_MULTIPART(top))) {
        *err = util_asprintf("multipart/form-data body without a usable boundary");
        res = MAIL_REJECT;
        goto done;
    }
    int n = g_mime_multipart_get_count(GMIME_MULTIPART(top));
    if (n == 0) {
        *err = util_asprintf("multipart/form-data body has no parts (boundary mismatch?)");
        res = MAIL_REJECT;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int r = pv_form_part(f, g_mime_multipart_get_part(GMIME_MULTIPART(top), i), NULL, 0);
        if (r < 0)
            goto done;
        if (r > 0) {
            *err = util_asprintf("form has more than %d fields", MAIL_FORM_MAX_FIELDS);
            res = MAIL_REJECT;
            goto done;
        }
    }
    res = MAIL_OK;
done:
    if (top)
        g_object_unref(top);
    buf_free(&b);
    free(ct);
    return res;
}

enum mail_result mail_form_parse(const char *body, size_t len, const char *content_type,
                                 const struct mail_limits *lim, struct mail_form **out,
                                 char **err)
{
    struct mail_limits dl;
    if (!lim) {
        mail_parse_limits_default(&dl);
        lim = &dl;
    }
    *out = NULL;
    *err = NULL;
    char mt[64];
    pv_media_type(content_type, mt, sizeof mt);
    if (len > lim->max_bytes) {
        *err = util_asprintf("form body of %zu bytes is larger than the limit of %zu", len,
                             lim->max_bytes);
        return MAIL_REJECT;
    }
    struct mail_form *f = calloc(1, sizeof *f);
    if (!f) {
        *err = util_asprintf("out of memory");
        return MAIL_TEMPFAIL;
    }
    enum mail_result res;
    if (strcmp(mt, "multipart/form-data") == 0) {
        res = pv_form_multipart(f, body, len, content_type, err);
    } else if (strcmp(mt, "application/x-www-form-urlencoded") == 0) {
        res = pv_form_urlencoded(f, body, len, err);
    } else {
        *err = util_asprintf("content type %s is not a form", mt[0] ? mt : "(none)");
        res = MAIL_REJECT;
    }
    if (res != MAIL_OK) {
        if (!*err)
            *err = util_asprintf("out of memory while reading the form");
        mail_form_free(f);
        return res;
    }
    *out = f;
    return MAIL_OK;
}

/* ---- Detection ---------------------------------------------------------------------------- */

static int pv_has_any(const struct mail_form *form, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (mail_form_get(form, names[i]))
            return 1;
    return 0;
}

static const char *const pv_sendgrid_fields[] = {"email", "envelope", "charsets",
                                                 "attachment-info", "spam_score", "SPF", "dkim",
                                                 "sender_ip", NULL};
static const char *const pv_mailgun_fields[] = {"body-plain", "message-headers", "signature",
                                                "recipient", "stripped-text", "token", NULL};

enum mail_provider mail_provider_detect(const char *content_type, const struct mail_form *form,
                                        const json_t *cdoc)
{
    json_t *doc = (json_t *)cdoc; /* jansson's getters take non-const */
    char mt[64];
    pv_media_type(content_type, mt, sizeof mt);
    if (strcmp(mt, "message/rfc822") == 0 || strcmp(mt, "text/plain") == 0 ||
        strcmp(mt, "application/octet-stream") == 0 || strcmp(mt, "message/global") == 0)
        return MAIL_PROVIDER_RAW;
    if (strcmp(mt, "multipart/form-data") == 0 ||
        strcmp(mt, "application/x-www-form-urlencoded") == 0) {
        int sg = pv_has_any(form, pv_sendgrid_fields);
        int mg = pv_has_any(form, pv_mailgun_fields);
        if (sg && !mg)
            return MAIL_PROVIDER_SENDGRID;
        if (mg && !sg)
            return MAIL_PROVIDER_MAILGUN;
        return MAIL_PROVIDER_AUTO;
    }
    size_t ml = strlen(mt);
    if (strcmp(mt, "application/json") == 0 || (ml > 5 && strcmp(mt + ml - 5, "+json") == 0)) {
        if (json_is_object(doc) &&
            (json_object_get(doc, "FromFull") || json_object_get(doc, "MessageID") ||
             json_object_get(doc, "TextBody") || json_object_get(doc, "HtmlBody") ||
             json_object_get(doc, "StrippedTextReply")))
            return MAIL_PROVIDER_POSTMARK;
        return MAIL_PROVIDER_AUTO;
    }
    return MAIL_PROVIDER_AUTO;
}

/* ---- Shared field helpers ---------------------------------------------------------------- */

/* A field's text in UTF-8 (charset: the override, the part's own, else UTF-8/cp1252 guess). */
static char *pv_text(const struct mail_form_field *fld, const char *charset, size_t *len)
{
    return mail_parse_to_utf8(charset ? charset : fld->charset, fld->value, fld->len, len);
}

/* Adds a form field as a header when present (first values win in the builder). */
static int pv_field_header(json_t *msg, const struct mail_form *form, const char *field,
                           const char *header, const char *charset)
{
    const struct mail_form_field *fld = mail_form_get(form, field);
    if (!fld)
        return 0;
    char *t = pv_text(fld, charset, NULL);
    if (!t)
        return -1;
    int r = mail_parse_add_header(msg, header, t);
    free(t);
    return r;
}

static int pv_field_text(json_t *msg, const struct mail_form *form, const char *field,
                         const char *key, const char *charset, const struct mail_limits *lim)
{
    const struct mail_form_field *fld = mail_form_get(form, field);
    if (!fld || fld->len == 0)
        return 0;
    size_t tl = 0;
    char *t = pv_text(fld, charset, &tl);
    if (!t)
        return -1;
    int r = mail_parse_set_text(msg, key, t, tl, lim);
    free(t);
    return r;
}

static int pv_set_spam_score(json_t *msg, const char *s)
{
    double d;
    char *c = mail_parse_clean_line(s);
    int r = 0;
    if (c && util_parse_double(c, &d) == 0)
        r = json_object_set_new(msg, "spam_score", json_real(d));
    free(c);
    return r;
}

/* envelope {from, to[]} with cleaned, lowercased addresses; to_list is comma-separated text
 * or a JSON array (borrowed); from NULL leaves return_path alone. */
static int pv_set_envelope(json_t *msg, const char *from, const char *to_text, json_t *to_arr)
{
    json_t *env = json_object();
    json_t *to = json_array();
    int rc = -1;
    if (!env || !to)
        goto done;
    if (from) {
        char *f = mail_parse_clean_line(from);
        if (!f)
            goto done;
        for (char *p = f; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        size_t l = strlen(f);
        if (l >= 2 && f[0] == '<' && f[l - 1] == '>') {
            memmove(f, f + 1, l - 2);
            f[l - 2] = '\0';
        }
        int r = json_object_set_new(env, "from", json_string(f));
        if (r == 0 && !json_object_get(msg, "return_path"))
            r = json_object_set_new(msg, "return_path", json_string(f));
        free(f);
        if (r < 0)
            goto done;
    }
    if (to_text) {
        char *t = mail_parse_clean_line(to_text);
        if (!t)
            goto done;
        /* comma-separated addresses */
        char *p = t;
        while (p) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            char *tok = p;
            p = comma ? comma + 1 : NULL;
            while (*tok == ' ')
                tok++;
            size_t l = strlen(tok);
            while (l > 0 && tok[l - 1] == ' ')
                tok[--l] = '\0';
            for (char *q = tok; *q; q++)
                if (*q >= 'A' && *q <= 'Z')
                    *q = (char)(*q + 32);
            if (*tok && json_array_size(to) < MAIL_MAX_ADDRESSES &&
                json_array_append_new(to, json_string(tok)) < 0) {
                free(t);
                goto done;
            }
        }
        free(t);
    }
    size_t i;
    json_t *v;
    json_array_foreach(to_arr, i, v)
    {
        if (!json_is_string(v) || json_array_size(to) >= MAIL_MAX_ADDRESSES)
            continue;
        char *a = mail_parse_clean_line(json_string_value(v));
        if (!a)
            goto done;
        for (char *p = a; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        int r = json_array_append_new(to, json_string(a));
        free(a);
        if (r < 0)
            goto done;
    }
    if (json_object_set(env, "to", to) < 0 || json_object_set(msg, "envelope", env) < 0)
        goto done;
    rc = 0;
done:
    json_decref(env);
    json_decref(to);
    return rc;
}

static json_t *pv_json_field(const struct mail_form *form, const char *name)
{
    const struct mail_form_field *fld = mail_form_get(form, name);
    if (!fld || fld->len == 0)
        return NULL;
    return json_loadb(fld->value, fld->len, JSON_DECODE_ANY, NULL);
}

/* Every file field (a part with a filename) becomes an attachment; info (borrowed, may be
 * NULL) maps field names to {filename, type} as SendGrid's attachment-info does. */
static int pv_form_attachments(json_t *msg, const struct mail_form *form, json_t *info,
                               const struct mail_limits *lim)
{
    for (size_t i = 0; i < mail_form_count(form); i++) {
        const struct mail_form_field *fld = mail_form_at(form, i);
        if (!fld->filename || strcmp(fld->name, "email") == 0)
            continue;
        json_t *meta = json_object_get(info, fld->name);
        const char *name = json_string_value(json_object_get(meta, "filename"));
        const char *type = json_string_value(json_object_get(meta, "type"));
        if (!name)
            name = json_string_value(json_object_get(meta, "name"));
        if (mail_parse_add_attachment(msg, name ? name : fld->filename,
                                      type ? type : fld->content_type, fld->value, fld->len,
                                      lim) < 0)
            return -1;
    }
    return 0;
}

static enum mail_result pv_fail(json_t **msg, char **err, enum mail_result r, const char *why)
{
    json_decref(*msg);
    *msg = NULL;
    if (!*err)
        *err = util_asprintf("%s", why);
    return r;
}

/* ---- SendGrid ------------------------------------------------------------------------------ */

enum mail_result mail_provider_sendgrid(const struct mail_form *form,
                                        const struct mail_limits *lim, json_t **msg,
                                        char **err)
{
    struct mail_limits dl;
    if (!lim) {
        mail_parse_limits_default(&dl);
        lim = &dl;
    }
    *msg = NULL;
    *err = NULL;
    json_t *charsets = NULL, *envelope = NULL, *info = NULL;
    enum mail_result res = MAIL_TEMPFAIL;
    const struct mail_form_field *raw = mail_form_get(form, "email");

    if (raw && raw->len > 0) {
        /* "POST the raw, full MIME message": the message itself, parsed as any raw mail */
        res = mail_parse_message(raw->value, raw->len, lim, msg, err);
        if (res != MAIL_OK)
            return res;
        res = MAIL_TEMPFAIL;
    } else {
        if (!mail_form_get(form, "from") && !mail_form_get(form, "headers")) {
            *err = util_asprintf("SendGrid post has neither an email nor from/headers fields");
            return MAIL_REJECT;
        }
        *msg = mail_parse_msg_new();
        if (!*msg)
            return pv_fail(msg, err, res, "out of memory");
        charsets = pv_json_field(form, "charsets");
        const char *cs_subject = json_string_value(json_object_get(charsets, "subject"));
        const char *cs_from = json_string_value(json_object_get(charsets, "from"));
        const char *cs_to = json_string_value(json_object_get(charsets, "to"));
        const char *cs_cc = json_string_value(json_object_get(charsets, "cc"));
        const char *cs_text = json_string_value(json_object_get(charsets, "text"));
        const char *cs_html = json_string_value(json_object_get(charsets, "html"));
        const struct mail_form_field *hdrs = mail_form_get(form, "headers");
        if (hdrs && mail_parse_header_block(*msg, hdrs->value, hdrs->len, lim) < 0)
            goto done;
        if (pv_field_header(*msg, form, "subject", "Subject", cs_subject) < 0 ||
            pv_field_header(*msg, form, "from", "From", cs_from) < 0 ||
            pv_field_header(*msg, form, "to", "To", cs_to) < 0 ||
            pv_field_header(*msg, form, "cc", "Cc", cs_cc) < 0 ||
            pv_field_text(*msg, form, "text", "body", cs_text, lim) < 0 ||
            pv_field_text(*msg, form, "html", "html", cs_html, lim) < 0)
            goto done;
        info = pv_json_field(form, "attachment-info");
        if (pv_form_attachments(*msg, form, info, lim) < 0)
            goto done;
    }
    envelope = pv_json_field(form, "envelope");
    if (json_is_object(envelope)) {
        json_t *to = json_object_get(envelope, "to");
        if (pv_set_envelope(*msg, json_string_value(json_object_get(envelope, "from")),
                            json_string_value(to), json_is_array(to) ? to : NULL) < 0)
            goto done;
    }
    const struct mail_form_field *spam = mail_form_get(form, "spam_score");
    if (spam && pv_set_spam_score(*msg, spam->value) < 0)
        goto done;
    if (mail_parse_finish(*msg, lim) < 0)
        goto done;
    res = MAIL_OK;
done:
    if (res != MAIL_OK)
        res = pv_fail(msg, err, res, "out of memory while reading the SendGrid post");
    json_decref(charsets);
    json_decref(envelope);
    json_decref(info);
    return res;
}

/* ---- Mailgun ------------------------------------------------------------------------------- */

/* Header-named fields Mailgun posts besides message-headers (first values win anyway). */
static const char *const pv_mailgun_headers[][2] = {
    {"From", "From"}, {"from", "From"}, {"To", "To"}, {"Cc", "Cc"}, {"Subject", "Subject"},
    {"subject", "Subject"}, {"Date", "Date"}, {"Message-Id", "Message-Id"},
    {"In-Reply-To", "In-Reply-To"}, {"References", "References"}, {"Reply-To", "Reply-To"},
};

enum mail_result mail_provider_mailgun(const struct mail_form *form,
                                       const struct mail_limits *lim, json_t **msg,
                                       char **err)
{
    struct mail_limits dl;
    if (!lim) {
        mail_parse_limits_default(&dl);
        lim = &dl;
    }
    *msg = NULL;
    *err = NULL;
    json_t *mh = NULL, *atts = NULL;
    enum mail_result res = MAIL_TEMPFAIL;
    if (!mail_form_get(form, "from") && !mail_form_get(form, "From") &&
        !mail_form_get(form, "message-headers")) {
        *err = util_asprintf("Mailgun post has neither from nor message-headers fields");
        return MAIL_REJECT;
    }
    *msg = mail_parse_msg_new();
    if (!*msg)
        return pv_fail(msg, err, res, "out of memory");

    mh = pv_json_field(form, "message-headers");
    size_t i;
    json_t *pair;
    json_array_foreach(mh, i, pair)
    {
        const char *n = json_string_value(json_array_get(pair, 0));
        const char *v = json_string_value(json_array_get(pair, 1));
        if (n && v && mail_parse_add_header(*msg, n, v) < 0)
            goto done;
    }
    for (size_t k = 0; k < sizeof pv_mailgun_headers / sizeof pv_mailgun_headers[0]; k++)
        if (pv_field_header(*msg, form, pv_mailgun_headers[k][0], pv_mailgun_headers[k][1],
                            NULL) < 0)
            goto done;
    if (pv_field_text(*msg, form, "body-plain", "body", NULL, lim) < 0 ||
        pv_field_text(*msg, form, "stripped-text", "body_stripped", NULL, lim) < 0 ||
        pv_field_text(*msg, form, "body-html", "html", NULL, lim) < 0)
        goto done;
    const struct mail_form_field *sender = mail_form_get(form, "sender");
    const struct mail_form_field *recipient = mail_form_get(form, "recipient");
    if ((sender || recipient) &&
        pv_set_envelope(*msg, sender ? sender->value : NULL, recipient ? recipient->value : NULL,
                        NULL) < 0)
        goto done;
    const struct mail_form_field *ts = mail_form_get(form, "timestamp");
    const struct mail_form_field *tok = mail_form_get(form, "token");
    const struct mail_form_field *sig = mail_form_get(form, "signature");
    if (ts || tok || sig) {
        char *a = mail_parse_clean_line(ts ? ts->value : "");
        char *b = mail_parse_clean_line(tok ? tok->value : "");
        char *c = mail_parse_clean_line(sig ? sig->value : "");
        json_t *s = (a && b && c) ? json_pack("{s:s, s:s, s:s}", "timestamp", a, "token", b,
                                              "signature", c)
                                  : NULL;
        free(a);
        free(b);
        free(c);
        if (!s || json_object_set_new(*msg, "signature", s) < 0)
            goto done;
    }
    if (pv_form_attachments(*msg, form, NULL, lim) < 0)
        goto done;
    /* store() notifications list attachments as JSON with URLs instead of file parts */
    atts = pv_json_field(form, "attachments");
    json_t *a;
    json_array_foreach(atts, i, a)
    {
        const char *n = json_string_value(json_object_get(a, "name"));
        const char *t = json_string_value(json_object_get(a, "content-type"));
        json_int_t sz = json_integer_value(json_object_get(a, "size"));
        if (json_is_object(a) &&
            mail_parse_add_attachment(*msg, n, t, NULL, sz > 0 ? (size_t)sz : 0, lim) < 0)
            goto done;
    }
    const char *score =
        json_string_value(json_object_get(json_object_get(*msg, "headers"), "x-mailgun-sscore"));
    if (score && pv_set_spam_score(*msg, score) < 0)
        goto done;
    if (mail_parse_finish(*msg, lim) < 0)
        goto done;
    res = MAIL_OK;
done:
    if (res != MAIL_OK)
        res = pv_fail(msg, err, res, "out of memory while reading the Mailgun post");
    json_decref(mh);
    json_decref(atts);
    return res;
}

int mail_provider_mailgun_signature(const char *body, size_t len, const char *content_type,
                                    char **timestamp, char **token, char **signature)
{
    *timestamp = *token = *signature = NULL;
    struct mail_form *form = NULL;
    char *err = NULL;
    if (mail_form_parse(body, len, content_type, NULL, &form, &err) != MAIL_OK) {
        free(err);
        return -1;
    }
    const struct mail_form_field *ts = mail_form_get(form, "timestamp");
    const struct mail_form_field *tok = mail_form_get(form, "token");
    const struct mail_form_field *sig = mail_form_get(form, "signature");
    int rc = -1;
    if (ts && tok && sig) {
        *timestamp = util_strndup(ts->value, ts->len);
        *token = util_strndup(tok->value, tok->len);
        *signature = util_strndup(sig->value, sig->len);
        if (*timestamp && *token && *signature)
            rc = 0;
    }
    if (rc < 0) {
        free(*timestamp);
        free(*token);
        free(*signature);
        *timestamp = *token = *signature = NULL;
    }
    mail_form_free(form);
    return rc;
}

/* ---- Postmark ------------------------------------------------------------------------------ */

static int pv_postmark_people(json_t *msg, json_t *doc, const char *full, const char *plain,
                              const char *field, const char *header)
{
    json_t *list = json_object_get(doc, full);
    if (json_is_array(list) && json_array_size(list) > 0) {
        size_t i;
        json_t *p;
        json_array_foreach(list, i, p)
        {
            const char *email = json_string_value(json_object_get(p, "Email"));
            if (email && mail_parse_add_mailbox(msg, field, email,
                                                json_string_value(json_object_get(p, "Name"))) < 0)
                return -1;
        }
        return 0;
    }
    if (json_is_object(list)) {
        const char *email = json_string_value(json_object_get(list, "Email"));
        return email ? mail_parse_add_mailbox(msg, field, email,
                                              json_string_value(json_object_get(list, "Name")))
                     : 0;
    }
    const char *s = json_string_value(json_object_get(doc, plain));
    return s && *s ? mail_parse_add_header(msg, header, s) : 0;
}

static int pv_postmark_text(json_t *msg, json_t *doc, const char *key, const char *field,
                            const struct mail_limits *lim)
{
    json_t *v = json_object_get(doc, key);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return 0;
    return mail_parse_set_text(msg, field, json_string_value(v), json_string_length(v), lim);
}

enum mail_result mail_provider_postmark(const json_t *cdoc, const struct mail_limits *lim,
                                        json_t **msg, char **err)
{
    json_t *doc = (json_t *)cdoc; /* jansson's getters take non-const */
    struct mail_limits dl;
    if (!lim) {
        mail_parse_limits_default(&dl);
        lim = &dl;
    }
    *msg = NULL;
    *err = NULL;
    enum mail_result res = MAIL_TEMPFAIL;
    unsigned char *bin = NULL;
    if (!json_is_object(doc) || (!json_object_get(doc, "From") &&
                                 !json_object_get(doc, "FromFull"))) {
        *err = util_asprintf("Postmark post is not an object with From/FromFull");
        return MAIL_REJECT;
    }
    *msg = mail_parse_msg_new();
    if (!*msg)
        return pv_fail(msg, err, res, "out of memory");
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(doc, "Headers"), i, h)
    {
        const char *n = json_string_value(json_object_get(h, "Name"));
        const char *v = json_string_value(json_object_get(h, "Value"));
        if (n && v && mail_parse_add_header(*msg, n, v) < 0)
            goto fail;
    }
    const char *subject = json_string_value(json_object_get(doc, "Subject"));
    const char *date = json_string_value(json_object_get(doc, "Date"));
    const char *reply_to = json_string_value(json_object_get(doc, "ReplyTo"));
    if ((subject && mail_parse_add_header(*msg, "Subject", subject) < 0) ||
        (date && *date && mail_parse_add_header(*msg, "Date", date) < 0) ||
        (reply_to && *reply_to && mail_parse_add_header(*msg, "Reply-To", reply_to) < 0))
        goto fail;
    if (pv_postmark_people(*msg, doc, "FromFull", "From", "from", "From") < 0 ||
        pv_postmark_people(*msg, doc, "ToFull", "To", "to", "To") < 0 ||
        pv_postmark_people(*msg, doc, "CcFull", "Cc", "cc", "Cc") < 0)
        goto fail;
    if (pv_postmark_text(*msg, doc, "TextBody", "body", lim) < 0 ||
        pv_postmark_text(*msg, doc, "HtmlBody", "html", lim) < 0 ||
        pv_postmark_text(*msg, doc, "StrippedTextReply", "body_stripped", lim) < 0)
        goto fail;
    const char *pmid = json_string_value(json_object_get(doc, "MessageID"));
    if (pmid) {
        char *c = mail_parse_clean_line(pmid);
        int r = c ? json_object_set_new(*msg, "provider_message_id", json_string(c)) : -1;
        free(c);
        if (r < 0)
            goto fail;
    }
    const char *orig = json_string_value(json_object_get(doc, "OriginalRecipient"));
    if (orig && *orig && pv_set_envelope(*msg, NULL, orig, NULL) < 0)
        goto fail;
    json_t *a;
    json_array_foreach(json_object_get(doc, "Attachments"), i, a)
    {
        const char *name = json_string_value(json_object_get(a, "Name"));
        const char *type = json_string_value(json_object_get(a, "ContentType"));
        const char *content = json_string_value(json_object_get(a, "Content"));
        json_int_t clen = json_integer_value(json_object_get(a, "ContentLength"));
        size_t size = clen > 0 ? (size_t)clen : 0;
        size_t blen = 0;
        if (content) {
            bin = crypto_b64_decode(content, strlen(content), &blen);
            if (bin)
                size = blen;
        }
        if (mail_parse_add_attachment(*msg, name, type, bin, size, lim) < 0)
            goto fail;
        free(bin);
        bin = NULL;
    }
    const char *score =
        json_string_value(json_object_get(json_object_get(*msg, "headers"), "x-spam-score"));
    if (score && pv_set_spam_score(*msg, score) < 0)
        goto fail;
    if (mail_parse_finish(*msg, lim) < 0)
        goto fail;
    return MAIL_OK;
fail:
    free(bin);
    return pv_fail(msg, err, MAIL_TEMPFAIL, "out of memory while reading the Postmark post");
}

/* ---- Options ------------------------------------------------------------------------------- */

static const char *const pv_known_options[] = {
    "provider", "ref_patterns", "our_domains", "keep_attachments", "max_attachment_bytes",
    "max_message_bytes", "max_mime_depth", "max_mime_parts", "max_text_bytes", "loop_id",
    "imap", NULL};

void mail_provider_options_free(struct mail_options *o)
{
    if (!o)
        return;
    mail_ref_set_free(o->refs);
    for (size_t i = 0; i < o->n_our_domains; i++)
        free(o->our_domains[i]);
    free(o->our_domains);
    free(o->loop_id);
    memset(o, 0, sizeof *o);
}

/* A size option: a non-negative integer in [min, max]. 0 (absent or set), -1 with *err. */
static int pv_size_option(json_t *options, const char *key, size_t min, size_t max,
                          size_t *out, char **err)
{
    json_t *v = json_object_get(options, key);
    if (!v)
        return 0;
    json_int_t n = json_integer_value(v);
    if (!json_is_integer(v) || n < 0 || (size_t)n < min || (size_t)n > max) {
        *err = util_asprintf("option %s: expected an integer from %zu to %zu", key, min, max);
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

static int pv_add_domain(struct mail_options *o, const char *d, char **err)
{
    if (!d || !*d || strpbrk(d, " \t\r\n@<>,;") || strlen(d) > 253) {
        *err = util_asprintf("option our_domains: \"%.60s\" is not a domain", d ? d : "");
        return -1;
    }
    char **nd = realloc(o->our_domains, (o->n_our_domains + 1) * sizeof *nd);
    if (!nd)
        goto oom;
    o->our_domains = nd;
    char *c = util_strdup(d);
    if (!c)
        goto oom;
    for (char *p = c; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    o->our_domains[o->n_our_domains++] = c;
    return 0;
oom:
    *err = util_asprintf("out of memory");
    return -1;
}

int mail_provider_options_parse(const json_t *coptions, struct mail_options *out, char **err)
{
    json_t *options = (json_t *)coptions; /* jansson's getters take non-const */
    memset(out, 0, sizeof *out);
    *err = NULL;
    mail_parse_limits_default(&out->limits);
    out->provider = MAIL_PROVIDER_AUTO;
    if (!options || json_is_null(options))
        return 0;
    if (!json_is_object(options)) {
        *err = util_asprintf("email options: expected an object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(options, key, v)
    {
        int known = 0;
        for (size_t i = 0; pv_known_options[i]; i++)
            if (strcmp(key, pv_known_options[i]) == 0)
                known = 1;
        if (!known) {
            *err = util_asprintf("unknown email option: %s", key);
            goto fail;
        }
    }
    if ((v = json_object_get(options, "provider")) != NULL &&
        mail_provider_parse_name(json_string_value(v), &out->provider) < 0) {
        *err = util_asprintf("option provider: expected auto, raw, sendgrid, mailgun or postmark");
        goto fail;
    }
    if ((v = json_object_get(options, "keep_attachments")) != NULL) {
        if (!json_is_boolean(v)) {
            *err = util_asprintf("option keep_attachments: expected true or false");
            goto fail;
        }
        out->limits.keep_attachments = json_is_true(v);
    }
    if (pv_size_option(options, "max_message_bytes", 1024, (size_t)1 << 30,
                       &out->limits.max_bytes, err) < 0 ||
        pv_size_option(options, "max_mime_depth", 1, 1000, &out->limits.max_depth, err) < 0 ||
        pv_size_option(options, "max_mime_parts", 1, 100000, &out->limits.max_parts, err) < 0 ||
        pv_size_option(options, "max_text_bytes", 1024, (size_t)64 << 20,
                       &out->limits.max_text_bytes, err) < 0 ||
        pv_size_option(options, "max_attachment_bytes", 0, (size_t)1 << 30,
                       &out->limits.max_attachment_bytes, err) < 0)
        goto fail;
    if ((v = json_object_get(options, "our_domains")) != NULL) {
        if (json_is_string(v)) {
            if (pv_add_domain(out, json_string_value(v), err) < 0)
                goto fail;
        } else if (json_is_array(v)) {
            size_t i;
            json_t *d;
            json_array_foreach(v, i, d)
            {
                if (i >= 256 || pv_add_domain(out, json_string_value(d), err) < 0) {
                    if (!*err)
                        *err = util_asprintf("option our_domains: more than 256 domains");
                    goto fail;
                }
            }
        } else {
            *err = util_asprintf("option our_domains: expected a domain or a list of domains");
            goto fail;
        }
    }
    if ((v = json_object_get(options, "loop_id")) != NULL) {
        const char *s = json_string_value(v);
        out->loop_id = s && *s ? mail_parse_clean_line(s) : NULL;
        if (!out->loop_id || !*out->loop_id) {
            *err = util_asprintf("option loop_id: expected a non-empty string");
            goto fail;
        }
    }
    if ((v = json_object_get(options, "ref_patterns")) != NULL) {
        out->refs = mail_ref_set_new(v, err);
        if (!out->refs) {
            if (!*err)
                *err = util_asprintf("option ref_patterns: out of memory");
            goto fail;
        }
    }
    return 0;
fail:
    mail_provider_options_free(out);
    return -1;
}

int mail_provider_options_check(const json_t *options, char **err)
{
    struct mail_options o;
    int r = mail_provider_options_parse(options, &o, err);
    mail_provider_options_free(&o);
    /* The IMAP block belongs to the poller (imap.c), which validates it. */
    const json_t *imap = r == 0 ? mail_imap_options_of(options) : NULL;
    if (imap && mail_imap_check_options(imap, err) < 0)
        return -1;
    return r;
}
