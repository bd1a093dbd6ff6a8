/* parse: raw mail → message object through GMime; the shared builder; text helpers.
 * See parse.h for the object's fields. GMime is initialised once (pthread_once) and its
 * parser options are built once and only read afterwards, so parsing is thread-safe as long
 * as each call works on its own objects, which it does. */
#include "mail/parse.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/util.h"
#include "mail/html2text.h"
#include "mail/reply.h"

static pthread_once_t mp_once = PTHREAD_ONCE_INIT;
static GMimeParserOptions *mp_opts;

static void mp_init_once(void)
{
    static const char *fallback[] = {"utf-8", "windows-1252", NULL};
    g_mime_init();
    mp_opts = g_mime_parser_options_new();
    g_mime_parser_options_set_fallback_charsets(mp_opts, fallback);
    g_mime_parser_options_set_allow_addresses_without_domain(mp_opts, TRUE);
    g_mime_parser_options_set_address_compliance_mode(mp_opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_rfc2047_compliance_mode(mp_opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(mp_opts, GMIME_RFC_COMPLIANCE_LOOSE);
}

void mail_parse_init(void) { pthread_once(&mp_once, mp_init_once); }

void mail_parse_limits_default(struct mail_limits *lim)
{
    lim->max_bytes = MAIL_DEFAULT_MAX_BYTES;
    lim->max_depth = MAIL_DEFAULT_MAX_DEPTH;
    lim->max_parts = MAIL_DEFAULT_MAX_PARTS;
    lim->max_text_bytes = MAIL_DEFAULT_MAX_TEXT_BYTES;
    lim->keep_attachments = 0;
    lim->max_attachment_bytes = MAIL_DEFAULT_MAX_ATTACHMENT_BYTES;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* Decodes one code point at s (n > 0 bytes). Returns bytes used; an invalid or truncated
 * sequence yields U+FFFD for one byte. */
static size_t mp_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (n < need) {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return need;
}

size_t mail_parse_utf8_put(uint32_t cp, char out[4])
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int mp_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = mp_utf8_next(p + i, n - i, &cp);
        if (cp == 0xFFFD && k == 1)
            return 0;
        i += k;
    }
    return 1;
}

/* Appends text as clean UTF-8 for a body: NUL and C0 controls other than TAB/LF go, CRLF and
 * lone CR become LF, invalid bytes become U+FFFD. Stops (at a character) before passing max
 * bytes in out (0 = no cap). 0, or -1 on OOM. */
static int mp_text_append(buf_t *out, const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* plain ASCII runs at once */
        size_t j = i;
        while (j < n && p[j] >= 0x20 && p[j] < 0x7F)
            j++;
        if (j > i) {
            size_t take = j - i;
            if (max && out->len + take > max)
                take = max - out->len;
            if (buf_append(out, s + i, take) < 0)
                return -1;
            if (take < j - i)
                return 0;
            i = j;
            continue;
        }
        uint32_t cp;
        size_t k = mp_utf8_next(p + i, n - i, &cp);
        i += k;
        if (cp == '\r') {
            if (i < n && p[i] == '\n')
                continue;
            cp = '\n';
        }
        if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0x7F)
            continue;
        char u[4];
        size_t un = mail_parse_utf8_put(cp, u);
        if (max && out->len + un > max)
            return 0;
        if (buf_append(out, u, un) < 0)
            return -1;
    }
    return 0;
}

char *mail_parse_clean_line(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    /* each input byte gives at most 3 output bytes (an invalid byte becomes U+FFFD) */
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(3 * n + 1);
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    int space = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c > 0x20 && c < 0x7F) {
            if (space && o > 0)
                out[o++] = ' ';
            space = 0;
            out[o++] = (char)c;
            i++;
            continue;
        }
        uint32_t cp;
        i += mp_utf8_next(p + i, n - i, &cp);
        if (cp <= 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 ||
            cp == 0x2029) {
            space = 1;
            continue;
        }
        if (space && o > 0)
            out[o++] = ' ';
        space = 0;
        o += mail_parse_utf8_put(cp, out + o);
    }
    out[o] = '\0';
    return out;
}

/* windows-1252 0x80..0x9F; undefined bytes become U+FFFD. */
static const uint16_t mp_cp1252[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};

static int mp_from_cp1252(buf_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (buf_putc(out, (char)c) < 0)
                return -1;
            continue;
        }
        uint32_t cp = c < 0xA0 ? mp_cp1252[c - 0x80] : c;
        char u[4];
        if (buf_append(out, u, mail_parse_utf8_put(cp, u)) < 0)
            return -1;
    }
    return 0;
}

