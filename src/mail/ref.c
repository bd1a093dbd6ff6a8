/* ref: ticket references in subjects, plus-addresses and our own Message-IDs; see ref.h.
 * Patterns are PCRE2 (UTF, caseless, JIT when available) with match and depth limits, so a
 * configured pattern cannot spend unbounded time on a hostile subject. */
#include "mail/ref.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/crypto.h"
#include "common/util.h"

#define MR_MAX_PATTERNS 64
#define MR_MATCH_LIMIT 100000
#define MR_DEPTH_LIMIT 2000

struct mr_pat {
    pcre2_code *code;
    int group; /* number of the "number" group */
    enum mail_ref_kind kind;
    int plus;  /* applies to plus tags, not subjects */
};

struct mail_ref_set {
    struct mr_pat *pats;
    size_t n;
    pcre2_match_context *mctx;
};

static const struct {
    const char *re;
    enum mail_ref_kind kind;
    int plus;
} mr_defaults[] = {
    {"\\[\\s*JR[\\s#:-]*(?<number>\\d{1,20})\\s*\\]", MAIL_REF_JOB_REQUEST, 0},
    {"\\[\\s*Job[\\s#:-]*(?<number>\\d{1,20})\\s*\\]", MAIL_REF_JOB, 0},
    {"^JR[-_.]?(?<number>\\d{1,20})$", MAIL_REF_JOB_REQUEST, 1},
    {"^Job[-_.]?(?<number>\\d{1,20})$", MAIL_REF_JOB, 1},
};

const char *mail_ref_kind_name(enum mail_ref_kind kind)
{
    switch (kind) {
    case MAIL_REF_JOB_REQUEST:
        return "job_request";
    case MAIL_REF_JOB:
        return "job";
    case MAIL_REF_NONE:
        break;
    }
    return "";
}

const char *mail_ref_via_name(enum mail_ref_via via)
{
    switch (via) {
    case MAIL_REF_VIA_SUBJECT:
        return "subject";
    case MAIL_REF_VIA_PLUS:
        return "plus";
    case MAIL_REF_VIA_THREAD:
        return "thread";
    }
    return "";
}

int mail_ref_kind_parse(const char *s, enum mail_ref_kind *out)
{
    if (!s)
        return -1;
    if (strcasecmp(s, "job_request") == 0 || strcasecmp(s, "jr") == 0 ||
        strcasecmp(s, "request") == 0 || strcasecmp(s, "job-request") == 0) {
        *out = MAIL_REF_JOB_REQUEST;
        return 0;
    }
    if (strcasecmp(s, "job") == 0) {
        *out = MAIL_REF_JOB;
        return 0;
    }
    return -1;
}

/* 1..64 of [A-Za-z0-9-]. */
static int mr_number_ok(const char *s, size_t n)
{
    if (n == 0 || n > MAIL_REF_NUMBER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* A plain host name: labels of [A-Za-z0-9-] separated by single dots, 1..253 bytes. */
static int mr_domain_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (i > 0 && s[i - 1] == '.')
                return 0;
            continue;
        }
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-'))
            return 0;
    }
    return 1;
}

static int mr_compile(struct mail_ref_set *set, const char *re, enum mail_ref_kind kind,
                      int plus, size_t index, char **err)
{
    int ec = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_CASELESS | PCRE2_MATCH_INVALID_UTF, &ec,
                                     &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ec, msg, sizeof msg) < 0)
            msg[0] = '\0';
        if (err)
            *err = util_asprintf("ref_patterns[%zu]: %s at offset %zu", index, (char *)msg,
                                 (size_t)off);
        return -1;
    }
    int group = pcre2_substring_number_from_name(code, (PCRE2_SPTR) "number");
    if (group <= 0) {
        pcre2_code_free(code);
        if (err)
            *err = util_asprintf("ref_patterns[%zu]: the pattern has no (?<number>...) group",
                                 index);
        return -1;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter serves when JIT can't */
    set->pats[set->n].code = code;
    set->pats[set->n].group = group;
    set->pats[set->n].kind = kind;
    set->pats[set->n].plus = plus;
    set->n++;
    return 0;
}

void mail_ref_set_free(struct mail_ref_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        pcre2_code_free(set->pats[i].code);
    free(set->pats);
    pcre2_match_context_free(set->mctx);
    free(set);
}

