/* ref: ticket references from subjects, plus-addresses and our own Message-IDs. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mail/parse.h"
#include "mail/ref.h"

static void expect_subject(const char *subject, enum mail_ref_kind kind, const char *number)
{
    struct mail_ref r;
    memset(&r, 0, sizeof r);
    int found = mail_ref_match_subject(mail_ref_set_default(), subject, &r);
    if (kind == MAIL_REF_NONE) {
        cr_expect_eq(found, 0, "found %s in '%s'", r.number, subject);
        return;
    }
    cr_expect_eq(found, 1, "nothing found in '%s'", subject);
    cr_expect_eq(r.kind, kind, "kind in '%s'", subject);
    cr_expect_str_eq(r.number, number);
    cr_expect_eq(r.via, MAIL_REF_VIA_SUBJECT);
}

Test(mail_ref, default_subject_patterns_find_job_requests_and_jobs)
{
    expect_subject("RE: [JR-1042] Door closer", MAIL_REF_JOB_REQUEST, "1042");
    expect_subject("[JR 1042] Door closer", MAIL_REF_JOB_REQUEST, "1042");
    expect_subject("AW: [ jr#77 ] Aufzug", MAIL_REF_JOB_REQUEST, "77");
    expect_subject("Re: [Job 4711] Boiler", MAIL_REF_JOB, "4711");
    expect_subject("Re: [Job #4711] Boiler", MAIL_REF_JOB, "4711");
    expect_subject("[JOB-12]", MAIL_REF_JOB, "12");
}

Test(mail_ref, subjects_without_the_bracketed_form_have_no_reference)
{
    expect_subject("JR-1042 door closer", MAIL_REF_NONE, NULL);
    expect_subject("[Jobs 12] newsletter", MAIL_REF_NONE, NULL);
    expect_subject("[JR-] empty", MAIL_REF_NONE, NULL);
    expect_subject("", MAIL_REF_NONE, NULL);
}

Test(mail_ref, plus_addresses_carry_the_reference)
{
    struct mail_ref r;
    cr_expect_eq(mail_ref_match_plus(mail_ref_set_default(), "helpdesk+JR-1042@fm.example.com",
                                     &r),
                 1);
    cr_expect_eq(r.kind, MAIL_REF_JOB_REQUEST);
    cr_expect_str_eq(r.number, "1042");
    cr_expect_eq(r.via, MAIL_REF_VIA_PLUS);
    cr_expect_eq(mail_ref_match_plus(mail_ref_set_default(), "helpdesk+job4711@fm.example.com",
                                     &r),
                 1);
    cr_expect_eq(r.kind, MAIL_REF_JOB);
    cr_expect_str_eq(r.number, "4711");
    cr_expect_eq(mail_ref_match_plus(mail_ref_set_default(), "helpdesk+news@fm.example.com", &r),
                 0);
    cr_expect_eq(mail_ref_match_plus(mail_ref_set_default(), "helpdesk@fm.example.com", &r), 0);
    cr_expect_eq(mail_ref_match_plus(mail_ref_set_default(), "a+@x.example", &r), 0);
}

Test(mail_ref, our_message_ids_round_trip)
{
    char *id = mail_ref_make_message_id(MAIL_REF_JOB_REQUEST, "1042", "fm.example.com");
    cr_assert_not_null(id);
    cr_expect_eq(strncmp(id, "<tb.job_request.1042.", 21), 0, "%s", id);
    cr_expect(strstr(id, "@fm.example.com>") != NULL, "%s", id);
    struct mail_ref r;
    char dom[64];
    cr_assert_eq(mail_ref_parse_message_id(id, &r, dom, sizeof dom), 0);
    cr_expect_eq(r.kind, MAIL_REF_JOB_REQUEST);
    cr_expect_str_eq(r.number, "1042");
    cr_expect_eq(r.via, MAIL_REF_VIA_THREAD);
    cr_expect_str_eq(dom, "fm.example.com");
    /* without the angle brackets, as the parser stores ids */
    cr_expect_eq(mail_ref_parse_message_id(id + 1, &r, NULL, 0), -1,
                 "a trailing '>' alone is not an id");
    char *bare = strndup(id + 1, strlen(id) - 2);
    cr_expect_eq(mail_ref_parse_message_id(bare, &r, NULL, 0), 0);
    free(bare);
    char *id2 = mail_ref_make_message_id(MAIL_REF_JOB_REQUEST, "1042", "fm.example.com");
    cr_expect_str_neq(id, id2, "ids must be unique");
    free(id2);
    free(id);
    id = mail_ref_make_message_id(MAIL_REF_JOB, "6f1c2d3e-aaaa-4bbb-8ccc-0123456789ab",
                                  "fm.example.com");
    cr_assert_not_null(id, "a GUID is a valid job number");
    cr_expect_eq(mail_ref_parse_message_id(id, &r, NULL, 0), 0);
    cr_expect_str_eq(r.number, "6f1c2d3e-aaaa-4bbb-8ccc-0123456789ab");
    free(id);
}

