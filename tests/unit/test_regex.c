/* Unit tests for regex: matching, named and numbered captures, flags, compile errors with
 * PCRE2's text and offset, limits on catastrophic patterns, invalid UTF-8 subjects, JIT and
 * interpreter parity, and use from several threads. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "regex.h"

static rx_t *compile_ok(const char *pattern, const char *flags, unsigned opts)
{
    char err[256];
    size_t off;
    rx_t *rx = rx_compile_ex(pattern, flags, opts, err, sizeof err, &off);
    cr_assert_not_null(rx, "%s: %s at %zu", pattern, err, off);
    return rx;
}

static enum rx_result match(const char *pattern, const char *flags, const char *subject)
{
    rx_t *rx = compile_ok(pattern, flags, 0);
    enum rx_result r = rx_match(rx, subject, strlen(subject), NULL);
    rx_free(rx);
    return r;
}

static const char *cap(json_t *caps, const char *key)
{
    return json_string_value(json_object_get(caps, key));
}

Test(rx_match, a_pattern_matches_or_not)
{
    cr_expect_eq(match("disk (full|low)", NULL, "warning: disk full on /var"), RX_MATCH);
    cr_expect_eq(match("disk (full|low)", NULL, "disk fine"), RX_NOMATCH);
    cr_expect_eq(match("^$", NULL, ""), RX_MATCH);
}

Test(rx_match, the_subject_need_not_be_nul_terminated)
{
    rx_t *rx = compile_ok("^abc$", NULL, 0);
    const char buf[] = {'a', 'b', 'c', 'd'};
    cr_expect_eq(rx_match(rx, buf, 3, NULL), RX_MATCH);
    cr_expect_eq(rx_match(rx, buf, 4, NULL), RX_NOMATCH);
    cr_expect_eq(rx_match(rx, NULL, 0, NULL), RX_NOMATCH);
    rx_free(rx);
}

Test(rx_captures, named_and_numbered_groups_that_took_part_are_set)
{
    rx_t *rx = compile_ok("^(?<host>[a-z0-9]+)\\.(?<dc>[a-z]+)(?:-(?<rack>\\d+))?( x)?$", NULL,
                          0);
    cr_expect_eq(rx_capture_count(rx), 4);
    json_t *caps = json_object();
    const char *s = "db1.lon";
    cr_assert_eq(rx_match(rx, s, strlen(s), caps), RX_MATCH);
    cr_expect_str_eq(cap(caps, "0"), "db1.lon");
    cr_expect_str_eq(cap(caps, "1"), "db1");
    cr_expect_str_eq(cap(caps, "2"), "lon");
    cr_expect_str_eq(cap(caps, "host"), "db1");
    cr_expect_str_eq(cap(caps, "dc"), "lon");
    cr_expect_null(json_object_get(caps, "rack"), "a group that did not take part is absent");
    cr_expect_null(json_object_get(caps, "3"));
    cr_expect_null(json_object_get(caps, "4"));
    cr_expect_eq(json_object_size(caps), 5);
    json_decref(caps);

    caps = json_object();
    s = "web2.par-17 x";
    cr_assert_eq(rx_match(rx, s, strlen(s), caps), RX_MATCH);
    cr_expect_str_eq(cap(caps, "rack"), "17");
    cr_expect_str_eq(cap(caps, "3"), "17");
    cr_expect_str_eq(cap(caps, "4"), " x");
    json_decref(caps);
    rx_free(rx);
}

Test(rx_captures, no_match_leaves_the_captures_untouched)
{
    rx_t *rx = compile_ok("(?<a>x)", NULL, 0);
    json_t *caps = json_pack("{s:s}", "keep", "me");
    cr_expect_eq(rx_match(rx, "yyy", 3, caps), RX_NOMATCH);
    cr_expect_eq(json_object_size(caps), 1);
    json_decref(caps);
    rx_free(rx);
}

Test(rx_captures, captures_keep_utf8_and_embedded_nul_bytes)
{
    rx_t *rx = compile_ok("temp=(\\S+)\\s(.)", NULL, 0);
    json_t *caps = json_object();
    const char s[] = "temp=23\xc2\xb0" "C \xc3\xa9";
    cr_assert_eq(rx_match(rx, s, sizeof s - 1, caps), RX_MATCH);
    cr_expect_str_eq(cap(caps, "1"), "23\xc2\xb0" "C");
    cr_expect_str_eq(cap(caps, "2"), "\xc3\xa9", "'.' takes one whole character");
    json_decref(caps);
    rx_free(rx);

    rx = compile_ok("a(.)b", "s", 0);
    caps = json_object();
    cr_assert_eq(rx_match(rx, "xa\0b", 4, caps), RX_MATCH);
    cr_expect_eq(json_string_length(json_object_get(caps, "1")), 1);
    cr_expect_eq(json_string_value(json_object_get(caps, "1"))[0], '\0');
    json_decref(caps);
    rx_free(rx);
}

static void collect(const char *name, void *ud) { json_array_append_new(ud, json_string(name)); }

Test(rx_names, each_name_lists_the_named_groups_once)
{
    rx_t *rx = compile_ok("(?J)(?<b>x)|(?<a>y)|(?<b>z)|(w)", NULL, 0);
    cr_expect_eq(rx_capture_count(rx), 4);
    json_t *names = json_array();
    rx_each_name(rx, collect, names);
    cr_assert_eq(json_array_size(names), 2);
    cr_expect_str_eq(json_string_value(json_array_get(names, 0)), "a");
    cr_expect_str_eq(json_string_value(json_array_get(names, 1)), "b");
    json_decref(names);

    json_t *caps = json_object();
    cr_assert_eq(rx_match(rx, "z", 1, caps), RX_MATCH);
    cr_expect_str_eq(cap(caps, "b"), "z", "the duplicate name takes the group that matched");
    json_decref(caps);
    rx_free(rx);

    rx = compile_ok("plain", NULL, 0);
    names = json_array();
    rx_each_name(rx, collect, names);
    cr_expect_eq(json_array_size(names), 0);
    cr_expect_eq(rx_capture_count(rx), 0);
    json_decref(names);
    rx_free(rx);
}

Test(rx_flags, each_flag_changes_the_match_as_pcre2_documents)
{
    cr_expect_eq(match("disk", NULL, "DISK"), RX_NOMATCH);
    cr_expect_eq(match("disk", "i", "DISK"), RX_MATCH);
    cr_expect_eq(match("\xc3\xa9t\xc3\xa9", "i", "\xc3\x89T\xc3\x89"), RX_MATCH);
    cr_expect_eq(match("^b$", NULL, "a\nb\nc"), RX_NOMATCH);
    cr_expect_eq(match("^b$", "m", "a\nb\nc"), RX_MATCH);
    cr_expect_eq(match("a.b", NULL, "a\nb"), RX_NOMATCH);
    cr_expect_eq(match("a.b", "s", "a\nb"), RX_MATCH);
    cr_expect_eq(match("a b # comment", NULL, "ab"), RX_NOMATCH);
    cr_expect_eq(match("a b # comment", "x", "ab"), RX_MATCH);
    cr_expect_eq(match("^A.B$", "ims", "x\na\nb"), RX_MATCH);
}

Test(rx_errors, an_unknown_flag_is_refused)
{
    char err[128];
    size_t off = 99;
    cr_expect_null(rx_compile("a", "ig", err, sizeof err, &off));
    cr_expect(strstr(err, "unknown regex flag 'g'") != NULL, "message: %s", err);
    cr_expect_eq(off, 0);
}

Test(rx_errors, a_syntax_error_gives_pcre2_text_and_offset)
{
    char err[128];
    size_t off = 0;
    cr_expect_null(rx_compile("disk (full|low", NULL, err, sizeof err, &off));
    cr_expect(strstr(err, "missing closing parenthesis") != NULL, "message: %s", err);
    cr_expect_eq(off, 14);

    cr_expect_null(rx_compile("ab[z-a]", NULL, err, sizeof err, &off));
    cr_expect(strstr(err, "range out of order") != NULL, "message: %s", err);
    cr_expect_eq(off, 5);

    cr_expect_null(rx_compile("a\\C", NULL, err, sizeof err, &off), "\\C is locked out");
    cr_expect(strstr(err, "\\C") != NULL, "message: %s", err);

    cr_expect_null(rx_compile("caf\xc3", NULL, err, sizeof err, &off));
    cr_expect(strstr(err, "UTF-8") != NULL, "message: %s", err);
    cr_expect_eq(off, 3);

    cr_expect_null(rx_compile(NULL, NULL, err, sizeof err, NULL));
    cr_expect_null(rx_compile("(", NULL, NULL, 0, NULL), "err and erroff may be NULL");
}

Test(rx_limits, a_catastrophic_pattern_hits_the_limit_instead_of_hanging)
{
    char subject[64];
    memset(subject, 'a', 30);
    subject[30] = 'b';
    subject[31] = '\0';
    rx_t *jit = compile_ok("(a+)+$", NULL, 0);
    rx_t *interp = compile_ok("(a+)+$", NULL, RX_NO_JIT);
    cr_expect_eq(rx_match(jit, subject, 31, NULL), RX_LIMIT);
    cr_expect_eq(rx_match(interp, subject, 31, NULL), RX_LIMIT);
    cr_expect_eq(rx_match(jit, subject, 30, NULL), RX_MATCH, "the same pattern still works");
    rx_free(jit);
    rx_free(interp);
}

Test(rx_limits, lowered_limits_apply_to_the_next_match_and_defaults_come_back)
{
    char subject[64];
    memset(subject, 'a', 12);
    subject[12] = 'b';
    rx_t *rx = compile_ok("(a+)+$", NULL, RX_NO_JIT);
    cr_expect_eq(rx_match(rx, subject, 13, NULL), RX_NOMATCH, "2^12 steps fit the default");
    rx_set_limits(&(struct rx_limits){.match_limit = 100});
    cr_expect_eq(rx_match(rx, subject, 13, NULL), RX_LIMIT);
    rx_set_limits(NULL);
    cr_expect_eq(rx_match(rx, subject, 13, NULL), RX_NOMATCH);
    rx_free(rx);
}

Test(rx_limits, deep_recursion_hits_the_depth_or_heap_limit)
{
    /* A recursive group over a long subject needs one frame per character. */
    size_t n = 200000;
    char *subject = malloc(n);
    memset(subject, 'a', n);
    rx_t *rx = compile_ok("^(a(?1)?)$", NULL, RX_NO_JIT);
    rx_set_limits(&(struct rx_limits){.depth_limit = 1000});
    cr_expect_eq(rx_match(rx, subject, n, NULL), RX_LIMIT);
    rx_set_limits(&(struct rx_limits){.heap_limit_kib = 64});
    cr_expect_eq(rx_match(rx, subject, n, NULL), RX_LIMIT);
    rx_set_limits(NULL);
    cr_expect_eq(rx_match(rx, subject, 100, NULL), RX_MATCH);
    rx_free(rx);

    rx = compile_ok("^(a(?1)?)$", NULL, 0);
    if (rx_is_jit(rx)) {
        rx_set_limits(&(struct rx_limits){.jit_stack_kib = 32});
        cr_expect_eq(rx_match(rx, subject, n, NULL), RX_LIMIT, "the JIT stack is bounded");
        rx_set_limits(NULL);
    }
    rx_free(rx);
    free(subject);
}

