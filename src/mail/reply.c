/* reply: cuts quoted history and signatures off a reply; see reply.h.
 * Line based: the text is split once into line spans, markers are looked for from the top,
 * and the kept lines are copied out. Every look-ahead is bounded to a few lines. */
#include "mail/reply.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"

struct rp_line {
    const char *p;
    size_t n; /* without the line end */
};

/* Leading blanks (and the '*' Outlook puts around bold labels in text renderings) skipped. */
static void rp_trim(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t' || **p == '*')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r'))
        (*n)--;
}

static int rp_blank(const struct rp_line *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->p[i] != ' ' && l->p[i] != '\t' && l->p[i] != '\r')
            return 0;
    return 1;
}

static int rp_quoted(const struct rp_line *l)
{
    size_t i = 0;
    while (i < l->n && (l->p[i] == ' ' || l->p[i] == '\t'))
        i++;
    return i < l->n && l->p[i] == '>';
}

/* Case-insensitive "does s[0..n) start with prefix". */
static int rp_starts(const char *s, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n >= pl && strncasecmp(s, prefix, pl) == 0;
}

/* Case-insensitive substring search in s[0..n) (ASCII folding; UTF-8 bytes compare exactly). */
static int rp_contains(const char *s, size_t n, const char *needle)
{
    size_t nl = strlen(needle);
    if (nl == 0 || n < nl)
        return 0;
    for (size_t i = 0; i + nl <= n; i++)
        if (strncasecmp(s + i, needle, nl) == 0)
            return 1;
    return 0;
}

static int rp_starts_any(const char *s, size_t n, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (rp_starts(s, n, list[i]))
            return 1;
    return 0;
}

/* Attribution lines: "On <date>, <name> wrote:" and the same in the common mail languages. */
static const char *const rp_attr_start[] = {"On ", "Am ", "Le ", "El ", "Op ", "Il ", "Den ",
                                           "Em ", "W dniu ", "Dne ", NULL};
static const char *const rp_attr_verb[] = {"wrote", "schrieb", "a \xc3\xa9" "crit",
                                          "escribi\xc3\xb3", "schreef", "ha scritto", "skrev",
                                          "escreveu", "napisa\xc5\x82", "napsal", NULL};

/* 1 when lines[i] starts an attribution that ends (with ':') within it or the next 2 lines;
 * *span gets the number of lines it covers. */
static int rp_attribution(const struct rp_line *lines, size_t count, size_t i, size_t *span)
{
    const char *p = lines[i].p;
    size_t n = lines[i].n;
    rp_trim(&p, &n);
    if (!rp_starts_any(p, n, rp_attr_start))
        return 0;
    char joined[512];
    size_t jl = 0;
    for (size_t k = i; k < count && k < i + 3; k++) {
        const char *q = lines[k].p;
        size_t qn = lines[k].n;
        rp_trim(&q, &qn);
        if (k > i && qn == 0)
            break;
        if (jl + qn + 1 >= sizeof joined)
            break;
        if (jl > 0)
            joined[jl++] = ' ';
        memcpy(joined + jl, q, qn);
        jl += qn;
        if (jl > 0 && joined[jl - 1] == ':') {
            for (size_t v = 0; rp_attr_verb[v]; v++)
                if (rp_contains(joined, jl, rp_attr_verb[v])) {
                    *span = k - i + 1;
                    return 1;
                }
            return 0;
        }
    }
    return 0;
}

static const char *const rp_orig_phrases[] = {
    "Original Message", "Urspr\xc3\xbcngliche Nachricht", "Message d'origine",
    "Mensaje original", "Oorspronkelijk bericht", "Messaggio originale",
    "Originalmeddelande", "Original-Nachricht", NULL};

/* "-----Original Message-----" and translations. */
static int rp_original_sep(const struct rp_line *l)
{
    const char *p = l->p;
    size_t n = l->n;
    rp_trim(&p, &n);
    if (n < 6 || p[0] != '-' || p[1] != '-')
        return 0;
    for (size_t k = 0; rp_orig_phrases[k]; k++)
        if (rp_contains(p, n, rp_orig_phrases[k]))
            return 1;
    return 0;
}

static const char *const rp_hdr_from[] = {"From:", "Von:", "De :", "De:", "Van:", "Da:",
                                         "Fr\xc3\xa5n:", "Od:", NULL};
static const char *const rp_hdr_sent[] = {"Sent:", "Date:", "Gesendet:", "Datum:",
                                         "Envoy\xc3\xa9 :", "Envoy\xc3\xa9:", "Enviado el:",
                                         "Enviado:", "Verzonden:", "Inviato:", "Skickat:",
                                         "Odesl\xc3\xa1no:", NULL};
static const char *const rp_hdr_to[] = {"To:", "Subject:", "An:", "Betreff:", "\xc3\x80 :",
                                       "Objet :", "Objet:", "Para:", "Asunto:", "Aan:",
                                       "Onderwerp:", "A:", "Oggetto:", "Till:",
                                       "\xc3\x84mne:", "Cc:", "Komu:", "P\xc5\x99" "edm\xc4\x9bt:",
                                       NULL};

