/* loop: machine-mail verdicts and the per-sender breaker; see loop.h.
 * The checks read the message object's headers (lowercased names, first value), so raw mail
 * and provider posts are judged alike. Order: our own mail first (the loop that matters most),
 * then the standard markers, then the heuristics (addresses, subjects). */
#include "mail/loop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/ref.h"

static const char *ml_header(json_t *msg, const char *name)
{
    return json_string_value(json_object_get(json_object_get(msg, "headers"), name));
}

static void ml_reason(char *out, size_t size, const char *what, const char *value)
{
    if (!out || size == 0)
        return;
    if (value && *value)
        snprintf(out, size, "%s: %.80s", what, value);
    else
        snprintf(out, size, "%s", what);
}

/* Case-insensitive substring search. */
static int ml_contains(const char *s, const char *needle)
{
    if (!s || !needle || !*needle)
        return 0;
    size_t nl = strlen(needle);
    for (; *s; s++)
        if (strncasecmp(s, needle, nl) == 0)
            return 1;
    return 0;
}

/* The first token of a header value (up to ';', '(', or blank), lowercased into out. */
static void ml_token(const char *v, char *out, size_t size)
{
    size_t k = 0;
    while (*v == ' ' || *v == '\t')
        v++;
    while (*v && *v != ';' && *v != '(' && *v != ' ' && *v != '\t' && k + 1 < size) {
        char c = *v++;
        out[k++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    out[k] = '\0';
}

int mail_loop_our_domain(const struct mail_loop_config *cfg, const char *domain)
{
    if (!cfg || !domain || !*domain)
        return 0;
    size_t dl = strlen(domain);
    for (size_t i = 0; i < cfg->n_our_domains; i++) {
        const char *o = cfg->our_domains[i];
        if (!o || !*o)
            continue;
        size_t ol = strlen(o);
        if (dl == ol && strcasecmp(domain, o) == 0)
            return 1;
        if (dl > ol && domain[dl - ol - 1] == '.' && strcasecmp(domain + dl - ol, o) == 0)
            return 1;
    }
    return 0;
}

/* mailer-daemon@…, postmaster@…, or the bare names. */
static int ml_daemon_address(const char *a)
{
    if (!a)
        return 0;
    const char *at = strchr(a, '@');
    size_t local = at ? (size_t)(at - a) : strlen(a);
    return (local == 13 && strncasecmp(a, "mailer-daemon", 13) == 0) ||
           (local == 10 && strncasecmp(a, "postmaster", 10) == 0);
}

/* Subjects auto-responders and bounce generators use (start of subject). */
static const char *const ml_subject_prefixes[] = {
    "Automatic reply:", "Auto-Reply:", "AutoReply:", "Auto Reply:", "Auto Response:",
    "Autoresponse:", "Out of Office", "OOO:", "Abwesenheitsnotiz", "Automatische Antwort",
    "R\xc3\xa9ponse automatique", "Respuesta autom\xc3\xa1tica", "Risposta automatica",
    "Automatisch antwoord", "Autosvar", "Resposta autom\xc3\xa1tica", "Undeliverable:",
    "Undelivered Mail Returned to Sender", "Delivery Status Notification",
    "Mail delivery failed", "Returned mail:", "Delivery Failure", "Mail System Error",
    "Nicht zustellbar:", "Unzustellbar:", "Non remis", NULL};
/* ... and anywhere in it. */
static const char *const ml_subject_words[] = {"out of office", "abwesenheitsnotiz",
                                               "automatic reply", "(auto-reply)", NULL};

static int ml_auto_subject(const char *subject, const char **hit)
{
    if (!subject)
        return 0;
    for (size_t i = 0; ml_subject_prefixes[i]; i++)
        if (strncasecmp(subject, ml_subject_prefixes[i], strlen(ml_subject_prefixes[i])) == 0) {
            *hit = ml_subject_prefixes[i];
            return 1;
        }
    for (size_t i = 0; ml_subject_words[i]; i++)
        if (ml_contains(subject, ml_subject_words[i])) {
            *hit = ml_subject_words[i];
            return 1;
        }
    return 0;
}

/* report-type of a multipart/report content type, lowercased into out; 0 when not a report. */
static int ml_report_type(const char *ct, char *out, size_t size)
{
    out[0] = '\0';
    if (!ct)
        return 0;
    char tok[64];
    ml_token(ct, tok, sizeof tok);
    if (strcmp(tok, "message/delivery-status") == 0) {
        snprintf(out, size, "delivery-status");
        return 1;
    }
    if (strcmp(tok, "multipart/report") != 0)
        return 0;
    const char *p = ct;
    while ((p = strchr(p, ';')) != NULL) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "report-type", 11) == 0) {
            p += 11;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != '=')
                continue;
            p++;
            while (*p == ' ' || *p == '\t' || *p == '"')
                p++;
            ml_token(p, out, size);
            size_t l = strlen(out);
            while (l > 0 && out[l - 1] == '"')
                out[--l] = '\0';
            break;
        }
    }
    return 1;
}