Test(rx_utf8, invalid_bytes_in_a_subject_read_as_replacement_characters)
{
    const char bad[] = "host=db1 \xff\xfe state=down";
    cr_expect_eq(match("state=(\\w+)", NULL, bad), RX_MATCH);
    cr_expect_eq(match("^\\w+", NULL, "\xc3"), RX_NOMATCH);
    cr_expect_eq(match("^\\w+", NULL, "\xed\xa0\x80"), RX_NOMATCH, "a surrogate is invalid");
    for (unsigned opts = 0; opts <= RX_NO_JIT; opts++) {
        rx_t *rx = compile_ok("db1 (?<junk>..) (?<v>\\w+)=(\\w+)$", NULL, opts);
        json_t *caps = json_object();
        cr_expect_eq(rx_match(rx, bad, sizeof bad - 1, caps), RX_MATCH);
        cr_expect_str_eq(cap(caps, "junk"), "\xef\xbf\xbd\xef\xbf\xbd");
        cr_expect_str_eq(cap(caps, "v"), "state");
        cr_expect_str_eq(cap(caps, "3"), "down");
        json_decref(caps);
        rx_free(rx);
    }
}

Test(rx_utf8, negated_classes_match_multibyte_characters_with_and_without_jit)
{
    /* PCRE2 10.42's JIT got this wrong under PCRE2_MATCH_INVALID_UTF. */
    for (unsigned opts = 0; opts <= RX_NO_JIT; opts++) {
        rx_t *rx = compile_ok("temp=(\\S+)\\s(\\D)(\\W)", NULL, opts);
        json_t *caps = json_object();
        const char s[] = "temp=23\xc2\xb0" "C \xc3\xa9\xe2\x82\xac";
        cr_assert_eq(rx_match(rx, s, sizeof s - 1, caps), RX_MATCH, "opts %u", opts);
        cr_expect_str_eq(cap(caps, "1"), "23\xc2\xb0" "C");
        cr_expect_str_eq(cap(caps, "2"), "\xc3\xa9");
        cr_expect_str_eq(cap(caps, "3"), "\xe2\x82\xac");
        json_decref(caps);
        rx_free(rx);
    }
}

