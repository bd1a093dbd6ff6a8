/* regex: PCRE2 wrapper; see regex.h for the contract. Compiled code is shared read-only
 * between threads; each thread keeps its own match context (limits, JIT stack) and match
 * data, created on first use and refreshed when rx_set_limits changes the limits. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RX_MAX_PATTERN ((size_t)64 * 1024)
#define RX_JIT_STACK_START ((size_t)32 * 1024)

struct rx {
    pcre2_code *code;
    uint32_t ncap;
    int jit;
};

static const struct rx_limits rx_defaults = {1000000, 10000, 20000, 512};
static struct rx_limits rx_lim = {1000000, 10000, 20000, 512};
static pthread_mutex_t rx_lim_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint rx_lim_gen = 1;

struct rx_thread {
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    pcre2_match_data *md;
    uint32_t md_pairs;
    unsigned gen; /* rx_lim_gen the context was set up with; 0 = never */
};

static _Thread_local struct rx_thread *rx_tls;
static pthread_key_t rx_key;
static pthread_once_t rx_key_once = PTHREAD_ONCE_INIT;

void rx_set_limits(const struct rx_limits *lim)
{
    pthread_mutex_lock(&rx_lim_lock);
    rx_lim = rx_defaults;
    if (lim) {
        if (lim->match_limit)
            rx_lim.match_limit = lim->match_limit;
        if (lim->depth_limit)
            rx_lim.depth_limit = lim->depth_limit;
        if (lim->heap_limit_kib)
            rx_lim.heap_limit_kib = lim->heap_limit_kib;
        if (lim->jit_stack_kib)
            rx_lim.jit_stack_kib = lim->jit_stack_kib;
    }
    pthread_mutex_unlock(&rx_lim_lock);
    atomic_fetch_add(&rx_lim_gen, 1);
}

static void thread_free(void *p)
{
    struct rx_thread *ts = p;
    if (!ts)
        return;
    pcre2_match_data_free(ts->md);
    pcre2_match_context_free(ts->mctx);
    pcre2_jit_stack_free(ts->jstack);
    free(ts);
}

static void make_key(void) { (void)pthread_key_create(&rx_key, thread_free); }

void rx_thread_cleanup(void)
{
    if (!rx_tls)
        return;
    pthread_setspecific(rx_key, NULL);
    thread_free(rx_tls);
    rx_tls = NULL;
}

/* The calling thread's match state with match data for at least pairs pairs; NULL on OOM. */
static struct rx_thread *thread_state(uint32_t pairs)
{
    struct rx_thread *ts = rx_tls;
    if (!ts) {
        pthread_once(&rx_key_once, make_key);
        ts = calloc(1, sizeof *ts);
        if (!ts)
            return NULL;
        rx_tls = ts;
        pthread_setspecific(rx_key, ts);
    }
    unsigned gen = atomic_load(&rx_lim_gen);
    if (ts->gen != gen) {
        pthread_mutex_lock(&rx_lim_lock);
        struct rx_limits lim = rx_lim;
        pthread_mutex_unlock(&rx_lim_lock);
        if (!ts->mctx && !(ts->mctx = pcre2_match_context_create(NULL)))
            return NULL;
        pcre2_set_match_limit(ts->mctx, lim.match_limit);
        pcre2_set_depth_limit(ts->mctx, lim.depth_limit);
        pcre2_set_heap_limit(ts->mctx, lim.heap_limit_kib);
        pcre2_jit_stack_free(ts->jstack);
        size_t max = lim.jit_stack_kib * 1024;
        /* NULL when PCRE2 has no JIT: the interpreter does not use it. */
        ts->jstack = pcre2_jit_stack_create(max < RX_JIT_STACK_START ? max : RX_JIT_STACK_START,
                                            max, NULL);
        pcre2_jit_stack_assign(ts->mctx, NULL, ts->jstack);
        ts->gen = gen;
    }
    if (ts->md_pairs < pairs) {
        uint32_t want = pairs < 16 ? 16 : pairs;
        pcre2_match_data *md = pcre2_match_data_create(want, NULL);
        if (!md)
            return NULL;
        pcre2_match_data_free(ts->md);
        ts->md = md;
        ts->md_pairs = want;
    }
    return ts;
}