struct mail_ref_set *mail_ref_set_new(const json_t *patterns, char **err)
{
    if (err)
        *err = NULL;
    size_t extra = 0;
    if (patterns && !json_is_null(patterns)) {
        if (!json_is_array(patterns)) {
            if (err)
                *err = util_asprintf("ref_patterns: expected a list of {pattern, kind}");
            return NULL;
        }
        extra = json_array_size(patterns);
        if (extra > MR_MAX_PATTERNS) {
            if (err)
                *err = util_asprintf("ref_patterns: more than %d patterns", MR_MAX_PATTERNS);
            return NULL;
        }
    }
    size_t ndef = sizeof mr_defaults / sizeof mr_defaults[0];
    struct mail_ref_set *set = calloc(1, sizeof *set);
    if (!set || !(set->pats = calloc(extra + ndef, sizeof *set->pats)) ||
        !(set->mctx = pcre2_match_context_create(NULL))) {
        if (err)
            *err = util_asprintf("ref_patterns: out of memory");
        mail_ref_set_free(set);
        return NULL;
    }
    pcre2_set_match_limit(set->mctx, MR_MATCH_LIMIT);
    pcre2_set_depth_limit(set->mctx, MR_DEPTH_LIMIT);
    for (size_t i = 0; i < extra; i++) {
        json_t *e = json_array_get(patterns, i);
        const char *re = json_string_value(json_object_get(e, "pattern"));
        const char *kind_s = json_string_value(json_object_get(e, "kind"));
        json_t *in_v = json_object_get(e, "in");
        const char *in = json_string_value(in_v);
        enum mail_ref_kind kind;
        if (!json_is_object(e) || !re) {
            if (err)
                *err = util_asprintf("ref_patterns[%zu]: expected {pattern, kind}", i);
            goto fail;
        }
        if (mail_ref_kind_parse(kind_s, &kind) < 0) {
            if (err)
                *err = util_asprintf("ref_patterns[%zu]: kind must be job_request or job", i);
            goto fail;
        }
        if (in_v && (!in || (strcmp(in, "subject") != 0 && strcmp(in, "plus") != 0))) {
            if (err)
                *err = util_asprintf("ref_patterns[%zu]: in must be subject or plus", i);
            goto fail;
        }
        if (mr_compile(set, re, kind, in && strcmp(in, "plus") == 0, i, err) < 0)
            goto fail;
    }
    for (size_t i = 0; i < ndef; i++)
        if (mr_compile(set, mr_defaults[i].re, mr_defaults[i].kind, mr_defaults[i].plus, i,
                       err) < 0)
            goto fail;
    return set;
fail:
    mail_ref_set_free(set);
    return NULL;
}

static pthread_once_t mr_once = PTHREAD_ONCE_INIT;
static struct mail_ref_set *mr_default_set;

static void mr_default_init(void) { mr_default_set = mail_ref_set_new(NULL, NULL); }

const struct mail_ref_set *mail_ref_set_default(void)
{
    pthread_once(&mr_once, mr_default_init);
    return mr_default_set;
}

/* Runs the patterns for subjects (plus == 0) or plus tags (plus == 1) over text. */
static int mr_match(const struct mail_ref_set *set, const char *text, size_t len, int plus,
                    enum mail_ref_via via, struct mail_ref *out)
{
    if (!set || !text)
        return 0;
    for (size_t i = 0; i < set->n; i++) {
        const struct mr_pat *p = &set->pats[i];
        if (p->plus != plus)
            continue;
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->code, NULL);
        if (!md)
            return 0;
        int rc = pcre2_match(p->code, (PCRE2_SPTR)text, len, 0, 0, md, set->mctx);
        int found = 0;
        if (rc > p->group) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            PCRE2_SIZE s = ov[2 * p->group], e = ov[2 * p->group + 1];
            if (s != PCRE2_UNSET && e >= s && mr_number_ok(text + s, e - s)) {
                out->kind = p->kind;
                out->via = via;
                memcpy(out->number, text + s, e - s);
                out->number[e - s] = '\0';
                found = 1;
            }
        }
        pcre2_match_data_free(md);
        if (found)
            return 1;
    }
    return 0;
}

int mail_ref_match_subject(const struct mail_ref_set *set, const char *subject,
                           struct mail_ref *out)
{
    return subject ? mr_match(set, subject, strlen(subject), 0, MAIL_REF_VIA_SUBJECT, out) : 0;
}

int mail_ref_match_plus(const struct mail_ref_set *set, const char *address,
                        struct mail_ref *out)
{
    if (!address)
        return 0;
    const char *at = strrchr(address, '@');
    size_t local = at ? (size_t)(at - address) : strlen(address);
    const char *plus = memchr(address, '+', local);
    if (!plus)
        return 0;
    const char *tag = plus + 1;
    size_t tl = local - (size_t)(tag - address);
    if (tl == 0)
        return 0;
    return mr_match(set, tag, tl, 1, MAIL_REF_VIA_PLUS, out);
}

char *mail_ref_make_message_id(enum mail_ref_kind kind, const char *number, const char *domain)
{
    if (kind == MAIL_REF_NONE || !number || !domain || !mr_number_ok(number, strlen(number)) ||
        !mr_domain_ok(domain, strlen(domain)))
        return NULL;
    unsigned char rnd[8];
    if (util_random(rnd, sizeof rnd) < 0)
        return NULL;
    char hex[17];
    crypto_hex(rnd, sizeof rnd, hex);
    return util_asprintf("<tb.%s.%s.%s@%s>", mail_ref_kind_name(kind), number, hex, domain);
}