Test(mail_ref, bad_message_id_inputs_are_refused)
{
    cr_expect_null(mail_ref_make_message_id(MAIL_REF_NONE, "1", "fm.example.com"));
    cr_expect_null(mail_ref_make_message_id(MAIL_REF_JOB, "1.2", "fm.example.com"));
    cr_expect_null(mail_ref_make_message_id(MAIL_REF_JOB, "", "fm.example.com"));
    cr_expect_null(mail_ref_make_message_id(MAIL_REF_JOB, "1", "fm example.com"));
    cr_expect_null(mail_ref_make_message_id(MAIL_REF_JOB, "1", "a@b"));
    cr_expect_null(mail_ref_make_message_id(MAIL_REF_JOB, "1", "x..y"));
}

Test(mail_ref, other_peoples_message_ids_are_not_ours)
{
    struct mail_ref r;
    cr_expect_eq(mail_ref_parse_message_id("<abc@x.example>", &r, NULL, 0), -1);
    cr_expect_eq(mail_ref_parse_message_id("tb.ticket.1.aa@x.example", &r, NULL, 0), -1);
    cr_expect_eq(mail_ref_parse_message_id("tb.job.1.zz@x.example", &r, NULL, 0), -1);
    cr_expect_eq(mail_ref_parse_message_id("tb.job.1.aa@", &r, NULL, 0), -1);
    cr_expect_eq(mail_ref_parse_message_id("tb.job.1.aa", &r, NULL, 0), -1);
    cr_expect_eq(mail_ref_parse_message_id("tb.job..aa@x.example", &r, NULL, 0), -1);
    cr_expect_eq(mail_ref_parse_message_id(NULL, &r, NULL, 0), -1);
}

Test(mail_ref, configured_patterns_come_first_and_may_read_plus_tags)
{
    json_t *p = json_pack("[{s:s, s:s}, {s:s, s:s, s:s}]", "pattern",
                          "WO(?<number>\\d{3,})", "kind", "job", "pattern",
                          "^t(?<number>\\d+)$", "kind", "job_request", "in", "plus");
    char *err = NULL;
    struct mail_ref_set *set = mail_ref_set_new(p, &err);
    cr_assert_not_null(set, "%s", err ? err : "");
    struct mail_ref r;
    cr_expect_eq(mail_ref_match_subject(set, "Re: WO5531 and [JR-1]", &r), 1);
    cr_expect_eq(r.kind, MAIL_REF_JOB);
    cr_expect_str_eq(r.number, "5531");
    cr_expect_eq(mail_ref_match_subject(set, "Re: [JR-1] defaults still apply", &r), 1);
    cr_expect_str_eq(r.number, "1");
    cr_expect_eq(mail_ref_match_plus(set, "fm+t88@fm.example.com", &r), 1);
    cr_expect_eq(r.kind, MAIL_REF_JOB_REQUEST);
    cr_expect_str_eq(r.number, "88");
    cr_expect_eq(mail_ref_match_subject(set, "t88", &r), 0, "plus patterns skip subjects");
    mail_ref_set_free(set);
    json_decref(p);
}

static void expect_set_error(json_t *patterns, const char *part)
{
    char *err = NULL;
    struct mail_ref_set *set = mail_ref_set_new(patterns, &err);
    cr_expect_null(set);
    cr_assert_not_null(err);
    cr_expect(strstr(err, part) != NULL, "error '%s' lacks '%s'", err, part);
    free(err);
    mail_ref_set_free(set);
    json_decref(patterns);
}

Test(mail_ref, bad_configured_patterns_are_reported)
{
    expect_set_error(json_pack("[{s:s, s:s}]", "pattern", "JR(\\d+)", "kind", "job"),
                     "no (?<number>...) group");
    expect_set_error(json_pack("[{s:s, s:s}]", "pattern", "(?<number>[", "kind", "job"),
                     "ref_patterns[0]");
    expect_set_error(json_pack("[{s:s, s:s}]", "pattern", "(?<number>\\d+)", "kind", "asset"),
                     "kind must be job_request or job");
    expect_set_error(json_pack("[{s:s, s:s, s:s}]", "pattern", "(?<number>\\d+)", "kind", "job",
                               "in", "body"),
                     "in must be subject or plus");
    expect_set_error(json_pack("{s:s}", "pattern", "x"), "expected a list");
    expect_set_error(json_pack("[s]", "JR(?<number>\\d+)"), "expected {pattern, kind}");
}

