/* The email adapter: content types, providers, the normalised event fields. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"

static const char *const MAIL =
    "From: Dana <dana@tenant.example>\r\nTo: helpdesk@fm.example.com\r\n"
    "Subject: Radiator leaks\r\nDate: Wed, 04 Jun 2025 14:05:31 +0100\r\n"
    "Message-ID: <m1@tenant.example>\r\n\r\nIt drips.\r\n\r\nSent from my iPhone\r\n";

static enum adapter_result run(const char *body, const char *ct, json_t *opts, json_t **ev,
                               char **err)
{
    struct adapter_input in = {body, strlen(body), ct, NULL, NULL, "mailbox",
                               "2025-06-05T00:00:00.000Z", opts, 0};
    json_t *events = NULL;
    *err = NULL;
    enum adapter_result r = adapter_email_run(&in, NULL, &events, err);
    *ev = NULL;
    if (r == ADAPTER_OK) {
        cr_assert_eq(json_array_size(events), 1, "one event per message");
        *ev = json_incref(json_array_get(events, 0));
    } else {
        cr_assert_null(events);
        cr_assert_not_null(*err);
    }
    json_decref(events);
    return r;
}

static const char *s(json_t *ev, const char *k)
{
    const char *v = json_string_value(json_object_get(ev, k));
    cr_assert_not_null(v, "no string field %s", k);
    return v;
}

Test(mail_adapter, raw_message_gives_one_event_with_the_normalised_fields)
{
    json_t *ev;
    char *err;
    cr_assert_eq(run(MAIL, "message/rfc822", NULL, &ev, &err), ADAPTER_OK);
    cr_expect_str_eq(s(ev, "source"), "mailbox");
    cr_expect_str_eq(s(ev, "kind"), "email");
    cr_expect_str_eq(s(ev, "status"), "firing");
    cr_expect_str_eq(s(ev, "key"), "m1@tenant.example");
    cr_expect_str_eq(s(ev, "severity"), "");
    cr_expect_str_eq(s(ev, "title"), "Radiator leaks");
    cr_expect_str_eq(s(ev, "text"), "It drips.");
    cr_expect_str_eq(s(ev, "time"), "2025-06-04T13:05:31.000Z");
    cr_expect_str_eq(s(ev, "url"), "");
    cr_expect_str_eq(s(ev, "site"), "");
    cr_expect(json_is_object(json_object_get(ev, "labels")));
    cr_expect_eq(json_object_size(json_object_get(ev, "labels")), 0);
    cr_expect(json_is_null(json_object_get(ev, "ticket_ref")));
    cr_expect(json_is_false(json_object_get(ev, "auto")));
    cr_expect_str_eq(s(ev, "auto_reason"), "");
    cr_expect_str_eq(s(ev, "provider"), "raw");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(ev, "from"), "domain")),
                     "tenant.example");
    json_decref(ev);
}

Test(mail_adapter, raw_keeps_headers_and_fields_but_not_the_bodies)
{
    json_t *ev;
    char *err;
    json_t *opts = json_pack("{s:b}", "keep_attachments", 1);
    const char *m = "From: a@x.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                    "--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n"
                    "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
                    "filename=a.pdf\r\n\r\n%PDF\r\n--b--\r\n";
    cr_assert_eq(run(m, "message/rfc822", opts, &ev, &err), ADAPTER_OK, "%s", err);
    json_t *raw = json_object_get(ev, "raw");
    cr_assert(json_is_object(raw));
    cr_expect_null(json_object_get(raw, "body"));
    cr_expect_null(json_object_get(raw, "body_stripped"));
    cr_expect_null(json_object_get(raw, "html"));
    cr_expect_not_null(json_object_get(raw, "headers"));
    json_t *att = json_array_get(json_object_get(raw, "attachments"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(att, "name")), "a.pdf");
    cr_expect_null(json_object_get(att, "content"));
    cr_expect_not_null(json_object_get(json_array_get(json_object_get(ev, "attachments"), 0),
                                       "content"));
    cr_expect_str_eq(s(ev, "body"), "hi");
    json_decref(ev);
    json_decref(opts);
}

Test(mail_adapter, text_plain_from_a_pipe_and_missing_content_type_are_raw_mail)
{
    json_t *ev;
    char *err;
    cr_expect_eq(run(MAIL, "text/plain", NULL, &ev, &err), ADAPTER_OK);
    json_decref(ev);
    cr_expect_eq(run(MAIL, NULL, NULL, &ev, &err), ADAPTER_OK);
    json_decref(ev);
}

Test(mail_adapter, key_and_time_fall_back_when_the_mail_lacks_them)
{
    json_t *ev, *ev2;
    char *err;
    const char *m = "From: a@x.example\r\nSubject: no ids\r\n\r\nbody\r\n";
    cr_assert_eq(run(m, "message/rfc822", NULL, &ev, &err), ADAPTER_OK);
    cr_expect_eq(strncmp(s(ev, "key"), "body-sha256:", 12), 0, "%s", s(ev, "key"));
    cr_expect_str_eq(s(ev, "time"), "2025-06-05T00:00:00.000Z");
    cr_assert_eq(run(m, "message/rfc822", NULL, &ev2, &err), ADAPTER_OK);
    cr_expect_str_eq(s(ev, "key"), s(ev2, "key"), "the same bytes give the same key");
    json_decref(ev);
    json_decref(ev2);
}

Test(mail_adapter, key_is_the_thread_root)
{
    json_t *ev;
    char *err;
    const char *m = "From: a@x.example\r\nMessage-ID: <own@x>\r\nIn-Reply-To: <parent@x>\r\n"
                    "References: <root@x> <parent@x>\r\n\r\nb\r\n";
    cr_assert_eq(run(m, "message/rfc822", NULL, &ev, &err), ADAPTER_OK);
    cr_expect_str_eq(s(ev, "key"), "root@x");
    json_decref(ev);
    m = "From: a@x.example\r\nMessage-ID: <own@x>\r\nIn-Reply-To: <parent@x>\r\n\r\nb\r\n";
    cr_assert_eq(run(m, "message/rfc822", NULL, &ev, &err), ADAPTER_OK);
    cr_expect_str_eq(s(ev, "key"), "parent@x");
    json_decref(ev);
}

Test(mail_adapter, machine_mail_and_references_are_reported)
{
    json_t *ev;
    char *err;
    const char *m = "From: a@x.example\r\nSubject: Automatic reply: [Job 4711] visit\r\n"
                    "Auto-Submitted: auto-replied\r\n\r\naway\r\n";
    cr_assert_eq(run(m, "message/rfc822", NULL, &ev, &err), ADAPTER_OK);
    cr_expect(json_is_true(json_object_get(ev, "auto")));
    cr_expect_str_eq(s(ev, "auto_reason"), "auto-submitted: auto-replied");
    json_t *ref = json_object_get(ev, "ticket_ref");
    cr_expect_str_eq(json_string_value(json_object_get(ref, "kind")), "job");
    cr_expect_str_eq(json_string_value(json_object_get(ref, "number")), "4711");
    cr_expect_str_eq(json_string_value(json_object_get(ref, "via")), "subject");
    json_decref(ev);
}

Test(mail_adapter, configured_reference_patterns_apply)
{
    json_t *ev;
    char *err;
    json_t *opts = json_pack("{s:[{s:s, s:s}]}", "ref_patterns", "pattern",
                             "Ticket (?<number>\\d+)", "kind", "job_request");
    const char *m = "From: a@x.example\r\nSubject: Ticket 55 update\r\n\r\nb\r\n";
    cr_assert_eq(run(m, "message/rfc822", opts, &ev, &err), ADAPTER_OK);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(ev, "ticket_ref"),
                                                       "number")),
                     "55");
    json_decref(ev);
    json_decref(opts);
}

static void expect_reject(const char *body, const char *ct, json_t *opts, const char *part)
{
    json_t *ev;
    char *err;
    cr_assert_eq(run(body, ct, opts, &ev, &err), ADAPTER_REJECT);
    cr_expect(strstr(err, part) != NULL, "error '%s' lacks '%s'", err, part);
    free(err);
    json_decref(opts);
}

Test(mail_adapter, unusable_requests_are_rejected_with_a_reason)
{
    expect_reject(MAIL, "image/png", NULL, "not accepted by the email adapter");
    expect_reject("{\"alert\":1}", "application/json", NULL, "not a Postmark inbound post");
    expect_reject("{\"From\":", "application/json", NULL, "line 1");
    expect_reject("from=a%40b&subject=x", "application/x-www-form-urlencoded", NULL,
                  "set the provider option");
    expect_reject(MAIL, "message/rfc822", json_pack("{s:s}", "provider", "postmark"),
                  "does not fit provider postmark");
    expect_reject("x=1", "application/x-www-form-urlencoded",
                  json_pack("{s:s}", "provider", "raw"), "does not fit provider raw");
    expect_reject(MAIL, "message/rfc822", json_pack("{s:s}", "bogus", "x"),
                  "unknown email option: bogus");
    expect_reject("no header block here\n", "message/rfc822", NULL, "not a mail message");
}

Test(mail_adapter, forced_provider_reads_an_ambiguous_form)
{
    json_t *ev;
    char *err;
    json_t *opts = json_pack("{s:s}", "provider", "mailgun");
    cr_assert_eq(run("from=Dana+%3Cdana%40tenant.example%3E&subject=Hi&body-plain-x=1",
                     "application/x-www-form-urlencoded", opts, &ev, &err),
                 ADAPTER_OK, "%s", err ? err : "");
    cr_expect_str_eq(s(ev, "provider"), "mailgun");
    cr_expect_str_eq(s(ev, "title"), "Hi");
    json_decref(ev);
    json_decref(opts);
}

Test(mail_adapter, message_over_the_configured_size_is_rejected)
{
    char big[4096];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *m = NULL;
    size_t n = strlen(MAIL) + sizeof big;
    m = malloc(n);
    snprintf(m, n, "%s%s", MAIL, big);
    expect_reject(m, "message/rfc822", json_pack("{s:i}", "max_message_bytes", 2048),
                  "larger than the limit of 2048");
    free(m);
}
