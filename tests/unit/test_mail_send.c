/* Unit tests for mail/send: building outbox messages into RFC 5322 text (headers, RFC 2047,
 * quoted-printable, multipart, threading, header injection), Message-IDs, the built-in
 * notices and queueing into a real store. Messages are read back with the GMime parser. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "common/util.h"
#include "mail/parse.h"
#include "mail/ref.h"
#include "mail/send.h"
#include "store.h"
#include "testutil.h"

#define FROM "Facilities Helpdesk <helpdesk@fm.example.com>"

static struct mail_built built;
static json_t *parsed;

static void fini(void)
{
    mail_built_clear(&built);
    json_decref(parsed);
    parsed = NULL;
}

TestSuite(mail_send, .fini = fini, .timeout = 30);

/* Builds msg (a JSON text) and parses the result back; fails the test on any error. */
static void build(const char *json, const char *message_id)
{
    json_error_t je;
    json_t *msg = json_loads(json, 0, &je);
    cr_assert_not_null(msg, "bad test JSON: %s", je.text);
    char *err = NULL;
    int rc = mail_send_build(msg, FROM, message_id, 1700000000000, &built, &err);
    json_decref(msg);
    cr_assert_eq(rc, 0, "build failed: %s", err ? err : "?");
    cr_assert_null(err);
    char *perr = NULL;
    cr_assert_eq(mail_parse_message(built.data, built.len, NULL, &parsed, &perr), MAIL_OK,
                 "our own message does not parse: %s", perr ? perr : "?");
}

static char *build_fails(const char *json)
{
    json_t *msg = json_loads(json, 0, NULL);
    cr_assert_not_null(msg);
    char *err = NULL;
    struct mail_built b;
    int rc = mail_send_build(msg, FROM, NULL, 0, &b, &err);
    json_decref(msg);
    cr_assert_eq(rc, -1, "expected a refusal");
    cr_assert_not_null(err);
    cr_assert_null(b.data);
    return err;
}

static const char *hdr(const char *name)
{
    return json_string_value(json_object_get(json_object_get(parsed, "headers"), name));
}

/* Counts lines of the raw header block that start with prefix (case-sensitive). */
static int count_header_lines(const char *prefix)
{
    int n = 0;
    const char *end = strstr(built.data, "\r\n\r\n");
    cr_assert_not_null(end);
    size_t pl = strlen(prefix);
    for (const char *p = built.data; p && p < end; p = strstr(p, "\r\n")) {
        if (p != built.data)
            p += 2;
        if (strncasecmp(p, prefix, pl) == 0)
            n++;
        if (p >= end)
            break;
    }
    return n;
}

static void assert_lines_short_and_crlf(void)
{
    size_t col = 0;
    for (size_t i = 0; i < built.len; i++) {
        char c = built.data[i];
        if (c == '\n') {
            cr_assert(i > 0 && built.data[i - 1] == '\r', "bare LF at %zu", i);
            col = 0;
            continue;
        }
        if (c == '\r') {
            cr_assert(i + 1 < built.len && built.data[i + 1] == '\n', "bare CR at %zu", i);
            continue;
        }
        cr_assert(++col <= 78, "line longer than 78 at byte %zu", i);
    }
}

Test(mail_send, a_plain_message_carries_every_required_header)
{
    build("{\"to\": \"alice@example.org\", \"subject\": \"Boiler pressure low\","
          " \"text\": \"Please check the boiler.\\n\"}",
          NULL);
    cr_assert_str_eq(json_string_value(json_object_get(parsed, "subject")), "Boiler pressure low");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(parsed, "from"), "address")),
                     "helpdesk@fm.example.com");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(parsed, "to"), 0)),
                     "alice@example.org");
    cr_assert_str_eq(hdr("auto-submitted"), "auto-generated");
    cr_assert_str_eq(hdr("x-auto-response-suppress"), "All");
    cr_assert_not_null(hdr("x-trackbridge"));
    cr_assert_str_eq(hdr("mime-version"), "1.0");
    cr_assert_not_null(strstr(hdr("content-type"), "text/plain"));
    cr_assert_not_null(strstr(hdr("content-type"), "charset=UTF-8"));
    cr_assert_str_eq(hdr("content-transfer-encoding"), "7bit");
    cr_assert_str_eq(hdr("date"), "Tue, 14 Nov 2023 22:13:20 +0000");
    cr_assert_str_eq(json_string_value(json_object_get(parsed, "body")),
                     "Please check the boiler.");
    cr_assert_str_eq(built.from_addr, "helpdesk@fm.example.com");
    cr_assert_eq(built.nrcpt, 1);
    cr_assert_str_eq(built.rcpt[0], "alice@example.org");
    cr_assert_str_eq(json_string_value(json_object_get(parsed, "message_id")), built.message_id);
    assert_lines_short_and_crlf();
}