static void put_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

rx_t *rx_compile_ex(const char *pattern, const char *flags, unsigned opts, char *err,
                    size_t errlen, size_t *erroff)
{
    rx_t *rx = NULL;
    pcre2_compile_context *cctx = NULL;
    /* Not PCRE2_MATCH_INVALID_UTF: with it, PCRE2 10.42's JIT fails to match \S, \D, \W
     * against multi-byte characters (PCRE2 issue 224, fixed in 10.43). Invalid subjects
     * are repaired in rx_match instead. */
    uint32_t options = PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C;
    if (erroff)
        *erroff = 0;
    if (!pattern) {
        put_err(err, errlen, "no pattern");
        goto fail;
    }
    for (const char *f = flags ? flags : ""; *f; f++) {
        switch (*f) {
        case 'i': options |= PCRE2_CASELESS; break;
        case 'm': options |= PCRE2_MULTILINE; break;
        case 's': options |= PCRE2_DOTALL; break;
        case 'x': options |= PCRE2_EXTENDED; break;
        default:
            if (err && errlen)
                snprintf(err, errlen, "unknown regex flag '%c' (flags are i, m, s, x)", *f);
            goto fail;
        }
    }
    rx = calloc(1, sizeof *rx);
    cctx = pcre2_compile_context_create(NULL);
    if (!rx || !cctx) {
        put_err(err, errlen, "out of memory");
        goto fail;
    }
    pcre2_set_max_pattern_length(cctx, RX_MAX_PATTERN);
    int code = 0;
    PCRE2_SIZE off = 0;
    rx->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, options, &code, &off,
                             cctx);
    if (!rx->code) {
        if (err && errlen) {
            PCRE2_UCHAR msg[256];
            if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
                snprintf((char *)msg, sizeof msg, "regex error %d", code);
            snprintf(err, errlen, "%s", (const char *)msg);
        }
        if (erroff)
            *erroff = off;
        goto fail;
    }
    if (pcre2_pattern_info(rx->code, PCRE2_INFO_CAPTURECOUNT, &rx->ncap) != 0)
        rx->ncap = 0;
    if (!(opts & RX_NO_JIT) && pcre2_jit_compile(rx->code, PCRE2_JIT_COMPLETE) == 0)
        rx->jit = 1;
    pcre2_compile_context_free(cctx);
    return rx;
fail:
    pcre2_compile_context_free(cctx);
    rx_free(rx);
    return NULL;
}

rx_t *rx_compile(const char *pattern, const char *flags, char *err, size_t errlen,
                 size_t *erroff)
{
    return rx_compile_ex(pattern, flags, 0, err, errlen, erroff);
}

void rx_free(rx_t *rx)
{
    if (!rx)
        return;
    pcre2_code_free(rx->code);
    free(rx);
}

int rx_is_jit(const rx_t *rx) { return rx && rx->jit; }

uint32_t rx_capture_count(const rx_t *rx) { return rx ? rx->ncap : 0; }

/* Walks PCRE2's name table: entries of entry_size bytes, a 2-byte big-endian group number
 * followed by the NUL-terminated name. */
static void name_table(const rx_t *rx, uint32_t *count, uint32_t *esize, PCRE2_SPTR *table)
{
    *count = 0;
    if (pcre2_pattern_info(rx->code, PCRE2_INFO_NAMECOUNT, count) != 0 ||
        pcre2_pattern_info(rx->code, PCRE2_INFO_NAMEENTRYSIZE, esize) != 0 ||
        pcre2_pattern_info(rx->code, PCRE2_INFO_NAMETABLE, table) != 0)
        *count = 0;
}