int mail_loop_is_auto(const json_t *cmsg, const struct mail_loop_config *cfg, char *reason,
                      size_t reason_size)
{
    json_t *msg = (json_t *)cmsg; /* jansson's getters take non-const */
    const char *v;
    char tok[64];
    if (reason && reason_size)
        reason[0] = '\0';

    /* our own mail coming back */
    if (json_object_get(json_object_get(msg, "headers"), "x-trackbridge")) {
        ml_reason(reason, reason_size, "own mail: " MAIL_LOOP_MARKER_HEADER " header", NULL);
        return 1;
    }
    const char *mid = json_string_value(json_object_get(msg, "message_id"));
    char dom[256];
    if (mid && mail_ref_parse_message_id(mid, NULL, dom, sizeof dom) == 0 &&
        (!cfg || cfg->n_our_domains == 0 || mail_loop_our_domain(cfg, dom))) {
        ml_reason(reason, reason_size, "own mail: our Message-ID", mid);
        return 1;
    }
    /* our ids for mail about no ticket ("tb.mail.<hex>@domain") count in our domains */
    const char *at = mid ? strrchr(mid, '@') : NULL;
    if (at && strncasecmp(mid, "tb.", 3) == 0 && mail_loop_our_domain(cfg, at + 1)) {
        ml_reason(reason, reason_size, "own mail: our Message-ID", mid);
        return 1;
    }
    if ((v = ml_header(msg, "x-loop")) != NULL) {
        const char *id = cfg && cfg->loop_id ? cfg->loop_id : "trackbridge";
        int ours = ml_contains(v, id);
        for (size_t i = 0; cfg && !ours && i < cfg->n_our_domains; i++)
            ours = ml_contains(v, cfg->our_domains[i]);
        if (ours) {
            ml_reason(reason, reason_size, "x-loop", v);
            return 1;
        }
    }

    /* reports first: a bounce also says Auto-Submitted, the report type says more */
    char rtype[64];
    if (ml_report_type(ml_header(msg, "content-type"), rtype, sizeof rtype)) {
        if (strcmp(rtype, "delivery-status") == 0)
            ml_reason(reason, reason_size, "bounce: delivery-status report", NULL);
        else if (strcmp(rtype, "disposition-notification") == 0)
            ml_reason(reason, reason_size, "receipt: disposition-notification report", NULL);
        else
            ml_reason(reason, reason_size, "report", rtype[0] ? rtype : "multipart/report");
        return 1;
    }
    /* RFC 3834 and the de-facto markers */
    if ((v = ml_header(msg, "auto-submitted")) != NULL) {
        ml_token(v, tok, sizeof tok);
        if (tok[0] && strcmp(tok, "no") != 0) {
            ml_reason(reason, reason_size, "auto-submitted", tok);
            return 1;
        }
    }
    json_t *rp = json_object_get(msg, "return_path");
    if (json_is_string(rp)) {
        const char *r = json_string_value(rp);
        if (!*r) {
            ml_reason(reason, reason_size, "null return path <>", NULL);
            return 1;
        }
        if (ml_daemon_address(r)) {
            ml_reason(reason, reason_size, "return path", r);
            return 1;
        }
    }
    const char *from = json_string_value(json_object_get(json_object_get(msg, "from"), "address"));
    if (!from || !*from) {
        ml_reason(reason, reason_size, "no sender address", NULL);
        return 1;
    }
    if (ml_daemon_address(from)) {
        ml_reason(reason, reason_size, "from", from);
        return 1;
    }
    if ((v = ml_header(msg, "precedence")) != NULL) {
        ml_token(v, tok, sizeof tok);
        if (strcmp(tok, "bulk") == 0 || strcmp(tok, "junk") == 0 || strcmp(tok, "list") == 0 ||
            strcmp(tok, "auto_reply") == 0) {
            ml_reason(reason, reason_size, "precedence", tok);
            return 1;
        }
    }
    if (ml_header(msg, "list-id")) {
        ml_reason(reason, reason_size, "list-id", ml_header(msg, "list-id"));
        return 1;
    }
    if (ml_header(msg, "list-unsubscribe")) {
        ml_reason(reason, reason_size, "list-unsubscribe", NULL);
        return 1;
    }
    if ((v = ml_header(msg, "x-auto-response-suppress")) != NULL) {
        /* a comma-separated set: All, DR, NDR, RN, NRN, OOF, AutoReply */
        if (ml_contains(v, "all") || ml_contains(v, "oof") || ml_contains(v, "autoreply")) {
            ml_reason(reason, reason_size, "x-auto-response-suppress", v);
            return 1;
        }
    }
    static const char *const flags[] = {"x-autoreply", "x-autorespond", "x-autogenerated",
                                        "x-auto-reply", NULL};
    for (size_t i = 0; flags[i]; i++)
        if (ml_header(msg, flags[i])) {
            ml_reason(reason, reason_size, flags[i], ml_header(msg, flags[i]));
            return 1;
        }
    const char *hit = NULL;
    if (ml_auto_subject(json_string_value(json_object_get(msg, "subject")), &hit)) {
        ml_reason(reason, reason_size, "auto-reply subject", hit);
        return 1;
    }
    return 0;
}