/* iconv from a named charset; -1 when the charset is unknown or memory runs out. */
static int mp_from_iconv(buf_t *out, const char *charset, const char *s, size_t n)
{
    iconv_t cd = g_mime_iconv_open("UTF-8", charset);
    if (cd == (iconv_t)-1)
        return -1;
    int rc = 0;
    char tmp[4096];
    char *in = (char *)s;
    size_t inleft = n;
    while (inleft > 0) {
        char *o = tmp;
        size_t oleft = sizeof tmp;
        size_t r = iconv(cd, &in, &inleft, &o, &oleft);
        if (o > tmp && buf_append(out, tmp, (size_t)(o - tmp)) < 0) {
            rc = -1;
            break;
        }
        if (r == (size_t)-1) {
            if (errno == E2BIG)
                continue;
            /* EILSEQ or EINVAL (truncated at the end): a replacement, one byte on */
            if (buf_append(out, "\xEF\xBF\xBD", 3) < 0) {
                rc = -1;
                break;
            }
            in++;
            inleft--;
            iconv(cd, NULL, NULL, NULL, NULL);
        }
    }
    if (rc == 0) {
        char *o = tmp;
        size_t oleft = sizeof tmp;
        iconv(cd, NULL, NULL, &o, &oleft);
        if (o > tmp && buf_append(out, tmp, (size_t)(o - tmp)) < 0)
            rc = -1;
    }
    g_mime_iconv_close(cd);
    return rc;
}

char *mail_parse_to_utf8(const char *charset, const char *data, size_t len, size_t *out_len)
{
    mail_parse_init();
    buf_t raw, out;
    buf_init(&raw, 0);
    buf_init(&out, 0);
    char *res = NULL;
    const char *canon = (charset && *charset) ? g_mime_charset_canon_name(charset) : NULL;
    const char *src = data;
    size_t srclen = len;

    if (!canon || strcasecmp(canon, "utf-8") == 0 || strcasecmp(canon, "utf8") == 0 ||
        strcasecmp(canon, "us-ascii") == 0 || strcasecmp(canon, "ascii") == 0) {
        /* UTF-8 (or 7-bit) as labelled when it is valid; mislabelled 8-bit text is almost
         * always windows-1252 */
        if (!mp_utf8_valid(data, len) && (!canon || strncasecmp(canon, "utf", 3) != 0)) {
            if (mp_from_cp1252(&raw, data, len) < 0)
                goto done;
            src = raw.data ? raw.data : "";
            srclen = raw.len;
        }
    } else if (strcasecmp(canon, "iso-8859-1") == 0 || strcasecmp(canon, "latin1") == 0 ||
               strcasecmp(canon, "windows-1252") == 0 || strcasecmp(canon, "cp1252") == 0) {
        if (mp_from_cp1252(&raw, data, len) < 0)
            goto done;
        src = raw.data ? raw.data : "";
        srclen = raw.len;
    } else {
        const char *iname = g_mime_charset_iconv_name(canon);
        if (mp_from_iconv(&raw, iname ? iname : canon, data, len) == 0) {
            src = raw.data ? raw.data : "";
            srclen = raw.len;
        } else if (!mp_utf8_valid(data, len)) {
            /* a charset iconv does not know: the usual suspect */
            buf_reset(&raw);
            if (mp_from_cp1252(&raw, data, len) < 0)
                goto done;
            src = raw.data ? raw.data : "";
            srclen = raw.len;
        }
    }
    if (mp_text_append(&out, src, srclen, 0) < 0)
        goto done;
    if (out_len)
        *out_len = out.len;
    res = buf_steal(&out);
done:
    buf_free(&raw);
    buf_free(&out);
    return res;
}

/* ---- Builder ----------------------------------------------------------------------------- */

static int mp_set_str(json_t *obj, const char *key, const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (!v)
        v = json_string("");
    return json_object_set_new(obj, key, v);
}