void rx_each_name(const rx_t *rx, void (*fn)(const char *name, void *ud), void *ud)
{
    if (!rx || !fn)
        return;
    uint32_t count, esize;
    PCRE2_SPTR table;
    name_table(rx, &count, &esize, &table);
    for (uint32_t i = 0; i < count; i++) {
        PCRE2_SPTR e = table + (size_t)i * esize;
        /* With (?J) one name may stand for several groups: report it once. */
        if (i > 0 && strcmp((const char *)e + 2, (const char *)(e - esize) + 2) == 0)
            continue;
        fn((const char *)e + 2, ud);
    }
}

/* Sets caps[key] to the substring of group g when it took part. 0, or -1 on OOM. */
static int put_group(json_t *caps, const char *key, const PCRE2_SIZE *ov, uint32_t g,
                     const char *subject)
{
    PCRE2_SIZE s = ov[2 * g], e = ov[2 * g + 1];
    if (s == PCRE2_UNSET || e < s) /* \K in a lookaround can put the start after the end */
        return 0;
    json_t *v = json_stringn(subject + s, e - s);
    if (!v || json_object_set_new(caps, key, v) < 0)
        return -1;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not one:
 * no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t k;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < k || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return k;
}

/* A copy of s with every byte that is not part of valid UTF-8 replaced by U+FFFD. New
 * buffer (free()) and its length, or NULL when memory runs out. */
static char *utf8_repair(const char *s, size_t n, size_t *out_len)
{
    if (n > ((size_t)-1) / 3)
        return NULL;
    char *out = malloc(n * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static int is_utf_error(int rc)
{
    return rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21;
}

enum rx_result rx_match(const rx_t *rx, const char *subject, size_t len, json_t *caps)
{
    enum rx_result res = RX_ERROR;
    char *repaired = NULL;
    if (!rx)
        return RX_ERROR;
    if (!subject) {
        subject = "";
        len = 0;
    }
    struct rx_thread *ts = thread_state(rx->ncap + 1);
    if (!ts)
        return RX_ERROR;
    int rc = pcre2_match(rx->code, (PCRE2_SPTR)subject, len, 0, 0, ts->md, ts->mctx);
    if (is_utf_error(rc)) {
        /* Invalid UTF-8 (a broken mail header, say) must not hide the rest of the text:
         * match a repaired copy, so captures are valid UTF-8 too. */
        size_t rlen = 0;
        repaired = utf8_repair(subject, len, &rlen);
        if (!repaired)
            goto out;
        subject = repaired;
        rc = pcre2_match(rx->code, (PCRE2_SPTR)subject, rlen, 0, 0, ts->md, ts->mctx);
    }
    if (rc == PCRE2_ERROR_NOMATCH || rc == PCRE2_ERROR_PARTIAL || is_utf_error(rc)) {
        res = RX_NOMATCH;
        goto out;
    }
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        res = RX_LIMIT;
        goto out;
    }
    if (rc < 0)
        goto out;
    if (json_is_object(caps)) {
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(ts->md);
        uint32_t used = rc > 0 ? (uint32_t)rc : 0; /* groups past rc - 1 did not take part */
        for (uint32_t g = 0; g < used; g++) {
            char key[16];
            snprintf(key, sizeof key, "%u", g);
            if (put_group(caps, key, ov, g, subject) < 0)
                goto out;
        }
        uint32_t count, esize;
        PCRE2_SPTR table;
        name_table(rx, &count, &esize, &table);
        for (uint32_t i = 0; i < count; i++) {
            PCRE2_SPTR e = table + (size_t)i * esize;
            uint32_t g = ((uint32_t)e[0] << 8) | e[1];
            if (g < used && put_group(caps, (const char *)e + 2, ov, g, subject) < 0)
                goto out;
        }
    }
    res = RX_MATCH;
out:
    free(repaired);
    return res;
}