int mail_ref_parse_message_id(const char *id, struct mail_ref *out, char *domain_out,
                              size_t domain_size)
{
    if (!id)
        return -1;
    size_t n = strlen(id);
    while (n > 0 && (*id == ' ' || *id == '\t')) {
        id++;
        n--;
    }
    while (n > 0 && (id[n - 1] == ' ' || id[n - 1] == '\t'))
        n--;
    if (n >= 2 && id[0] == '<' && id[n - 1] == '>') {
        id++;
        n -= 2;
    }
    if (n < 3 || strncasecmp(id, "tb.", 3) != 0)
        return -1;
    const char *end = id + n;
    const char *at = memchr(id, '@', n);
    if (!at)
        return -1;
    const char *p = id + 3;
    const char *d1 = memchr(p, '.', (size_t)(at - p));
    if (!d1)
        return -1;
    char kind_s[16];
    size_t kl = (size_t)(d1 - p);
    if (kl == 0 || kl >= sizeof kind_s)
        return -1;
    memcpy(kind_s, p, kl);
    kind_s[kl] = '\0';
    enum mail_ref_kind kind;
    if (strcasecmp(kind_s, "job_request") == 0)
        kind = MAIL_REF_JOB_REQUEST;
    else if (strcasecmp(kind_s, "job") == 0)
        kind = MAIL_REF_JOB;
    else
        return -1;
    const char *num = d1 + 1;
    const char *d2 = memchr(num, '.', (size_t)(at - num));
    if (!d2 || !mr_number_ok(num, (size_t)(d2 - num)))
        return -1;
    const char *rnd = d2 + 1;
    size_t rl = (size_t)(at - rnd);
    if (rl == 0 || rl > 64)
        return -1;
    for (size_t i = 0; i < rl; i++) {
        char c = rnd[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return -1;
    }
    const char *dom = at + 1;
    size_t dl = (size_t)(end - dom);
    if (!mr_domain_ok(dom, dl))
        return -1;
    if (out) {
        out->kind = kind;
        out->via = MAIL_REF_VIA_THREAD;
        memcpy(out->number, num, (size_t)(d2 - num));
        out->number[d2 - num] = '\0';
    }
    if (domain_out && domain_size > 0) {
        size_t c = dl < domain_size - 1 ? dl : domain_size - 1;
        memcpy(domain_out, dom, c);
        domain_out[c] = '\0';
    }
    return 0;
}

/* 1 when domain is one of ours (or a subdomain of one), or when no domains are given. */
static int mr_ours(const char *domain, const char *const *ours, size_t n)
{
    if (n == 0)
        return 1;
    if (!domain)
        return 0;
    size_t dl = strlen(domain);
    for (size_t i = 0; i < n; i++) {
        const char *o = ours[i];
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

static int mr_plus_in(const struct mail_ref_set *set, json_t *list, const char *const *ours,
                      size_t n, struct mail_ref *out)
{
    if (json_is_string(list)) {
        const char *a = json_string_value(list);
        const char *at = strrchr(a, '@');
        return mr_ours(at ? at + 1 : NULL, ours, n) && mail_ref_match_plus(set, a, out);
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (mr_plus_in(set, v, ours, n, out))
            return 1;
    }
    return 0;
}

static int mr_thread_id(const char *id, const char *const *ours, size_t n, struct mail_ref *out)
{
    char domain[256];
    struct mail_ref r;
    if (mail_ref_parse_message_id(id, &r, domain, sizeof domain) < 0 || !mr_ours(domain, ours, n))
        return 0;
    *out = r;
    return 1;
}

int mail_ref_find(const struct mail_ref_set *set, const json_t *msg,
                  const char *const *our_domains, size_t n_domains, struct mail_ref *out)
{
    if (!set)
        set = mail_ref_set_default();
    json_t *m = (json_t *)msg; /* jansson's getters take non-const */
    if (mail_ref_match_subject(set, json_string_value(json_object_get(m, "subject")), out))
        return 1;
    if (mr_plus_in(set, json_object_get(m, "to"), our_domains, n_domains, out) ||
        mr_plus_in(set, json_object_get(m, "cc"), our_domains, n_domains, out) ||
        mr_plus_in(set, json_object_get(json_object_get(m, "envelope"), "to"), our_domains,
                   n_domains, out))
        return 1;
    if (mr_thread_id(json_string_value(json_object_get(m, "in_reply_to")), our_domains,
                     n_domains, out))
        return 1;
    json_t *refs = json_object_get(m, "references");
    for (size_t i = json_array_size(refs); i > 0; i--)
        if (mr_thread_id(json_string_value(json_array_get(refs, i - 1)), our_domains, n_domains,
                         out))
            return 1;
    return 0;
}