json_t *mail_parse_msg_new(void)
{
    static const char *const strings[] = {"subject", "reply_to", "date", "message_id",
                                          "in_reply_to", "body", "body_stripped"};
    static const char *const arrays[] = {"to", "cc", "references", "attachments"};
    json_t *m = json_object();
    json_t *from = json_object();
    int bad = !m || !from;
    bad = bad || json_object_set_new(from, "address", json_string("")) < 0 ||
          json_object_set_new(from, "name", json_string("")) < 0 ||
          json_object_set_new(from, "domain", json_string("")) < 0;
    bad = bad || json_object_set_new(m, "subject", json_string("")) < 0 ||
          json_object_set(m, "from", from) < 0;
    for (size_t i = 1; !bad && i < sizeof strings / sizeof strings[0]; i++)
        bad = json_object_set_new(m, strings[i], json_string("")) < 0;
    for (size_t i = 0; !bad && i < sizeof arrays / sizeof arrays[0]; i++)
        bad = json_object_set_new(m, arrays[i], json_array()) < 0;
    bad = bad || json_object_set_new(m, "headers", json_object()) < 0;
    json_decref(from);
    if (bad) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static void mp_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

/* "local@domain" → "domain" (lowercased); "" when there is no '@'. */
static const char *mp_domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

int mail_parse_add_mailbox(json_t *msg, const char *field, const char *address,
                           const char *name)
{
    int rc = -1;
    char *a = mail_parse_clean_line(address ? address : "");
    char *n = mail_parse_clean_line(name ? name : "");
    if (!a || !n)
        goto done;
    mp_lower(a);
    /* "<x@y>" from callers that pass a header-ish form */
    size_t al = strlen(a);
    if (al >= 2 && a[0] == '<' && a[al - 1] == '>') {
        memmove(a, a + 1, al - 2);
        a[al - 2] = '\0';
    }
    if (strcmp(field, "from") == 0) {
        json_t *from = json_object_get(msg, "from");
        const char *cur = json_string_value(json_object_get(from, "address"));
        if (cur && *cur) {
            rc = 0;
            goto done;
        }
        json_t *f = json_object();
        if (!f || mp_set_str(f, "address", a) < 0 || mp_set_str(f, "name", n) < 0 ||
            mp_set_str(f, "domain", mp_domain_of(a)) < 0 ||
            json_object_set_new(msg, "from", f) < 0) {
            json_decref(f);
            goto done;
        }
    } else if (strcmp(field, "reply_to") == 0) {
        const char *cur = json_string_value(json_object_get(msg, "reply_to"));
        if (!cur || !*cur)
            if (mp_set_str(msg, "reply_to", a) < 0)
                goto done;
    } else {
        json_t *arr = json_object_get(msg, field);
        if (!json_is_array(arr)) {
            arr = json_array();
            if (!arr || json_object_set_new(msg, field, arr) < 0)
                goto done;
        }
        if (*a && json_array_size(arr) < MAIL_MAX_ADDRESSES &&
            json_array_append_new(arr, json_string(a)) < 0)
            goto done;
    }
    rc = 0;
done:
    free(a);
    free(n);
    return rc;
}

/* Adds every mailbox of an address header value (groups flattened) to field. */
static int mp_add_addresses(json_t *msg, const char *field, const char *value, int first_only)
{
    InternetAddressList *list = internet_address_list_parse(mp_opts, value);
    if (!list)
        return 0;
    int rc = 0, added = 0;
    int n = internet_address_list_length(list);
    for (int i = 0; i < n && rc == 0 && !(first_only && added); i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            rc = mail_parse_add_mailbox(msg, field, addr, internet_address_get_name(ia));
            added = 1;
        } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            InternetAddressList *members =
                internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
            int m = members ? internet_address_list_length(members) : 0;
            for (int k = 0; k < m && rc == 0 && !(first_only && added); k++) {
                InternetAddress *mb = internet_address_list_get_address(members, k);
                if (!INTERNET_ADDRESS_IS_MAILBOX(mb))
                    continue;
                const char *addr =
                    internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(mb));
                rc = mail_parse_add_mailbox(msg, field, addr, internet_address_get_name(mb));
                added = 1;
            }
        }
    }
    g_object_unref(list);
    return rc;
}

/* A message id without <>, cleaned; NULL when there is none. */
static char *mp_message_id(const char *value)
{
    char *id = g_mime_utils_decode_message_id(value);
    char *res = NULL;
    if (id && *id) {
        res = mail_parse_clean_line(id);
    } else {
        char *c = mail_parse_clean_line(value);
        if (c) {
            size_t l = strlen(c);
            if (l >= 2 && c[0] == '<' && c[l - 1] == '>') {
                memmove(c, c + 1, l - 2);
                c[l - 2] = '\0';
            }
            if (*c && !strchr(c, ' '))
                res = c;
            else
                free(c);
        }
    }
    g_free(id);
    return res;
}

static int mp_set_references(json_t *msg, const char *field, const char *value, int single)
{
    GMimeReferences *refs = g_mime_references_parse(mp_opts, value);
    int rc = 0;
    int n = refs ? g_mime_references_length(refs) : 0;
    if (single) {
        char *id = NULL;
        if (n > 0)
            id = mail_parse_clean_line(g_mime_references_get_message_id(refs, 0));
        else
            id = mp_message_id(value);
        if (id)
            rc = mp_set_str(msg, field, id);
        free(id);
    } else {
        json_t *arr = json_array();
        for (int i = 0; arr && i < n && i < MAIL_MAX_REFERENCES; i++) {
            char *id = mail_parse_clean_line(g_mime_references_get_message_id(refs, i));
            if (!id || json_array_append_new(arr, json_string(id)) < 0) {
                free(id);
                json_decref(arr);
                arr = NULL;
                break;
            }
            free(id);
        }
        rc = arr ? json_object_set_new(msg, field, arr) : -1;
    }
    if (refs)
        g_mime_references_free(refs);
    return rc;
}

static int mp_set_date(json_t *msg, const char *value)
{
    GDateTime *dt = g_mime_utils_header_decode_date(value);
    if (!dt)
        return 0;
    int64_t ms = (int64_t)g_date_time_to_unix(dt) * 1000 + g_date_time_get_microsecond(dt) / 1000;
    g_date_time_unref(dt);
    char iso[32];
    util_iso8601(ms, iso);
    return mp_set_str(msg, "date", iso);
}