static int rp_line_starts_any(const struct rp_line *l, const char *const *list)
{
    const char *p = l->p;
    size_t n = l->n;
    rp_trim(&p, &n);
    return rp_starts_any(p, n, list);
}

/* Outlook's quoted header block: From:, then Sent:/Date: and To:/Subject: close below. */
static int rp_outlook_block(const struct rp_line *lines, size_t count, size_t i)
{
    if (!rp_line_starts_any(&lines[i], rp_hdr_from))
        return 0;
    int sent = 0, to = 0;
    for (size_t k = i + 1; k < count && k <= i + 6; k++) {
        if (!sent && rp_line_starts_any(&lines[k], rp_hdr_sent))
            sent = 1;
        else if (rp_line_starts_any(&lines[k], rp_hdr_to))
            to = 1;
        if (sent && to)
            return 1;
    }
    return 0;
}

/* "________________________________" (Outlook's rule above the header block). */
static int rp_underscore_rule(const struct rp_line *l)
{
    const char *p = l->p;
    size_t n = l->n;
    rp_trim(&p, &n);
    if (n < 10)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (p[k] != '_')
            return 0;
    return 1;
}

static const char *const rp_mobile_sig[] = {
    "Sent from my ", "Sent from Mail for Windows", "Sent from Outlook", "Get Outlook for ",
    "Sent from Yahoo Mail", "Von meinem iPhone gesendet", "Von meinem Android",
    "Gesendet von meinem", "Gesendet mit der Telekom", "Envoy\xc3\xa9 de mon ",
    "Enviado desde mi ", "Verzonden vanaf mijn ", "Inviato da ", NULL};

static int rp_signature(const struct rp_line *l)
{
    if ((l->n == 3 && memcmp(l->p, "-- ", 3) == 0) || (l->n == 2 && memcmp(l->p, "--", 2) == 0))
        return 1;
    const char *p = l->p;
    size_t n = l->n;
    rp_trim(&p, &n);
    return rp_starts_any(p, n, rp_mobile_sig);
}

/* Copies lines[from..to) into out, skipping quoted lines (and attribution lines when
 * skip_attr), without leading or trailing blank lines. */
static int rp_emit(buf_t *out, const struct rp_line *lines, size_t count, size_t from, size_t to,
                   int skip_attr)
{
    int any = 0;
    size_t blanks = 0;
    for (size_t i = from; i < to; i++) {
        if (rp_quoted(&lines[i]))
            continue;
        size_t span = 0;
        if (skip_attr && (rp_attribution(lines, count, i, &span) || rp_original_sep(&lines[i]))) {
            if (span > 1)
                i += span - 1;
            continue;
        }
        if (rp_blank(&lines[i])) {
            if (any)
                blanks++;
            continue;
        }
        /* runs of blank lines (often left around removed quotes) read as one */
        if (blanks > 0 && buf_putc(out, '\n') < 0)
            return -1;
        blanks = 0;
        if (any && buf_putc(out, '\n') < 0)
            return -1;
        size_t n = lines[i].n;
        while (n > 0 && (lines[i].p[n - 1] == ' ' || lines[i].p[n - 1] == '\t' ||
                         lines[i].p[n - 1] == '\r'))
            n--;
        if (buf_append(out, lines[i].p, n) < 0)
            return -1;
        any = 1;
    }
    return 0;
}

char *mail_reply_strip(const char *text, size_t len, size_t *out_len)
{
    struct rp_line *lines = NULL;
    size_t count = 0, cap = 0;
    buf_t out;
    buf_init(&out, 0);
    char *res = NULL;

    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct rp_line *nl2 = realloc(lines, ncap * sizeof *lines);
            if (!nl2)
                goto done;
            lines = nl2;
            cap = ncap;
        }
        size_t n = end - i;
        if (n > 0 && text[i + n - 1] == '\r')
            n--;
        lines[count].p = text + i;
        lines[count].n = n;
        count++;
        i = end + 1;
    }

    /* the first history marker from the top */
    size_t cut = count;
    for (size_t i = 0; i < count; i++) {
        size_t span = 0;
        if (rp_attribution(lines, count, i, &span) || rp_original_sep(&lines[i])) {
            cut = i;
            break;
        }
        if (rp_outlook_block(lines, count, i)) {
            cut = i;
            /* take the rule and blank lines above the block with it */
            size_t k = i;
            while (k > 0 && rp_blank(&lines[k - 1]))
                k--;
            if (k > 0 && rp_underscore_rule(&lines[k - 1]))
                cut = k - 1;
            break;
        }
        if (rp_underscore_rule(&lines[i])) {
            size_t k = i + 1;
            while (k < count && rp_blank(&lines[k]))
                k++;
            if (k < count && rp_outlook_block(lines, count, k)) {
                cut = i;
                break;
            }
        }
    }
    /* the signature above the history */
    for (size_t i = 0; i < cut; i++)
        if (rp_signature(&lines[i])) {
            cut = i;
            break;
        }

    if (rp_emit(&out, lines, count, 0, cut, 0) < 0)
        goto done;
    if (out.len == 0 && rp_emit(&out, lines, count, 0, count, 1) < 0)
        goto done;
    if (out_len)
        *out_len = out.len;
    res = buf_steal(&out);
done:
    buf_free(&out);
    free(lines);
    return res;
}
