/* loop: machine mail is recognised (never answer a machine) and the sender breaker trips. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mail/loop.h"
#include "mail/parse.h"

static const char *const ours[] = {"fm.example.com"};
static const struct mail_loop_config cfg = {ours, 1, NULL};

/* A person's mail from tenant.example with the extra header lines given. */
static json_t *msg_with(const char *extra, const char *subject)
{
    json_t *m = mail_parse_msg_new();
    cr_assert_not_null(m);
    cr_assert_eq(mail_parse_add_header(m, "From", "Dana <dana@tenant.example>"), 0);
    cr_assert_eq(mail_parse_add_header(m, "Subject", subject ? subject : "Radiator leaks"), 0);
    cr_assert_eq(mail_parse_add_header(m, "Message-ID", "<m1@tenant.example>"), 0);
    if (extra) {
        char *copy = strdup(extra);
        char *line = copy;
        while (line && *line) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            char *colon = strchr(line, ':');
            cr_assert_not_null(colon, "bad test header %s", line);
            *colon = '\0';
            cr_assert_eq(mail_parse_add_header(m, line, colon + 1), 0);
            line = nl ? nl + 1 : NULL;
        }
        free(copy);
    }
    return m;
}

static void expect_auto(const char *extra, const char *subject, const char *reason_part)
{
    json_t *m = msg_with(extra, subject);
    char reason[160];
    cr_expect_eq(mail_loop_is_auto(m, &cfg, reason, sizeof reason), 1, "not auto: %s / %s",
                 extra ? extra : "", subject ? subject : "");
    cr_expect(strstr(reason, reason_part) != NULL, "reason '%s' lacks '%s'", reason,
              reason_part);
    json_decref(m);
}

static void expect_person(const char *extra, const char *subject)
{
    json_t *m = msg_with(extra, subject);
    char reason[160];
    cr_expect_eq(mail_loop_is_auto(m, &cfg, reason, sizeof reason), 0, "auto (%s): %s / %s",
                 reason, extra ? extra : "", subject ? subject : "");
    cr_expect_str_eq(reason, "");
    json_decref(m);
}

Test(mail_loop, a_persons_mail_is_not_machine_mail)
{
    expect_person(NULL, NULL);
    expect_person("Auto-Submitted: no", NULL);
    expect_person("Precedence: normal", NULL);
    expect_person("X-Auto-Response-Suppress: DR, RN, NRN", NULL);
    expect_person("X-Loop: someone-else@other.example", NULL);
    expect_person(NULL, "Auto: Tiefgarage Tor klemmt");
    expect_person(NULL, "Re: [JR-1042] out of order lift");
}

Test(mail_loop, rfc3834_auto_submitted_is_machine_mail)
{
    expect_auto("Auto-Submitted: auto-replied", NULL, "auto-submitted: auto-replied");
    expect_auto("Auto-Submitted: Auto-Generated (vacation)", NULL,
                "auto-submitted: auto-generated");
}

Test(mail_loop, bulk_and_list_mail_is_machine_mail)
{
    expect_auto("Precedence: bulk", NULL, "precedence: bulk");
    expect_auto("Precedence: junk", NULL, "precedence: junk");
    expect_auto("Precedence: list", NULL, "precedence: list");
    expect_auto("List-Id: Facilities news <news.fm.example.com>", NULL, "list-id");
    expect_auto("List-Unsubscribe: <mailto:leave@lists.example>", NULL, "list-unsubscribe");
}

Test(mail_loop, exchange_and_legacy_autoreply_markers_are_machine_mail)
{
    expect_auto("X-Auto-Response-Suppress: All", NULL, "x-auto-response-suppress");
    expect_auto("X-Auto-Response-Suppress: DR, OOF, AutoReply", NULL, "x-auto-response-suppress");
    expect_auto("X-Autoreply: yes", NULL, "x-autoreply");
    expect_auto("X-Autorespond: 1", NULL, "x-autorespond");
}

Test(mail_loop, x_loop_naming_us_is_machine_mail)
{
    expect_auto("X-Loop: trackbridge", NULL, "x-loop");
    expect_auto("X-Loop: helpdesk@fm.example.com", NULL, "x-loop");
    json_t *m = msg_with("X-Loop: bridge-7", NULL);
    struct mail_loop_config own = {ours, 1, "bridge-7"};
    char reason[64];
    cr_expect_eq(mail_loop_is_auto(m, &own, reason, sizeof reason), 1);
    json_decref(m);
}

Test(mail_loop, null_and_daemon_senders_are_machine_mail)
{
    expect_auto("Return-Path: <>", NULL, "null return path");
    expect_auto("Return-Path: <MAILER-DAEMON@mx.example>", NULL, "return path");
    json_t *m = mail_parse_msg_new();
    mail_parse_add_header(m, "From", "Mail Delivery System <MAILER-DAEMON@mx.tenant.example>");
    char reason[160];
    cr_expect_eq(mail_loop_is_auto(m, &cfg, reason, sizeof reason), 1);
    cr_expect(strstr(reason, "mailer-daemon@mx.tenant.example") != NULL, "%s", reason);
    json_decref(m);
    m = mail_parse_msg_new();
    mail_parse_add_header(m, "From", "postmaster@tenant.example");
    cr_expect_eq(mail_loop_is_auto(m, &cfg, reason, sizeof reason), 1);
    json_decref(m);
    m = mail_parse_msg_new();
    cr_expect_eq(mail_loop_is_auto(m, &cfg, reason, sizeof reason), 1, "no From at all");
    cr_expect_str_eq(reason, "no sender address");
    json_decref(m);
}