/* Cuts s (in place) to at most max bytes at a character boundary. */
static void mp_cut_utf8(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    s[k] = '\0';
}

int mail_parse_add_header(json_t *msg, const char *name, const char *value)
{
    mail_parse_init();
    if (!name || !value)
        return 0;
    size_t nl = strlen(name);
    if (nl == 0 || nl > 128)
        return 0;
    char lname[129];
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 32 || c >= 127 || c == ':')
            return 0;
        lname[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
    }
    lname[nl] = '\0';
    json_t *headers = json_object_get(msg, "headers");
    if (!json_is_object(headers))
        return -1;
    if (json_object_get(headers, lname))
        return 0; /* first value wins, for the object and the fields it feeds */
    if (json_object_size(headers) >= MAIL_MAX_HEADERS)
        return 0;

    int rc = -1;
    char *unfolded = NULL, *decoded = NULL, *clean = NULL;
    int ascii = 1;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p >= 0x80) {
            ascii = 0;
            break;
        }
    if (ascii) {
        /* the common case: flattening is unfolding, and only encoded words need GMime */
        unfolded = mail_parse_clean_line(value);
        if (!unfolded)
            goto done;
        if (strstr(unfolded, "=?"))
            decoded = g_mime_utils_header_decode_text(mp_opts, unfolded);
    } else {
        /* raw 8-bit: GMime reads it with the fallback charsets */
        char *u = g_mime_utils_header_unfold(value);
        unfolded = u ? strdup(u) : NULL;
        g_free(u);
        if (!unfolded)
            goto done;
        decoded = g_mime_utils_header_decode_text(mp_opts, unfolded);
    }
    clean = mail_parse_clean_line(decoded ? decoded : unfolded);
    if (!clean)
        goto done;
    mp_cut_utf8(clean, MAIL_MAX_HEADER_VALUE);
    if (mp_set_str(headers, lname, clean) < 0)
        goto done;

    if (strcmp(lname, "subject") == 0) {
        if (mp_set_str(msg, "subject", clean) < 0)
            goto done;
    } else if (strcmp(lname, "from") == 0) {
        if (mp_add_addresses(msg, "from", unfolded, 1) < 0)
            goto done;
    } else if (strcmp(lname, "to") == 0 || strcmp(lname, "cc") == 0) {
        if (mp_add_addresses(msg, lname, unfolded, 0) < 0)
            goto done;
    } else if (strcmp(lname, "reply-to") == 0) {
        if (mp_add_addresses(msg, "reply_to", unfolded, 1) < 0)
            goto done;
    } else if (strcmp(lname, "date") == 0) {
        if (mp_set_date(msg, unfolded) < 0)
            goto done;
    } else if (strcmp(lname, "message-id") == 0) {
        char *id = mp_message_id(unfolded);
        int r = id ? mp_set_str(msg, "message_id", id) : 0;
        free(id);
        if (r < 0)
            goto done;
    } else if (strcmp(lname, "in-reply-to") == 0) {
        if (mp_set_references(msg, "in_reply_to", unfolded, 1) < 0)
            goto done;
    } else if (strcmp(lname, "references") == 0) {
        if (mp_set_references(msg, "references", unfolded, 0) < 0)
            goto done;
    } else if (strcmp(lname, "return-path") == 0) {
        char *rp = mail_parse_clean_line(clean);
        if (!rp)
            goto done;
        size_t l = strlen(rp);
        if (l >= 2 && rp[0] == '<' && rp[l - 1] == '>') {
            memmove(rp, rp + 1, l - 2);
            rp[l - 2] = '\0';
        }
        mp_lower(rp);
        int r = mp_set_str(msg, "return_path", rp);
        free(rp);
        if (r < 0)
            goto done;
    }
    rc = 0;
done:
    free(unfolded);
    g_free(decoded);
    free(clean);
    return rc;
}

int mail_parse_set_text(json_t *msg, const char *field, const char *text, size_t len,
                        const struct mail_limits *lim)
{
    struct mail_limits dl;
    if (!lim) {
        mail_parse_limits_default(&dl);
        lim = &dl;
    }
    buf_t out;
    buf_init(&out, 0);
    int rc = -1;
    if (mp_text_append(&out, text ? text : "", text ? len : 0, lim->max_text_bytes) < 0)
        goto done;
    /* trailing blank space carries nothing */
    while (out.len > 0 && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == ' ' ||
                           out.data[out.len - 1] == '\t'))
        out.len--;
    json_t *v = json_stringn(out.data ? out.data : "", out.len);
    if (!v || json_object_set_new(msg, field, v) < 0)
        goto done;
    rc = 0;
done:
    buf_free(&out);
    return rc;
}