Test(mail_ref, runaway_patterns_stop_at_the_match_limit)
{
    json_t *p = json_pack("[{s:s, s:s}]", "pattern", "^(a+)+(?<number>\\d)$", "kind", "job");
    struct mail_ref_set *set = mail_ref_set_new(p, NULL);
    cr_assert_not_null(set);
    char subject[64];
    memset(subject, 'a', 40);
    subject[40] = '!';
    subject[41] = '\0';
    struct mail_ref r;
    cr_expect_eq(mail_ref_match_subject(set, subject, &r), 0);
    mail_ref_set_free(set);
    json_decref(p);
}

static json_t *message(const char *subject, const char *to, const char *irt, const char *refs)
{
    json_t *m = mail_parse_msg_new();
    mail_parse_add_header(m, "From", "dana@tenant.example");
    if (subject)
        mail_parse_add_header(m, "Subject", subject);
    if (to)
        mail_parse_add_header(m, "To", to);
    if (irt)
        mail_parse_add_header(m, "In-Reply-To", irt);
    if (refs)
        mail_parse_add_header(m, "References", refs);
    return m;
}

static const char *const ours[] = {"fm.example.com"};

Test(mail_ref, find_prefers_subject_then_plus_then_thread)
{
    struct mail_ref r;
    json_t *m = message("Re: [Job 1] x", "helpdesk+JR-2@fm.example.com",
                        "<tb.job_request.3.aa@fm.example.com>", NULL);
    cr_assert_eq(mail_ref_find(NULL, m, ours, 1, &r), 1);
    cr_expect_eq(r.via, MAIL_REF_VIA_SUBJECT);
    cr_expect_str_eq(r.number, "1");
    json_decref(m);
    m = message("Re: x", "helpdesk+JR-2@fm.example.com", "<tb.job_request.3.aa@fm.example.com>",
                NULL);
    cr_assert_eq(mail_ref_find(NULL, m, ours, 1, &r), 1);
    cr_expect_eq(r.via, MAIL_REF_VIA_PLUS);
    cr_expect_str_eq(r.number, "2");
    json_decref(m);
    m = message("Re: x", "helpdesk@fm.example.com", "<tb.job_request.3.aa@fm.example.com>",
                NULL);
    cr_assert_eq(mail_ref_find(NULL, m, ours, 1, &r), 1);
    cr_expect_eq(r.via, MAIL_REF_VIA_THREAD);
    cr_expect_str_eq(r.number, "3");
    json_decref(m);
}

Test(mail_ref, thread_references_are_read_newest_first)
{
    struct mail_ref r;
    json_t *m = message("Re: x", NULL, "<someone@tenant.example>",
                        "<tb.job.10.aa@fm.example.com> <x@y.example> "
                        "<tb.job.11.bb@fm.example.com> <z@y.example>");
    cr_assert_eq(mail_ref_find(NULL, m, ours, 1, &r), 1);
    cr_expect_eq(r.kind, MAIL_REF_JOB);
    cr_expect_str_eq(r.number, "11");
    json_decref(m);
}

Test(mail_ref, references_outside_our_domains_are_ignored)
{
    struct mail_ref r;
    json_t *m = message("Re: x", "other+JR-2@elsewhere.example",
                        "<tb.job_request.3.aa@elsewhere.example>", NULL);
    cr_expect_eq(mail_ref_find(NULL, m, ours, 1, &r), 0);
    cr_expect_eq(mail_ref_find(NULL, m, NULL, 0, &r), 1, "no domains configured: any domain");
    json_decref(m);
}

Test(mail_ref, kind_names_parse_and_print)
{
    enum mail_ref_kind k;
    cr_expect_eq(mail_ref_kind_parse("job_request", &k), 0);
    cr_expect_eq(k, MAIL_REF_JOB_REQUEST);
    cr_expect_eq(mail_ref_kind_parse("JOB", &k), 0);
    cr_expect_eq(k, MAIL_REF_JOB);
    cr_expect_eq(mail_ref_kind_parse("asset", &k), -1);
    cr_expect_str_eq(mail_ref_kind_name(MAIL_REF_JOB_REQUEST), "job_request");
    cr_expect_str_eq(mail_ref_via_name(MAIL_REF_VIA_PLUS), "plus");
}