Test(mail_send, a_subject_with_crlf_yields_one_subject_line_and_no_bcc)
{
    build("{\"to\": \"alice@example.org\", \"subject\": \"x\\r\\nBcc: victim@example.com\","
          " \"text\": \"hi\"}",
          NULL);
    cr_assert_eq(count_header_lines("Subject:"), 1);
    cr_assert_eq(count_header_lines("Bcc:"), 0);
    cr_assert_null(hdr("bcc"));
    cr_assert_null(strstr(built.data, "\r\nBcc"));
    cr_assert_str_eq(json_string_value(json_object_get(parsed, "subject")),
                     "x Bcc: victim@example.com");
    cr_assert_eq(built.nrcpt, 1, "the injected address must not become a recipient");
}

Test(mail_send, injection_through_names_ids_and_bare_lf_is_neutralised)
{
    build("{\"to\": \"Bob\\nBcc: victim@example.com <bob@example.org>\","
          " \"subject\": \"a\\rTo: x@y.z\\u2028Cc: q@r.s\", \"text\": \"hi\","
          " \"in_reply_to\": \"<a@b>\\r\\nBcc: victim@example.com\","
          " \"references\": [\"<c@d>\\nBcc: v@x.y\", \"<e@f>\"]}",
          NULL);
    cr_assert_eq(count_header_lines("Bcc:"), 0);
    cr_assert_eq(count_header_lines("To:"), 1);
    cr_assert_eq(count_header_lines("Cc:"), 0);
    cr_assert_eq(count_header_lines("In-Reply-To:"), 0, "an id with CR/LF is dropped");
    cr_assert_eq(built.nrcpt, 1);
    cr_assert_str_eq(built.rcpt[0], "bob@example.org");
    const char *refs = hdr("references");
    cr_assert_not_null(refs);
    cr_assert_not_null(strstr(refs, "<e@f>"));
    cr_assert_null(strstr(refs, "c@d"));
    assert_lines_short_and_crlf();
}

Test(mail_send, a_non_ascii_subject_is_encoded_and_reads_back_the_same)
{
    const char *subj = "Heizung ausgefallen – Gebäude Süd, Raum 3.14 “dringend” ✓ "
                       "und noch ein sehr langer Betreff, der gefaltet werden muss";
    char json[1024];
    snprintf(json, sizeof json, "{\"to\": \"a@example.org\", \"subject\": \"%s\", \"text\": \"x\"}",
             subj);
    build(json, NULL);
    cr_assert_not_null(strstr(built.data, "Subject: =?UTF-8?B?"));
    cr_assert_str_eq(json_string_value(json_object_get(parsed, "subject")), subj);
    assert_lines_short_and_crlf();
}

Test(mail_send, an_ascii_subject_that_looks_encoded_is_encoded)
{
    build("{\"to\": \"a@example.org\", \"subject\": \"=?UTF-8?B?SGk=?=\", \"text\": \"x\"}", NULL);
    cr_assert_str_eq(json_string_value(json_object_get(parsed, "subject")), "=?UTF-8?B?SGk=?=");
}