int mail_parse_add_attachment(json_t *msg, const char *name, const char *type,
                              const void *data, size_t size, const struct mail_limits *lim)
{
    struct mail_limits dl;
    if (!lim) {
        mail_parse_limits_default(&dl);
        lim = &dl;
    }
    int rc = -1;
    char *n = mail_parse_clean_line(name ? name : "");
    char *t = mail_parse_clean_line(type ? type : "application/octet-stream");
    char *b64 = NULL;
    json_t *a = NULL;
    if (!n || !t)
        goto done;
    mp_lower(t);
    if (!*t) {
        free(t);
        t = util_strdup("application/octet-stream");
        if (!t)
            goto done;
    }
    a = json_pack("{s:s, s:s, s:I}", "name", n, "type", t, "size", (json_int_t)size);
    if (!a)
        goto done;
    if (lim->keep_attachments && data && size <= lim->max_attachment_bytes) {
        b64 = crypto_b64_encode(data, size, 0);
        if (!b64 || mp_set_str(a, "content", b64) < 0)
            goto done;
    }
    json_t *arr = json_object_get(msg, "attachments");
    if (!json_is_array(arr) || json_array_append(arr, a) < 0)
        goto done;
    rc = 0;
done:
    json_decref(a);
    free(b64);
    free(n);
    free(t);
    return rc;
}

int mail_parse_finish(json_t *msg, const struct mail_limits *lim)
{
    struct mail_limits dl;
    if (!lim) {
        mail_parse_limits_default(&dl);
        lim = &dl;
    }
    const char *body = json_string_value(json_object_get(msg, "body"));
    size_t blen = json_string_length(json_object_get(msg, "body"));
    const char *html = json_string_value(json_object_get(msg, "html"));
    if ((!body || blen == 0) && html && *html) {
        size_t tl = 0;
        char *text = mail_html2text(html, json_string_length(json_object_get(msg, "html")),
                                    lim->max_text_bytes, &tl);
        if (!text)
            return -1;
        int r = mail_parse_set_text(msg, "body", text, tl, lim);
        free(text);
        if (r < 0)
            return -1;
    }
    const char *stripped = json_string_value(json_object_get(msg, "body_stripped"));
    if (!stripped || !*stripped) {
        json_t *b = json_object_get(msg, "body");
        size_t sl = 0;
        char *s = mail_reply_strip(json_string_value(b) ? json_string_value(b) : "",
                                   json_string_length(b), &sl);
        if (!s)
            return -1;
        int r = mail_parse_set_text(msg, "body_stripped", s, sl, lim);
        free(s);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* ---- Raw messages ------------------------------------------------------------------------ */

#define MP_MAX_BOUNDARIES 256

struct mp_bound {
    const char *p;
    size_t n;
};

/* Case-insensitive search for needle in s[0..n). */
static const char *mp_find_ci(const char *s, size_t n, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= n; i++)
        if (strncasecmp(s + i, needle, nl) == 0)
            return s + i;
    return NULL;
}

/* The boundary parameter of a Content-Type value. 1 found (*b points into v), 0 absent,
 * -1 present in a form this reader does not follow (RFC 2231, escapes). */
static int mp_boundary_of(const char *v, size_t n, struct mp_bound *b)
{
    const char *k = mp_find_ci(v, n, "boundary");
    if (!k)
        return 0;
    const char *p = k + 8, *end = v + n;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p >= end || *p != '=')
        return -1;
    p++;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    const char *s = p;
    if (p < end && *p == '"') {
        s = ++p;
        while (p < end && *p != '"' && *p != '\\' && *p != '\r' && *p != '\n')
            p++;
        if (p >= end || *p != '"')
            return -1;
    } else {
        while (p < end && *p != ';' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            p++;
    }
    if (p == s)
        return -1;
    b->p = s;
    b->n = (size_t)(p - s);
    return 1;
}

static int mp_all_lwsp(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t')
            return 0;
    return 1;
}

void mail_parse_prescan(const char *d, size_t n, size_t max_header_lines,
                        struct mail_prescan *out)
{
    struct mp_bound bounds[MP_MAX_BOUNDARIES];
    size_t nb = 0;
    int any_dash = 0; /* a boundary could not be read: every "--" line may open a part */
    int in_header = 1, message_next = 0;
    memset(out, 0, sizeof *out);
    out->header_cut = n;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(d + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - d) : n;
        size_t l = end - i;
        if (l > 0 && d[end - 1] == '\r')
            l--;
        const char *line = d + i;
        if (l == 0) {
            /* an embedded message's own header block follows its part's headers */
            in_header = message_next;
            message_next = 0;
        } else if (l >= 2 && line[0] == '-' && line[1] == '-') {
            const char *rest = line + 2;
            size_t rl = l - 2;
            int open = 0;
            if (any_dash) {
                open = !(rl >= 2 && rest[rl - 1] == '-' && rest[rl - 2] == '-');
            } else {
                for (size_t k = 0; k < nb && !open; k++)
                    if (rl >= bounds[k].n && memcmp(rest, bounds[k].p, bounds[k].n) == 0 &&
                        mp_all_lwsp(rest + bounds[k].n, rl - bounds[k].n))
                        open = 1;
            }
            if (open)
                out->parts++;
            in_header = 1;
            message_next = 0;
        } else if (in_header && line[0] != ' ' && line[0] != '\t') {
            out->header_lines++;
            if (out->header_lines == max_header_lines + 1)
                out->header_cut = i;
            if (l >= 13 && strncasecmp(line, "content-type:", 13) == 0) {
                /* the value with its continuation lines, up to 4 KiB */
                size_t vend = end;
                while (vend < n && vend + 1 < n && (d[vend + 1] == ' ' || d[vend + 1] == '\t') &&
                       vend - i < 4096) {
                    const char *nl2 = memchr(d + vend + 1, '\n', n - vend - 1);
                    vend = nl2 ? (size_t)(nl2 - d) : n;
                }
                const char *v = line + 13;
                size_t vn = vend - i - 13;
                if (mp_find_ci(v, vn < 64 ? vn : 64, "multipart/")) {
                    out->containers++;
                    struct mp_bound b;
                    int r = mp_boundary_of(v, vn, &b);
                    if (r < 0 || (r > 0 && nb == MP_MAX_BOUNDARIES))
                        any_dash = 1;
                    else if (r > 0)
                        bounds[nb++] = b;
                } else if (mp_find_ci(v, vn < 64 ? vn : 64, "message/rfc822") ||
                           mp_find_ci(v, vn < 64 ? vn : 64, "message/global")) {
                    out->containers++;
                    message_next = 1;
                }
            }
        }
        i = end + 1;
    }
}