Test(rx_jit, jit_and_interpreter_agree_on_results_and_captures)
{
    static const char *const patterns[] = {
        "(?<word>\\w+)@(?<dom>[\\w.]+)", "^(a|ab)(c|bcd)(d*)$", "(?i)ERROR:\\s*(.*)",
        "(x)?y", "\\b(\\d{1,3})%", "(?m)^(\\S+):(.*)$", "(?s)<(.*?)>", "(\\p{L}+)\\s(\\d+)"};
    static const char *const subjects[] = {
        "mail ops@example.org now", "abcd", "error: disk full", "y", "cpu 95% mem 12%",
        "k: v\nkey2:val2", "<a\nb><c>", "caf\xc3\xa9 42", "\xff" "abc", "", "nothing here"};
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        rx_t *a = compile_ok(patterns[i], NULL, 0);
        rx_t *b = compile_ok(patterns[i], NULL, RX_NO_JIT);
        cr_expect_not(rx_is_jit(b));
        for (size_t k = 0; k < sizeof subjects / sizeof subjects[0]; k++) {
            json_t *ca = json_object(), *cb = json_object();
            enum rx_result ra = rx_match(a, subjects[k], strlen(subjects[k]), ca);
            enum rx_result rb = rx_match(b, subjects[k], strlen(subjects[k]), cb);
            cr_expect_eq(ra, rb, "%s on subject %zu", patterns[i], k);
            cr_expect(json_equal(ca, cb), "%s on subject %zu: captures differ", patterns[i], k);
            json_decref(ca);
            json_decref(cb);
        }
        rx_free(a);
        rx_free(b);
    }
}

struct worker {
    const rx_t *rx;
    int matched;
};

static void *work(void *p)
{
    struct worker *w = p;
    for (int i = 0; i < 200; i++) {
        char s[32];
        int n = snprintf(s, sizeof s, "id=%d", i);
        json_t *caps = json_object();
        if (rx_match(w->rx, s, (size_t)n, caps) == RX_MATCH &&
            atoi(json_string_value(json_object_get(caps, "id"))) == i)
            w->matched++;
        json_decref(caps);
    }
    return NULL;
}

Test(rx_threads, one_pattern_is_matched_from_several_threads)
{
    rx_t *rx = compile_ok("id=(?<id>\\d+)", NULL, 0);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){rx, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(w[i].matched, 200, "thread %d", i);
    }
    rx_free(rx);
    rx_thread_cleanup();
}

Test(rx_api, null_arguments_are_harmless)
{
    rx_free(NULL);
    cr_expect_eq(rx_match(NULL, "a", 1, NULL), RX_ERROR);
    cr_expect_eq(rx_capture_count(NULL), 0);
    cr_expect_not(rx_is_jit(NULL));
    rx_each_name(NULL, collect, NULL);
    rx_thread_cleanup();
    rx_thread_cleanup();
}