Test(mail_send, display_names_are_quoted_or_encoded)
{
    build("{\"to\": [\"\\\"Smith, Jo\\\" <jo@example.org>\", \"Jürgen Groß <jg@example.org>\"],"
          " \"cc\": \"Plain Name <pn@example.org>; other@example.org\", \"subject\": \"s\","
          " \"text\": \"x\"}",
          NULL);
    cr_assert_not_null(strstr(built.data, "\"Smith, Jo\" <jo@example.org>"));
    cr_assert_not_null(strstr(built.data, "=?UTF-8?B?"));
    cr_assert_not_null(strstr(built.data, "Plain Name <pn@example.org>"));
    cr_assert_eq(built.nrcpt, 4);
    json_t *to = json_object_get(parsed, "to");
    cr_assert_eq(json_array_size(to), 2);
    cr_assert_str_eq(json_string_value(json_array_get(to, 1)), "jg@example.org");
    cr_assert_eq(json_array_size(json_object_get(parsed, "cc")), 2);
}

Test(mail_send, recipients_repeated_in_to_and_cc_are_sent_once)
{
    build("{\"to\": \"a@example.org, B <b@example.org>\", \"cc\": [\"A@EXAMPLE.ORG\"],"
          " \"subject\": \"s\", \"text\": \"x\"}",
          NULL);
    cr_assert_eq(built.nrcpt, 2);
}

Test(mail_send, a_non_ascii_body_goes_quoted_printable_and_decodes_back)
{
    build("{\"to\": \"a@example.org\", \"subject\": \"s\","
          " \"text\": \"Grüße aus dem Keller = 3 Pumpen\\n.leading dot\\nFrom the boiler room\\n"
          "trailing space \\n"
          "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
          "56789 long line ä\"}",
          NULL);
    cr_assert_str_eq(hdr("content-transfer-encoding"), "quoted-printable");
    cr_assert_not_null(strstr(built.data, "\r\n=2Eleading dot\r\n"));
    cr_assert_not_null(strstr(built.data, "\r\n=46rom the boiler room\r\n"));
    cr_assert_not_null(strstr(built.data, "trailing space=20\r\n"));
    cr_assert_str_eq(
        json_string_value(json_object_get(parsed, "body")),
        "Grüße aus dem Keller = 3 Pumpen\n.leading dot\nFrom the boiler room\n"
        "trailing space \n"
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678"
        "90123456789 long line ä");
    assert_lines_short_and_crlf();
}

Test(mail_send, html_makes_a_multipart_alternative_with_both_parts)
{
    build("{\"to\": \"a@example.org\", \"subject\": \"s\", \"text\": \"plain part\","
          " \"html\": \"<p>html <b>part</b></p>\"}",
          NULL);
    cr_assert_not_null(strstr(hdr("content-type"), "multipart/alternative"));
    cr_assert_str_eq(json_string_value(json_object_get(parsed, "body")), "plain part");
    cr_assert_not_null(strstr(json_string_value(json_object_get(parsed, "html")), "<b>part</b>"));
    assert_lines_short_and_crlf();
}

Test(mail_send, html_alone_gets_a_text_part_derived_from_it)
{
    build(
        "{\"to\": \"a@example.org\", \"subject\": \"s\", \"html\": \"<p>Hello <b>there</b></p>\"}",
        NULL);
    cr_assert_not_null(strstr(json_string_value(json_object_get(parsed, "body")), "Hello there"));
}

Test(mail_send, a_ticket_ref_gives_a_message_id_that_reads_back_as_the_ticket)
{
    build("{\"to\": \"a@example.org\", \"subject\": \"s\", \"text\": \"x\","
          " \"ref\": {\"kind\": \"job_request\", \"number\": 1234}}",
          NULL);
    struct mail_ref r;
    char domain[64];
    cr_assert_eq(mail_ref_parse_message_id(built.message_id, &r, domain, sizeof domain), 0,
                 "not one of our ids: %s", built.message_id);
    cr_assert_eq(r.kind, MAIL_REF_JOB_REQUEST);
    cr_assert_str_eq(r.number, "1234");
    cr_assert_str_eq(domain, "fm.example.com");
    cr_assert_not_null(strstr(built.data, "Message-ID: <tb.job_request.1234."));
}