Test(mail_loop, delivery_and_read_reports_are_machine_mail)
{
    expect_auto("Content-Type: multipart/report; report-type=delivery-status; boundary=x",
                NULL, "bounce: delivery-status report");
    expect_auto("Content-Type: multipart/report; report-type=\"disposition-notification\"; "
                "boundary=x",
                NULL, "receipt: disposition-notification");
    expect_auto("Content-Type: multipart/report; boundary=x; report-type=feedback-report",
                NULL, "report: feedback-report");
}

Test(mail_loop, our_own_mail_coming_back_is_machine_mail)
{
    expect_auto("X-Trackbridge: 1", NULL, "own mail: X-Trackbridge header");
    json_t *m = mail_parse_msg_new();
    mail_parse_add_header(m, "From", "helpdesk@fm.example.com");
    mail_parse_add_header(m, "Message-ID", "<tb.job.4711.0011223344556677@fm.example.com>");
    char reason[160];
    cr_expect_eq(mail_loop_is_auto(m, &cfg, reason, sizeof reason), 1);
    cr_expect(strstr(reason, "own mail: our Message-ID") != NULL, "%s", reason);
    json_decref(m);
    m = mail_parse_msg_new();
    mail_parse_add_header(m, "From", "helpdesk@fm.example.com");
    mail_parse_add_header(m, "Message-ID", "<tb.mail.8899aabbccddeeff@fm.example.com>");
    cr_expect_eq(mail_loop_is_auto(m, &cfg, reason, sizeof reason), 1, "ticketless own id");
    json_decref(m);
}

Test(mail_loop, our_id_format_from_a_foreign_domain_is_not_own_mail)
{
    json_t *m = mail_parse_msg_new();
    mail_parse_add_header(m, "From", "someone@other.example");
    mail_parse_add_header(m, "Message-ID", "<tb.job.4711.0011223344556677@other.example>");
    char reason[160];
    cr_expect_eq(mail_loop_is_auto(m, &cfg, reason, sizeof reason), 0, "%s", reason);
    json_decref(m);
}

Test(mail_loop, out_of_office_and_bounce_subjects_are_machine_mail)
{
    expect_auto(NULL, "Automatic reply: [JR-1042] Door closer", "auto-reply subject");
    expect_auto(NULL, "Out of Office: back on Monday", "auto-reply subject");
    expect_auto(NULL, "Abwesenheitsnotiz: Urlaub", "auto-reply subject");
    expect_auto(NULL, "R\xc3\xa9ponse automatique : absent", "auto-reply subject");
    expect_auto(NULL, "Re: Lift (Out of Office)", "auto-reply subject");
    expect_auto(NULL, "Undeliverable: [JR-1099] Your request", "auto-reply subject");
}

Test(mail_loop, our_domain_matches_subdomains_but_not_lookalikes)
{
    cr_expect(mail_loop_our_domain(&cfg, "fm.example.com"));
    cr_expect(mail_loop_our_domain(&cfg, "MX.FM.example.com"));
    cr_expect_not(mail_loop_our_domain(&cfg, "evilfm.example.com"));
    cr_expect_not(mail_loop_our_domain(&cfg, "example.com"));
    cr_expect_not(mail_loop_our_domain(NULL, "fm.example.com"));
}

Test(mail_loop, breaker_trips_after_the_budget_and_resets_with_the_window)
{
    struct mail_loop_breaker *b = mail_loop_breaker_new(3, 60000, 100);
    cr_assert_not_null(b);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(mail_loop_breaker_hit(b, "bot@x.example", 1000 + i), MAIL_BREAKER_PASS);
    cr_expect_eq(mail_loop_breaker_hit(b, "BOT@X.example", 1010), MAIL_BREAKER_TRIP);
    cr_expect_eq(mail_loop_breaker_hit(b, "bot@x.example", 50000), MAIL_BREAKER_TRIP);
    cr_expect_eq(mail_loop_breaker_hit(b, "person@x.example", 50000), MAIL_BREAKER_PASS);
    cr_expect_eq(mail_loop_breaker_hit(b, "bot@x.example", 61000), MAIL_BREAKER_PASS);
    mail_loop_breaker_free(b);
}

Test(mail_loop, breaker_memory_stays_within_its_sender_cap)
{
    struct mail_loop_breaker *b = mail_loop_breaker_new(2, 60000, 8);
    cr_assert_not_null(b);
    char addr[64];
    for (int i = 0; i < 500; i++) {
        snprintf(addr, sizeof addr, "s%d@x.example", i);
        cr_expect_eq(mail_loop_breaker_hit(b, addr, 1000 + i), MAIL_BREAKER_PASS);
        cr_assert_leq(mail_loop_breaker_size(b), 8);
    }
    /* the most recent senders are still counted */
    cr_expect_eq(mail_loop_breaker_hit(b, "s499@x.example", 2000), MAIL_BREAKER_PASS);
    cr_expect_eq(mail_loop_breaker_hit(b, "s499@x.example", 2001), MAIL_BREAKER_TRIP);
    mail_loop_breaker_free(b);
}

Test(mail_loop, breaker_refuses_meaningless_settings)
{
    cr_expect_null(mail_loop_breaker_new(0, 1000, 10));
    cr_expect_null(mail_loop_breaker_new(5, 0, 10));
    cr_expect_null(mail_loop_breaker_new(5, 1000, 0));
    mail_loop_breaker_free(NULL);
    cr_expect_eq(mail_loop_breaker_hit(NULL, "a@b", 0), MAIL_BREAKER_PASS);
}