/* ---- Rate breaker ------------------------------------------------------------------------ */

struct mlb_entry {
    char *key; /* NULL = empty slot */
    int64_t start;
    unsigned count;
};

struct mail_loop_breaker {
    pthread_mutex_t mu;
    unsigned max;
    int64_t window;
    size_t max_senders;
    size_t cap; /* power of two, > max_senders */
    size_t used;
    struct mlb_entry *tab;
};

static uint64_t mlb_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct mail_loop_breaker *mail_loop_breaker_new(unsigned max_per_window, int64_t window_ms,
                                                size_t max_senders)
{
    if (max_per_window == 0 || window_ms <= 0 || max_senders == 0 || max_senders > (1u << 24))
        return NULL;
    struct mail_loop_breaker *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    size_t cap = 16;
    while (cap < max_senders * 2)
        cap *= 2;
    b->tab = calloc(cap, sizeof *b->tab);
    if (!b->tab) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    b->max = max_per_window;
    b->window = window_ms;
    b->max_senders = max_senders;
    b->cap = cap;
    return b;
}

void mail_loop_breaker_free(struct mail_loop_breaker *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->cap; i++)
        free(b->tab[i].key);
    free(b->tab);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static size_t mlb_slot(const struct mail_loop_breaker *b, const char *key)
{
    size_t i = (size_t)mlb_hash(key) & (b->cap - 1);
    while (b->tab[i].key && strcmp(b->tab[i].key, key) != 0)
        i = (i + 1) & (b->cap - 1);
    return i;
}

/* Rebuilds the table keeping entries whose window is still open; when that frees nothing,
 * the entry with the oldest window goes too. Linear probing needs a rebuild to delete. */
static void mlb_purge(struct mail_loop_breaker *b, int64_t now)
{
    size_t oldest = b->cap;
    size_t kept = 0;
    for (size_t i = 0; i < b->cap; i++) {
        if (!b->tab[i].key)
            continue;
        if (now - b->tab[i].start >= b->window) {
            free(b->tab[i].key);
            b->tab[i].key = NULL;
            continue;
        }
        kept++;
        if (oldest == b->cap || b->tab[i].start < b->tab[oldest].start)
            oldest = i;
    }
    if (kept >= b->max_senders && oldest < b->cap) {
        free(b->tab[oldest].key);
        b->tab[oldest].key = NULL;
        kept--;
    }
    struct mlb_entry *old = b->tab;
    struct mlb_entry *tab = calloc(b->cap, sizeof *tab);
    if (!tab) {
        /* no memory to re-seat: forget everyone rather than keep a broken table */
        for (size_t i = 0; i < b->cap; i++) {
            free(old[i].key);
            old[i].key = NULL;
        }
        b->used = 0;
        return;
    }
    b->tab = tab;
    for (size_t i = 0; i < b->cap; i++)
        if (old[i].key)
            b->tab[mlb_slot(b, old[i].key)] = old[i];
    free(old);
    b->used = kept;
}

enum mail_breaker_verdict mail_loop_breaker_hit(struct mail_loop_breaker *b, const char *sender,
                                                int64_t now_ms)
{
    if (!b || !sender)
        return MAIL_BREAKER_PASS;
    char key[320];
    size_t k = 0;
    for (const char *s = sender; *s && k + 1 < sizeof key; s++)
        key[k++] = (*s >= 'A' && *s <= 'Z') ? (char)(*s + 32) : *s;
    key[k] = '\0';
    enum mail_breaker_verdict v = MAIL_BREAKER_PASS;
    pthread_mutex_lock(&b->mu);
    size_t i = mlb_slot(b, key);
    if (!b->tab[i].key) {
        if (b->used >= b->max_senders) {
            mlb_purge(b, now_ms);
            i = mlb_slot(b, key);
        }
        char *dup = strdup(key);
        if (!dup)
            goto out; /* out of memory: counting is best effort, never a reason to refuse */
        b->tab[i].key = dup;
        b->tab[i].start = now_ms;
        b->tab[i].count = 0;
        b->used++;
    }
    struct mlb_entry *e = &b->tab[i];
    if (now_ms - e->start >= b->window) {
        e->start = now_ms;
        e->count = 0;
    }
    if (e->count < 0xFFFFFFFFu)
        e->count++;
    if (e->count > b->max)
        v = MAIL_BREAKER_TRIP;
out:
    pthread_mutex_unlock(&b->mu);
    return v;
}

size_t mail_loop_breaker_size(struct mail_loop_breaker *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->mu);
    size_t n = b->used;
    pthread_mutex_unlock(&b->mu);
    return n;
}
