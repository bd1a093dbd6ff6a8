/* html2text: HTML body → readable text in one linear pass; see html2text.h.
 * The pass keeps a tiny state (pending line breaks, pending space, quote depth, <pre> depth,
 * the open link) and never backtracks, so cost is linear in the input whatever it holds. */
#include "mail/html2text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "mail/parse.h"

#define H2T_MAX_HREF 2048

struct h2t_out {
    buf_t b;
    size_t max;
    int full;          /* the cap was reached (or memory ran out): stop writing */
    int oom;
    int pending_nl;    /* line breaks owed before the next text (0..2) */
    int pending_space; /* a space owed before the next text */
    int quote;         /* open <blockquote> depth */
    int pre;           /* open <pre> depth */
    int line_start;    /* nothing but the quote prefix written on the current line */
    /* the open <a href>: where its text starts in b, and its target */
    int in_link;
    size_t link_start;
    char href[H2T_MAX_HREF + 1];
};

static void h2t_put(struct h2t_out *o, const char *p, size_t n)
{
    if (o->full)
        return;
    int cut = 0;
    if (o->max && o->b.len + n > o->max) {
        /* keep what fits; a split character is trimmed at the end */
        n = o->max - o->b.len;
        cut = 1;
    }
    if (buf_append(&o->b, p, n) < 0) {
        o->full = 1;
        o->oom = 1;
        return;
    }
    if (cut)
        o->full = 1;
}

/* Writes owed line breaks or space, then the quote prefix when a new line starts. */
static void h2t_flush(struct h2t_out *o)
{
    if (o->b.len == 0) {
        o->pending_nl = 0;
        o->pending_space = 0;
    }
    if (o->pending_nl > 0) {
        for (int i = 0; i < o->pending_nl; i++)
            h2t_put(o, "\n", 1);
        o->pending_nl = 0;
        o->pending_space = 0;
        o->line_start = 1;
    } else if (o->pending_space && !o->line_start) {
        h2t_put(o, " ", 1);
    }
    o->pending_space = 0;
    if (o->line_start) {
        for (int i = 0; i < o->quote && i < 16; i++)
            h2t_put(o, "> ", 2);
        o->line_start = 0;
    }
}

/* Text content: whitespace collapses outside <pre>; inside it, it is kept as is. */
static void h2t_text(struct h2t_out *o, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !o->full) {
        unsigned char c = (unsigned char)p[i];
        if (o->pre) {
            if (c == '\r') {
                i++;
                continue;
            }
            if (c == '\n') {
                h2t_flush(o);
                h2t_put(o, "\n", 1);
                o->line_start = 1;
                i++;
                continue;
            }
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            o->pending_space = 1;
            i++;
            continue;
        } else if (c == 0xC2 && i + 1 < n && (unsigned char)p[i + 1] == 0xA0) {
            /* no-break space: a plain space for readers */
            o->pending_space = 1;
            i += 2;
            continue;
        }
        /* copy a run of ordinary bytes at once */
        size_t j = i + 1;
        while (j < n) {
            unsigned char d = (unsigned char)p[j];
            if (d == ' ' || d == '\t' || d == '\n' || d == '\r' || d == '\f' || d == 0xC2)
                break;
            j++;
        }
        h2t_flush(o);
        h2t_put(o, p + i, j - i);
        i = j;
    }
}

static void h2t_break(struct h2t_out *o, int n)
{
    if (o->pending_nl < n)
        o->pending_nl = n;
}

struct h2t_entity {
    const char *name;
    uint32_t cp;
};