Test(mail_send, a_seeded_message_id_is_stable_and_a_random_one_is_not)
{
    json_t *m = json_pack("{s:{s:s, s:s}}", "ref", "kind", "job", "number", "77");
    char *a = mail_send_message_id(m, "fm.example.com", "outbox:1:2");
    char *b = mail_send_message_id(m, "fm.example.com", "outbox:1:2");
    char *c = mail_send_message_id(m, "fm.example.com", "outbox:2:2");
    char *d = mail_send_message_id(m, "fm.example.com", NULL);
    char *e = mail_send_message_id(m, "fm.example.com", NULL);
    char *bad = mail_send_message_id(m, "not a domain", NULL);
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c);
    cr_assert_str_neq(d, e);
    cr_assert_null(bad);
    struct mail_ref r;
    cr_assert_eq(mail_ref_parse_message_id(a, &r, NULL, 0), 0);
    cr_assert_eq(r.kind, MAIL_REF_JOB);
    cr_assert_str_eq(r.number, "77");
    char *plain = mail_send_message_id(NULL, "fm.example.com", NULL);
    cr_assert_eq(strncmp(plain, "tb.mail.", 8), 0);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(plain);
    json_decref(m);
}

Test(mail_send, threading_headers_name_the_request_and_keep_references_bounded)
{
    char json[8192];
    size_t n = (size_t)snprintf(json, sizeof json,
                                "{\"to\": \"a@example.org\", \"subject\": \"s\", \"text\": \"x\","
                                " \"in_reply_to\": \"req-9@mail.example.org\", \"references\": [");
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"<r%d@x.example>\"", i ? ", " : "", i);
    snprintf(json + n, sizeof json - n, "]}");
    build(json, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(parsed, "in_reply_to")),
                     "req-9@mail.example.org");
    json_t *refs = json_object_get(parsed, "references");
    cr_assert_eq(json_array_size(refs), MAIL_SEND_MAX_REFERENCES);
    cr_assert_str_eq(json_string_value(json_array_get(refs, 0)), "r0@x.example");
    cr_assert_str_eq(json_string_value(json_array_get(refs, MAIL_SEND_MAX_REFERENCES - 1)),
                     "req-9@mail.example.org");
    assert_lines_short_and_crlf();
}

Test(mail_send, references_as_a_string_are_split_and_deduplicated)
{
    build("{\"to\": \"a@example.org\", \"subject\": \"s\", \"text\": \"x\","
          " \"in_reply_to\": \"<b@x>\", \"references\": \"<a@x> <b@x>\"}",
          NULL);
    json_t *refs = json_object_get(parsed, "references");
    cr_assert_eq(json_array_size(refs), 2);
    cr_assert_str_eq(json_string_value(json_array_get(refs, 1)), "b@x");
}

Test(mail_send, a_rendered_plan_step_is_accepted_for_its_body)
{
    build("{\"op\": \"send_mail\", \"body\": {\"to\": \"a@example.org\", \"subject\": \"s\","
          " \"text\": \"x\", \"in_reply_to\": \"\"}}",
          NULL);
    cr_assert_str_eq(built.rcpt[0], "a@example.org");
    cr_assert_eq(count_header_lines("In-Reply-To:"), 0, "an empty in_reply_to is no header");
}

Test(mail_send, auto_replied_is_carried_over)
{
    build("{\"to\": \"a@example.org\", \"subject\": \"s\", \"text\": \"x\","
          " \"auto\": \"auto-replied\", \"corr_key\": \"k1\", \"request_id\": 42}",
          NULL);
    cr_assert_str_eq(hdr("auto-submitted"), "auto-replied");
    cr_assert_str_eq(built.corr_key, "k1");
    cr_assert_eq(built.request_id, 42);
}