struct mp_walk {
    const struct mail_limits *lim;
    json_t *msg;
    size_t parts;
    size_t depth;
    buf_t plain;
    buf_t html;
    int have_plain, have_html;
    int oom;
};

static void mp_count(struct mp_walk *w, GMimeObject *obj, size_t depth)
{
    if (!obj || w->parts > w->lim->max_parts || w->depth > w->lim->max_depth)
        return;
    w->parts++;
    if (depth > w->depth)
        w->depth = depth;
    if (GMIME_IS_MULTIPART(obj)) {
        int n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
        for (int i = 0; i < n; i++)
            mp_count(w, g_mime_multipart_get_part(GMIME_MULTIPART(obj), i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m)
            mp_count(w, g_mime_message_get_mime_part(m), depth + 1);
    }
}

/* Decoded content of a leaf part into a new GByteArray-backed stream; NULL on failure. */
static GMimeStream *mp_decode(GMimePart *part)
{
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    GMimeStream *mem = g_mime_stream_mem_new();
    if (dw && g_mime_data_wrapper_write_to_stream(dw, mem) < 0) {
        g_object_unref(mem);
        return NULL;
    }
    return mem;
}

/* RFC 3676 format=flowed: soft line breaks (a line ending in a space) are joined with the
 * next line of the same quote depth; space-stuffing is removed. */
static int mp_unflow(buf_t *out, const char *s, size_t n, int delsp)
{
    size_t i = 0;
    int open = 0;      /* a flowed line is waiting for its continuation */
    size_t open_depth = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) : n;
        size_t len = end - i;
        if (len > 0 && s[i + len - 1] == '\r')
            len--;
        const char *l = s + i;
        size_t depth = 0;
        while (depth < len && l[depth] == '>')
            depth++;
        const char *rest = l + depth;
        size_t rl = len - depth;
        if (rl > 0 && rest[0] == ' ')
            rest++, rl--;
        if (open && depth != open_depth) {
            if (buf_putc(out, '\n') < 0)
                return -1;
            open = 0;
        }
        if (!open && depth > 0) {
            for (size_t k = 0; k < depth; k++)
                if (buf_putc(out, '>') < 0)
                    return -1;
            if (buf_putc(out, ' ') < 0)
                return -1;
        }
        int sig = rl == 3 && memcmp(rest, "-- ", 3) == 0;
        int flowed = !sig && rl > 0 && rest[rl - 1] == ' ';
        size_t take = (flowed && delsp) ? rl - 1 : rl;
        if (buf_append(out, rest, take) < 0)
            return -1;
        if (flowed) {
            open = 1;
            open_depth = depth;
        } else {
            open = 0;
            if (nl && buf_putc(out, '\n') < 0)
                return -1;
        }
        i = nl ? end + 1 : n;
    }
    return 0;
}