/* The named references mail actually uses (HTML 4 Latin-1, punctuation, symbols). */
static const struct h2t_entity h2t_entities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
    {"nbsp", 0xA0}, {"iexcl", 0xA1}, {"cent", 0xA2}, {"pound", 0xA3}, {"curren", 0xA4},
    {"yen", 0xA5}, {"brvbar", 0xA6}, {"sect", 0xA7}, {"uml", 0xA8}, {"copy", 0xA9},
    {"ordf", 0xAA}, {"laquo", 0xAB}, {"not", 0xAC}, {"shy", 0xAD}, {"reg", 0xAE},
    {"macr", 0xAF}, {"deg", 0xB0}, {"plusmn", 0xB1}, {"sup2", 0xB2}, {"sup3", 0xB3},
    {"acute", 0xB4}, {"micro", 0xB5}, {"para", 0xB6}, {"middot", 0xB7}, {"cedil", 0xB8},
    {"sup1", 0xB9}, {"ordm", 0xBA}, {"raquo", 0xBB}, {"frac14", 0xBC}, {"frac12", 0xBD},
    {"frac34", 0xBE}, {"iquest", 0xBF}, {"Agrave", 0xC0}, {"Aacute", 0xC1}, {"Acirc", 0xC2},
    {"Atilde", 0xC3}, {"Auml", 0xC4}, {"Aring", 0xC5}, {"AElig", 0xC6}, {"Ccedil", 0xC7},
    {"Egrave", 0xC8}, {"Eacute", 0xC9}, {"Ecirc", 0xCA}, {"Euml", 0xCB}, {"Igrave", 0xCC},
    {"Iacute", 0xCD}, {"Icirc", 0xCE}, {"Iuml", 0xCF}, {"ETH", 0xD0}, {"Ntilde", 0xD1},
    {"Ograve", 0xD2}, {"Oacute", 0xD3}, {"Ocirc", 0xD4}, {"Otilde", 0xD5}, {"Ouml", 0xD6},
    {"times", 0xD7}, {"Oslash", 0xD8}, {"Ugrave", 0xD9}, {"Uacute", 0xDA}, {"Ucirc", 0xDB},
    {"Uuml", 0xDC}, {"Yacute", 0xDD}, {"THORN", 0xDE}, {"szlig", 0xDF}, {"agrave", 0xE0},
    {"aacute", 0xE1}, {"acirc", 0xE2}, {"atilde", 0xE3}, {"auml", 0xE4}, {"aring", 0xE5},
    {"aelig", 0xE6}, {"ccedil", 0xE7}, {"egrave", 0xE8}, {"eacute", 0xE9}, {"ecirc", 0xEA},
    {"euml", 0xEB}, {"igrave", 0xEC}, {"iacute", 0xED}, {"icirc", 0xEE}, {"iuml", 0xEF},
    {"eth", 0xF0}, {"ntilde", 0xF1}, {"ograve", 0xF2}, {"oacute", 0xF3}, {"ocirc", 0xF4},
    {"otilde", 0xF5}, {"ouml", 0xF6}, {"divide", 0xF7}, {"oslash", 0xF8}, {"ugrave", 0xF9},
    {"uacute", 0xFA}, {"ucirc", 0xFB}, {"uuml", 0xFC}, {"yacute", 0xFD}, {"thorn", 0xFE},
    {"yuml", 0xFF}, {"OElig", 0x152}, {"oelig", 0x153}, {"Scaron", 0x160}, {"scaron", 0x161},
    {"Yuml", 0x178}, {"fnof", 0x192}, {"circ", 0x2C6}, {"tilde", 0x2DC}, {"ensp", 0x2002},
    {"emsp", 0x2003}, {"thinsp", 0x2009}, {"zwnj", 0x200C}, {"zwj", 0x200D},
    {"lrm", 0x200E}, {"rlm", 0x200F}, {"ndash", 0x2013}, {"mdash", 0x2014},
    {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"sbquo", 0x201A}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"bdquo", 0x201E}, {"dagger", 0x2020}, {"Dagger", 0x2021},
    {"bull", 0x2022}, {"hellip", 0x2026}, {"permil", 0x2030}, {"prime", 0x2032},
    {"lsaquo", 0x2039}, {"rsaquo", 0x203A}, {"euro", 0x20AC}, {"trade", 0x2122},
    {"larr", 0x2190}, {"uarr", 0x2191}, {"rarr", 0x2192}, {"darr", 0x2193}, {"minus", 0x2212},
    {"le", 0x2264}, {"ge", 0x2265}, {"ne", 0x2260}, {"infin", 0x221E}, {"check", 0x2713},
};

/* Legacy references browsers accept without the closing ';'. */
static const char *const h2t_legacy[] = {"amp", "lt", "gt", "quot", "nbsp"};

/* Decodes a character reference at s[0] == '&'. Returns input bytes used (0 when s does not
 * start a reference) and the UTF-8 bytes in out/out_n. */