Test(mail_send, malformed_messages_are_refused_with_a_reason)
{
    static const char *const cases[][2] = {
        {"{\"subject\": \"s\", \"text\": \"x\"}", "to"},
        {"{\"to\": \"\", \"subject\": \"s\", \"text\": \"x\"}", "to"},
        {"{\"to\": \"not an address\", \"subject\": \"s\", \"text\": \"x\"}", "address"},
        {"{\"to\": \"a@b..c\", \"subject\": \"s\", \"text\": \"x\"}", "address"},
        {"{\"to\": \"jürgen@example.org\", \"subject\": \"s\", \"text\": \"x\"}", "address"},
        {"{\"to\": 5, \"subject\": \"s\", \"text\": \"x\"}", "to"},
        {"{\"to\": \"a@example.org\", \"text\": \"x\"}", "subject"},
        {"{\"to\": \"a@example.org\", \"subject\": \"s\"}", "text"},
        {"{\"to\": \"a@example.org\", \"subject\": \"s\", \"text\": \"x\", \"auto\": \"no\"}",
         "auto"},
        {"{\"to\": \"a@example.org\", \"subject\": \"s\", \"text\": \"x\","
         " \"ref\": {\"kind\": \"site\", \"number\": 1}}",
         "ref"},
        {"{\"to\": \"a@example.org\", \"subject\": \"s\", \"text\": \"x\","
         " \"ref\": {\"kind\": \"job\", \"number\": \"1 2\"}}",
         "ref.number"},
        {"[1, 2]", "object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = build_fails(cases[i][0]);
        cr_expect_not_null(strstr(err, cases[i][1]), "case %zu: '%s' does not mention %s", i, err,
                           cases[i][1]);
        free(err);
    }
}

Test(mail_send, too_many_recipients_are_refused)
{
    char json[8192];
    size_t n =
        (size_t)snprintf(json, sizeof json, "{\"subject\": \"s\", \"text\": \"x\", \"to\": \"");
    for (int i = 0; i <= MAIL_SEND_MAX_RECIPIENTS; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%su%d@example.org", i ? "," : "", i);
    snprintf(json + n, sizeof json - n, "\"}");
    char *err = build_fails(json);
    cr_assert_not_null(strstr(err, "recipients"));
    free(err);
}

Test(mail_send, the_from_domain_is_read_from_a_display_form)
{
    char d[64];
    cr_assert_eq(mail_send_from_domain("Helpdesk <Help@FM.Example.COM>", d, sizeof d), 0);
    cr_assert_str_eq(d, "fm.example.com");
    cr_assert_eq(mail_send_from_domain("help@fm.example.com", d, sizeof d), 0);
    cr_assert_eq(mail_send_from_domain("no address here", d, sizeof d), -1);
    cr_assert_eq(mail_send_from_domain(NULL, d, sizeof d), -1);
}

Test(mail_send, an_ack_logs_the_ticket_in_subject_and_text_and_threads_to_the_request)
{
    json_t *refs = json_pack("[s]", "root@mail.example.org");
    struct mail_notice n = {.to = "alice@example.org",
                            .kind = MAIL_REF_JOB_REQUEST,
                            .number = "1234",
                            .subject = "Leak in room 4",
                            .in_reply_to = "<req@mail.example.org>",
                            .references = refs,
                            .corr_key = "email:req@mail.example.org",
                            .request_id = 9};
    json_t *m = mail_build_ack(&n);
    cr_assert_not_null(m);
    cr_assert_str_eq(json_string_value(json_object_get(m, "subject")),
                     "[JR-1234] Re: Leak in room 4");
    cr_assert_not_null(strstr(json_string_value(json_object_get(m, "text")), "logged as JR 1234"));
    cr_assert_str_eq(json_string_value(json_object_get(m, "auto")), "auto-replied");
    char *err = NULL;
    cr_assert_eq(mail_send_build(m, FROM, NULL, 0, &built, &err), 0, "%s", err ? err : "");
    cr_assert_not_null(strstr(built.data, "In-Reply-To: <req@mail.example.org>"));
    cr_assert_not_null(
        strstr(built.data, "References: <root@mail.example.org>\r\n <req@mail.example.org>"));
    cr_assert_not_null(strstr(built.data, "Message-ID: <tb.job_request.1234."));
    cr_assert_not_null(strstr(built.data, "Auto-Submitted: auto-replied"));
    struct mail_ref r;
    cr_assert_eq(mail_ref_match_subject(mail_ref_set_default(),
                                        json_string_value(json_object_get(m, "subject")), &r),
                 1, "a reply's subject must lead back to the ticket");
    cr_assert_str_eq(r.number, "1234");
    json_decref(m);
    json_decref(refs);
}

Test(mail_send, a_subject_that_already_names_the_ticket_is_not_tagged_twice)
{
    struct mail_notice n = {.to = "a@example.org",
                            .kind = MAIL_REF_JOB,
                            .number = "55",
                            .subject = "RE: [Job 55] still leaking"};
    json_t *m = mail_build_ack(&n);
    cr_assert_str_eq(json_string_value(json_object_get(m, "subject")),
                     "RE: [Job 55] still leaking");
    json_decref(m);
    n.subject = NULL;
    m = mail_build_completion(&n);
    cr_assert_str_eq(json_string_value(json_object_get(m, "subject")), "[Job-55] Completed:");
    cr_assert_str_eq(json_string_value(json_object_get(m, "auto")), "auto-generated");
    json_decref(m);
    n.to = NULL;
    cr_assert_null(mail_build_ack(&n));
}

Test(mail_send, a_completion_notice_carries_the_note)
{
    struct mail_notice n = {.to = "a@example.org",
                            .kind = MAIL_REF_JOB_REQUEST,
                            .number = "8",
                            .subject = "Door stuck",
                            .note = "Hinge replaced."};
    json_t *m = mail_build_completion(&n);
    cr_assert_str_eq(json_string_value(json_object_get(m, "subject")),
                     "[JR-8] Completed: Door stuck");
    cr_assert_not_null(strstr(json_string_value(json_object_get(m, "text")), "Hinge replaced."));
    char *err = NULL;
    cr_assert_eq(mail_send_check(m, &err), 0);
    json_decref(m);
}

Test(mail_send, a_dead_letter_alert_names_the_delivery_and_builds)
{
    struct mail_dead_letter d = {.admin = "ops@example.org",
                                 .delivery_id = 31,
                                 .op = "create_job",
                                 .corr_key = "am:disk",
                                 .http_status = 400,
                                 .attempts = 4,
                                 .error = "siteId: unknown"};
    json_t *m = mail_build_dead_letter_alert(&d);
    cr_assert_not_null(m);
    cr_assert_not_null(strstr(json_string_value(json_object_get(m, "subject")), "create_job"));
    const char *t = json_string_value(json_object_get(m, "text"));
    cr_assert_not_null(strstr(t, "31"));
    cr_assert_not_null(strstr(t, "siteId: unknown"));
    char *err = NULL;
    cr_assert_eq(mail_send_check(m, &err), 0);
    json_decref(m);
}

Test(mail_send, enqueued_mail_gets_a_ticket_message_id_in_the_outbox)
{
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/state.db", dir);
    struct event_base *base = event_base_new();
    char *err = NULL;
    struct store *s = store_open(path, NULL, base, &err);
    cr_assert_not_null(s, "%s", err ? err : "");
    json_t *m = json_pack("{s:s, s:s, s:s, s:{s:s, s:i}}", "to", "a@example.org", "subject", "s",
                          "text", "x", "ref", "kind", "job_request", "number", 5);
    int64_t id = 0;
    cr_assert_eq(mail_send_enqueue(s, m, FROM, 0, &id, &err), STORE_OK);
    cr_assert_gt(id, 0);
    json_t *bad = json_pack("{s:s}", "subject", "no recipient");
    cr_assert_eq(mail_send_enqueue(s, bad, FROM, 0, NULL, &err), STORE_INVALID);
    cr_assert_not_null(err);
    free(err);
    err = NULL;
    cr_assert_eq(mail_send_enqueue(s, m, "nobody", 0, NULL, &err), STORE_INVALID);
    free(err);
    struct store_outbox_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(store_outbox_due(s, util_now_ms() + 1000, 10, &rows, &n), STORE_OK);
    cr_assert_eq(n, 1);
    struct mail_ref r;
    cr_assert_eq(mail_ref_parse_message_id(rows[0].message_id, &r, NULL, 0), 0);
    cr_assert_str_eq(r.number, "5");
    store_outbox_rows_free(rows, n);
    json_decref(m);
    json_decref(bad);
    store_close(s);
    event_base_free(base);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    tu_run(cmd, NULL);
    free(dir);
}