/* Appends a text part, converted to UTF-8, to the plain or HTML text. */
static void mp_take_text(struct mp_walk *w, GMimeObject *obj, int html)
{
    buf_t *dst = html ? &w->html : &w->plain;
    size_t cap = w->lim->max_text_bytes;
    if (cap && dst->len >= cap)
        return;
    GMimeStream *mem = mp_decode(GMIME_PART(obj));
    if (!mem)
        return;
    GByteArray *arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    const char *data = arr && arr->data ? (const char *)arr->data : "";
    size_t len = arr ? arr->len : 0;
    /* more than the cap can never be kept; a little slack for multi-byte expansion */
    if (cap && len > cap + 4)
        len = cap + 4;
    const char *charset = g_mime_object_get_content_type_parameter(obj, "charset");
    size_t ul = 0;
    char *u = mail_parse_to_utf8(charset, data, len, &ul);
    if (!u) {
        w->oom = 1;
        goto done;
    }
    const char *fmt = g_mime_object_get_content_type_parameter(obj, "format");
    buf_t flowed;
    buf_init(&flowed, 0);
    if (!html && fmt && strcasecmp(fmt, "flowed") == 0) {
        const char *delsp = g_mime_object_get_content_type_parameter(obj, "delsp");
        if (mp_unflow(&flowed, u, ul, delsp && strcasecmp(delsp, "yes") == 0) < 0) {
            w->oom = 1;
            buf_free(&flowed);
            free(u);
            goto done;
        }
        free(u);
        ul = flowed.len;
        u = buf_steal(&flowed);
        if (!u) {
            w->oom = 1;
            goto done;
        }
    }
    /* several inline parts (text around inline images) read as one text */
    if (dst->len > 0 && buf_append(dst, html ? "\n" : "\n\n", html ? 1 : 2) < 0)
        w->oom = 1;
    else if (buf_append(dst, u, ul) < 0)
        w->oom = 1;
    if (html)
        w->have_html = 1;
    else
        w->have_plain = 1;
    free(u);
done:
    g_object_unref(mem);
}

static void mp_take_attachment(struct mp_walk *w, GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    const char *name = NULL;
    GMimeStream *mem = NULL;
    size_t size = 0;
    const void *data = NULL;

    if (GMIME_IS_PART(obj)) {
        name = g_mime_part_get_filename(GMIME_PART(obj));
        if (w->lim->keep_attachments) {
            mem = mp_decode(GMIME_PART(obj));
        } else {
            GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(obj));
            GMimeStream *null = g_mime_stream_null_new();
            if (dw)
                g_mime_data_wrapper_write_to_stream(dw, null);
            size = GMIME_STREAM_NULL(null)->written;
            g_object_unref(null);
        }
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        name = g_mime_object_get_content_disposition_parameter(obj, "filename");
        if (!name)
            name = g_mime_object_get_content_type_parameter(obj, "name");
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m) {
            if (w->lim->keep_attachments) {
                mem = g_mime_stream_mem_new();
                g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, mem);
            } else {
                GMimeStream *null = g_mime_stream_null_new();
                g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, null);
                size = GMIME_STREAM_NULL(null)->written;
                g_object_unref(null);
            }
        }
    }
    if (mem) {
        GByteArray *arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
        data = arr ? arr->data : NULL;
        size = arr ? arr->len : 0;
    }
    if (mail_parse_add_attachment(w->msg, name, type, data, size, w->lim) < 0)
        w->oom = 1;
    if (mem)
        g_object_unref(mem);
    g_free(type);
}

static void mp_collect(struct mp_walk *w, GMimeObject *obj, size_t depth)
{
    if (!obj || w->oom || depth > w->lim->max_depth)
        return;
    if (GMIME_IS_MULTIPART(obj)) {
        int n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
        for (int i = 0; i < n && !w->oom; i++)
            mp_collect(w, g_mime_multipart_get_part(GMIME_MULTIPART(obj), i), depth + 1);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        /* a forwarded or bounced message is an attachment, not this message's text */
        mp_take_attachment(w, obj);
        return;
    }
    if (!GMIME_IS_PART(obj))
        return;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *disp = g_mime_object_get_disposition(obj);
    const char *filename = g_mime_part_get_filename(GMIME_PART(obj));
    int attached = (disp && strcasecmp(disp, "attachment") == 0) || (filename && *filename);
    if (!attached && ct && g_mime_content_type_is_type(ct, "text", "plain"))
        mp_take_text(w, obj, 0);
    else if (!attached && ct && g_mime_content_type_is_type(ct, "text", "html"))
        mp_take_text(w, obj, 1);
    else
        mp_take_attachment(w, obj);
}

/* Records every header of a header list. */
static int mp_headers_from(json_t *msg, GMimeObject *obj)
{
    GMimeHeaderList *hl = obj ? g_mime_object_get_header_list(obj) : NULL;
    int n = hl ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *raw = g_mime_header_get_raw_value(h);
        if (mail_parse_add_header(msg, g_mime_header_get_name(h), raw ? raw : "") < 0)
            return -1;
    }
    return 0;
}

static GMimeMessage *mp_construct(const char *data, size_t len)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeMessage *m = g_mime_parser_construct_message(parser, mp_opts);
    g_object_unref(parser);
    g_object_unref(stream);
    return m;
}