static size_t h2t_entity(const char *s, size_t n, char out[4], size_t *out_n)
{
    if (n < 3 || s[0] != '&')
        return 0;
    if (s[1] == '#') {
        size_t i = 2;
        int hex = 0;
        if (i < n && (s[i] == 'x' || s[i] == 'X')) {
            hex = 1;
            i++;
        }
        uint32_t cp = 0;
        size_t digits = 0;
        while (i < n && digits < 8) {
            char c = s[i];
            uint32_t v;
            if (c >= '0' && c <= '9')
                v = (uint32_t)(c - '0');
            else if (hex && c >= 'a' && c <= 'f')
                v = (uint32_t)(c - 'a' + 10);
            else if (hex && c >= 'A' && c <= 'F')
                v = (uint32_t)(c - 'A' + 10);
            else
                break;
            cp = cp * (hex ? 16u : 10u) + v;
            digits++;
            i++;
        }
        if (digits == 0)
            return 0;
        if (i < n && s[i] == ';')
            i++;
        /* the C1 range as windows-1252, as browsers do */
        static const uint16_t c1[32] = {
            0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160,
            0x2039, 0x152, 0x8D, 0x17D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
            0x2013, 0x2014, 0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178};
        if (cp >= 0x80 && cp <= 0x9F)
            cp = c1[cp - 0x80];
        *out_n = mail_parse_utf8_put(cp, out);
        return i;
    }
    size_t i = 1;
    while (i < n && i < 10 && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                               (s[i] >= '0' && s[i] <= '9')))
        i++;
    size_t nlen = i - 1;
    if (nlen == 0)
        return 0;
    int semi = i < n && s[i] == ';';
    if (semi) {
        for (size_t k = 0; k < sizeof h2t_entities / sizeof h2t_entities[0]; k++) {
            const char *name = h2t_entities[k].name;
            if (strlen(name) == nlen && memcmp(name, s + 1, nlen) == 0) {
                *out_n = mail_parse_utf8_put(h2t_entities[k].cp, out);
                return i + 1;
            }
        }
    }
    for (size_t k = 0; k < sizeof h2t_legacy / sizeof h2t_legacy[0]; k++) {
        size_t l = strlen(h2t_legacy[k]);
        if (nlen >= l && memcmp(h2t_legacy[k], s + 1, l) == 0) {
            for (size_t e = 0; e < sizeof h2t_entities / sizeof h2t_entities[0]; e++)
                if (strcmp(h2t_entities[e].name, h2t_legacy[k]) == 0) {
                    *out_n = mail_parse_utf8_put(h2t_entities[e].cp, out);
                    break;
                }
            return 1 + l + (semi && nlen == l ? 1 : 0);
        }
    }
    return 0;
}

/* Text between tags: entities decoded on the way. */
static void h2t_chars(struct h2t_out *o, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !o->full) {
        const char *amp = memchr(p + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - p) : n;
        if (end > i)
            h2t_text(o, p + i, end - i);
        if (!amp)
            break;
        char u[4];
        size_t un = 0;
        size_t used = h2t_entity(p + end, n - end, u, &un);
        if (used == 0) {
            h2t_text(o, "&", 1);
            i = end + 1;
        } else {
            h2t_text(o, u, un);
            i = end + used;
        }
    }
}

enum h2t_kind { H2T_INLINE, H2T_LINE, H2T_PARA, H2T_BR, H2T_LI, H2T_CELL, H2T_SKIP,
                H2T_QUOTE, H2T_PRE, H2T_LINK };

struct h2t_tag {
    const char *name;
    enum h2t_kind kind;
};

static const struct h2t_tag h2t_tags[] = {
    {"br", H2T_BR}, {"p", H2T_PARA}, {"div", H2T_LINE}, {"li", H2T_LI},
    {"h1", H2T_PARA}, {"h2", H2T_PARA}, {"h3", H2T_PARA}, {"h4", H2T_PARA},
    {"h5", H2T_PARA}, {"h6", H2T_PARA}, {"ul", H2T_PARA}, {"ol", H2T_PARA},
    {"dl", H2T_PARA}, {"table", H2T_PARA}, {"hr", H2T_PARA}, {"address", H2T_PARA},
    {"figure", H2T_PARA}, {"tr", H2T_LINE}, {"dt", H2T_LINE}, {"dd", H2T_LINE},
    {"section", H2T_LINE}, {"article", H2T_LINE}, {"header", H2T_LINE},
    {"footer", H2T_LINE}, {"nav", H2T_LINE}, {"form", H2T_LINE}, {"center", H2T_LINE},
    {"caption", H2T_LINE}, {"main", H2T_LINE}, {"aside", H2T_LINE},
    {"fieldset", H2T_LINE}, {"legend", H2T_LINE}, {"body", H2T_LINE},
    {"tbody", H2T_LINE}, {"thead", H2T_LINE}, {"tfoot", H2T_LINE},
    {"td", H2T_CELL}, {"th", H2T_CELL},
    {"script", H2T_SKIP}, {"style", H2T_SKIP}, {"title", H2T_SKIP},
    {"template", H2T_SKIP}, {"head", H2T_INLINE},
    {"blockquote", H2T_QUOTE}, {"pre", H2T_PRE}, {"a", H2T_LINK},
};