int mail_parse_header_block(json_t *msg, const char *data, size_t len,
                            const struct mail_limits *lim)
{
    mail_parse_init();
    struct mail_limits dl;
    if (!lim) {
        mail_parse_limits_default(&dl);
        lim = &dl;
    }
    if (len > lim->max_bytes)
        len = lim->max_bytes;
    struct mail_prescan ps;
    mail_parse_prescan(data, len, MAIL_MAX_HEADER_LINES, &ps);
    len = ps.header_cut; /* a flood past the cap is dropped; the first lines are enough */
    /* the block ends where a body would start */
    buf_t b;
    buf_init(&b, 0);
    if (buf_append(&b, data, len) < 0 || buf_puts(&b, "\r\n\r\n") < 0) {
        buf_free(&b);
        return -1;
    }
    GMimeMessage *m = mp_construct(b.data, b.len);
    buf_free(&b);
    if (!m)
        return 0;
    int rc = mp_headers_from(msg, GMIME_OBJECT(m));
    if (rc == 0)
        rc = mp_headers_from(msg, g_mime_message_get_mime_part(m));
    g_object_unref(m);
    return rc;
}

enum mail_result mail_parse_message(const char *data, size_t len, const struct mail_limits *lim,
                                    json_t **msg, char **err)
{
    mail_parse_init();
    struct mail_limits dl;
    if (!lim) {
        mail_parse_limits_default(&dl);
        lim = &dl;
    }
    *msg = NULL;
    *err = NULL;
    enum mail_result res = MAIL_TEMPFAIL;
    GMimeMessage *m = NULL;
    json_t *out = NULL;
    struct mp_walk w;
    memset(&w, 0, sizeof w);
    buf_init(&w.plain, 0);
    buf_init(&w.html, 0);

    if (len > lim->max_bytes) {
        *err = util_asprintf("message of %zu bytes is larger than the limit of %zu", len,
                             lim->max_bytes);
        res = MAIL_REJECT;
        goto done;
    }
    /* an mbox "From sender date" line from an MTA pipe */
    if (len >= 5 && memcmp(data, "From ", 5) == 0) {
        const char *nl = memchr(data, '\n', len);
        size_t skip = nl ? (size_t)(nl - data) + 1 : len;
        data += skip;
        len -= skip;
    }
    struct mail_prescan ps;
    mail_parse_prescan(data, len, MAIL_MAX_HEADER_LINES, &ps);
    if (ps.containers > lim->max_parts) {
        *err = util_asprintf("more than %zu MIME parts (%zu multipart or message containers)",
                             lim->max_parts, ps.containers);
        res = MAIL_REJECT;
        goto done;
    }
    if (ps.parts >= lim->max_parts) {
        /* each delimiter opens a part, and the message itself is one */
        *err = util_asprintf("more than %zu MIME parts", lim->max_parts);
        res = MAIL_REJECT;
        goto done;
    }
    if (ps.header_lines > MAIL_MAX_HEADER_LINES) {
        *err = util_asprintf("more than %d header lines (%zu)", MAIL_MAX_HEADER_LINES,
                             ps.header_lines);
        res = MAIL_REJECT;
        goto done;
    }
    m = mp_construct(data, len);
    if (!m) {
        *err = util_asprintf("not a mail message: no header block");
        res = MAIL_REJECT;
        goto done;
    }
    GMimeObject *top = g_mime_message_get_mime_part(m);
    w.lim = lim;
    mp_count(&w, top, 0);
    if (w.depth > lim->max_depth) {
        *err = util_asprintf("MIME nesting deeper than the limit of %zu", lim->max_depth);
        res = MAIL_REJECT;
        goto done;
    }
    if (w.parts > lim->max_parts) {
        *err = util_asprintf("more than %zu MIME parts", lim->max_parts);
        res = MAIL_REJECT;
        goto done;
    }
    out = mail_parse_msg_new();
    if (!out)
        goto done;
    if (mp_headers_from(out, GMIME_OBJECT(m)) < 0 || mp_headers_from(out, top) < 0)
        goto done;
    w.msg = out;
    mp_collect(&w, top, 0);
    if (w.oom)
        goto done;
    if (w.have_plain &&
        mail_parse_set_text(out, "body", w.plain.data ? w.plain.data : "", w.plain.len, lim) < 0)
        goto done;
    if (w.have_html &&
        mail_parse_set_text(out, "html", w.html.data ? w.html.data : "", w.html.len, lim) < 0)
        goto done;
    if (mail_parse_finish(out, lim) < 0)
        goto done;
    *msg = out;
    out = NULL;
    res = MAIL_OK;
done:
    if (res == MAIL_TEMPFAIL && !*err)
        *err = util_asprintf("out of memory while parsing the message");
    json_decref(out);
    if (m)
        g_object_unref(m);
    buf_free(&w.plain);
    buf_free(&w.html);
    return res;
}