static enum h2t_kind h2t_kind_of(const char *name)
{
    for (size_t i = 0; i < sizeof h2t_tags / sizeof h2t_tags[0]; i++)
        if (strcmp(h2t_tags[i].name, name) == 0)
            return h2t_tags[i].kind;
    return H2T_INLINE;
}

static int h2t_is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int h2t_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Finds the end of a tag starting at s[0] == '<', honouring quoted attribute values.
 * Returns the index just past '>', or n when the tag never closes. */
static size_t h2t_tag_end(const char *s, size_t n)
{
    char q = 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (q) {
            if (c == q)
                q = 0;
        } else if (c == '"' || c == '\'') {
            /* only quotes that open an attribute value count */
            if (i > 0 && s[i - 1] == '=')
                q = c;
        } else if (c == '>') {
            return i + 1;
        }
    }
    return n;
}

/* Copies the href attribute of the tag text s[0..n) (entities decoded) into out. */
static void h2t_href(const char *s, size_t n, char *out, size_t outsz)
{
    out[0] = '\0';
    for (size_t i = 0; i + 5 < n; i++) {
        if (!h2t_is_space(s[i]) || strncasecmp(s + i + 1, "href", 4) != 0)
            continue;
        size_t j = i + 5;
        while (j < n && h2t_is_space(s[j]))
            j++;
        if (j >= n || s[j] != '=')
            continue;
        j++;
        while (j < n && h2t_is_space(s[j]))
            j++;
        char q = 0;
        if (j < n && (s[j] == '"' || s[j] == '\''))
            q = s[j++];
        size_t k = 0;
        while (j < n && k + 4 < outsz) {
            char c = s[j];
            if (q ? c == q : (h2t_is_space(c) || c == '>'))
                break;
            if (c == '&') {
                char u[4];
                size_t un = 0, used = h2t_entity(s + j, n - j, u, &un);
                if (used > 0) {
                    memcpy(out + k, u, un);
                    k += un;
                    j += used;
                    continue;
                }
            }
            if ((unsigned char)c >= 0x20)
                out[k++] = c;
            j++;
        }
        out[k] = '\0';
        return;
    }
}

/* Closes an open link: "text <url>" unless the text already is the URL. */
static void h2t_link_close(struct h2t_out *o)
{
    if (!o->in_link)
        return;
    o->in_link = 0;
    const char *href = o->href;
    if (!href[0] || href[0] == '#' || strncasecmp(href, "javascript:", 11) == 0)
        return;
    if (o->link_start > o->b.len)
        return;
    const char *t = o->b.data ? o->b.data + o->link_start : "";
    size_t tl = o->b.len - o->link_start;
    while (tl > 0 && h2t_is_space(*t)) {
        t++;
        tl--;
    }
    while (tl > 0 && h2t_is_space(t[tl - 1]))
        tl--;
    if (tl == 0)
        return; /* image-only links (logos, tracking) add nothing readable */
    const char *cmp = href;
    if (strncasecmp(cmp, "mailto:", 7) == 0)
        cmp += 7;
    if (strlen(cmp) == tl && strncasecmp(cmp, t, tl) == 0)
        return;
    o->pending_space = 1;
    h2t_flush(o);
    h2t_put(o, "<", 1);
    h2t_put(o, href, strlen(href));
    h2t_put(o, ">", 1);
}

/* Skips the content of script/style/title up to its closing tag; returns the new index. */
static size_t h2t_skip_to_close(const char *s, size_t n, size_t i, const char *name)
{
    size_t nl = strlen(name);
    while (i < n) {
        const char *lt = memchr(s + i, '<', n - i);
        if (!lt)
            return n;
        size_t k = (size_t)(lt - s);
        if (k + 2 + nl <= n && s[k + 1] == '/' && strncasecmp(s + k + 2, name, nl) == 0 &&
            (k + 2 + nl == n || !h2t_is_alpha(s[k + 2 + nl]))) {
            return k + h2t_tag_end(s + k, n - k);
        }
        i = k + 1;
    }
    return n;
}

char *mail_html2text(const char *html, size_t len, size_t max_out, size_t *out_len)
{
    struct h2t_out o;
    memset(&o, 0, sizeof o);
    buf_init(&o.b, 0);
    o.max = max_out;
    o.line_start = 1;
    char *res = NULL;
    size_t i = 0;

    while (i < len && !o.full) {
        const char *lt = memchr(html + i, '<', len - i);
        size_t end = lt ? (size_t)(lt - html) : len;
        if (end > i)
            h2t_chars(&o, html + i, end - i);
        if (!lt)
            break;
        i = end;
        const char *s = html + i;
        size_t n = len - i;
        if (n >= 4 && memcmp(s, "<!--", 4) == 0) {
            const char *e = NULL;
            for (size_t k = 4; k + 3 <= n; k++) {
                const char *dash = memchr(s + k, '-', n - k);
                if (!dash)
                    break;
                k = (size_t)(dash - s);
                if (k + 3 <= n && dash[1] == '-' && dash[2] == '>') {
                    e = dash + 3;
                    break;
                }
            }
            i = e ? (size_t)(e - html) : len;
            continue;
        }
        if (n >= 2 && (s[1] == '!' || s[1] == '?')) {
            i += h2t_tag_end(s, n);
            continue;
        }
        int closing = n >= 2 && s[1] == '/';
        size_t k = closing ? 2 : 1;
        if (k >= n || !h2t_is_alpha(s[k])) {
            h2t_text(&o, "<", 1);
            i++;
            continue;
        }
        char name[16];
        size_t nl = 0;
        while (k < n && (h2t_is_alpha(s[k]) || (s[k] >= '0' && s[k] <= '9'))) {
            if (nl < sizeof name - 1) {
                char c = s[k];
                name[nl++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            }
            k++;
        }
        name[nl] = '\0';
        size_t tend = h2t_tag_end(s, n);
        enum h2t_kind kind = h2t_kind_of(name);
        switch (kind) {
        case H2T_BR:
            if (o.b.len > 0 && o.pending_nl < 2)
                o.pending_nl++;
            break;
        case H2T_LINE:
            h2t_break(&o, 1);
            break;
        case H2T_PARA:
            h2t_break(&o, 2);
            break;
        case H2T_LI:
            h2t_break(&o, 1);
            if (!closing)
                h2t_text(&o, "- ", 2);
            break;
        case H2T_CELL:
            o.pending_space = 1;
            break;
        case H2T_SKIP:
            if (!closing) {
                i = h2t_skip_to_close(html, len, i + tend, name);
                continue;
            }
            break;
        case H2T_QUOTE:
            h2t_break(&o, 2);
            if (closing) {
                if (o.quote > 0)
                    o.quote--;
            } else {
                o.quote++;
            }
            break;
        case H2T_PRE:
            h2t_break(&o, 2);
            if (closing) {
                if (o.pre > 0)
                    o.pre--;
            } else {
                o.pre++;
            }
            break;
        case H2T_LINK:
            if (closing) {
                h2t_link_close(&o);
            } else {
                h2t_link_close(&o);
                h2t_href(s, tend, o.href, sizeof o.href);
                if (o.href[0]) {
                    /* text that follows starts after any owed separator */
                    h2t_flush(&o);
                    o.in_link = 1;
                    o.link_start = o.b.len;
                }
            }
            break;
        case H2T_INLINE:
            break;
        }
        i += tend;
    }
    h2t_link_close(&o);
    if (o.oom) {
        buf_free(&o.b);
        return NULL;
    }
    /* a cut may leave half a UTF-8 sequence at the end */
    if (o.full && o.b.len > 0) {
        size_t e = o.b.len, k = e;
        while (k > 0 && e - k < 4 && ((unsigned char)o.b.data[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0) {
            unsigned char lead = (unsigned char)o.b.data[k - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (need != e - k + 1)
                o.b.len = k - 1;
        }
    }
    /* trailing whitespace goes */
    while (o.b.len > 0 && h2t_is_space(o.b.data[o.b.len - 1]))
        o.b.len--;
    if (o.b.data)
        o.b.data[o.b.len] = '\0';
    size_t rlen = o.b.len;
    res = buf_steal(&o.b);
    if (res && out_len)
        *out_len = rlen;
    return res;
}
