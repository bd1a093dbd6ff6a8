/* Golden cases for the email adapter: every tests/golden/mail/NAME.eml (a raw message) or
 * NAME.post (a provider request: "Content-Type: …", a blank line, the body) is run through
 * adapter_email_run and compared with NAME.json — the events, or {"reject": reason}.
 * Options come from NAME.options.json when present, else {"our_domains": ["fm.example.com"]}.
 * TB_GOLDEN_UPDATE=1 (with --jobs 1) rewrites the expected files; review the diff. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/util.h"
#include "testutil.h"

#define GOLDEN_RECEIVED_AT "2025-06-05T00:00:00.000Z"

static char *golden_path(const char *name)
{
    return util_asprintf("%s/tests/golden/mail/%s", tu_env("TB_SRC", "."), name);
}

/* Runs one corpus file; returns the events, or {"reject": err}. New reference. */
static json_t *golden_run(const char *file)
{
    char *path = golden_path(file);
    size_t len = 0;
    char *data = util_read_file(path, 64 << 20, &len);
    cr_assert_not_null(data, "cannot read %s", path);
    const char *body = data;
    char ct[512] = "message/rfc822";
    size_t blen = len;
    if (strstr(file, ".post")) {
        const char *end = strstr(data, "\r\n\r\n");
        cr_assert(end && strncmp(data, "Content-Type: ", 14) == 0, "%s: no Content-Type line",
                  file);
        size_t cl = (size_t)(end - data) - 14;
        cr_assert(cl < sizeof ct);
        memcpy(ct, data + 14, cl);
        ct[cl] = '\0';
        body = end + 4;
        blen = len - (size_t)(body - data);
    }
    char base[256];
    snprintf(base, sizeof base, "%.*s", (int)(strrchr(file, '.') - file), file);
    char *opath = util_asprintf("%s/tests/golden/mail/%s.options.json", tu_env("TB_SRC", "."),
                                base);
    json_t *opts = json_load_file(opath, 0, NULL);
    if (!opts)
        opts = json_pack("{s:[s]}", "our_domains", "fm.example.com");
    struct adapter_input in = {body, blen, ct, NULL, NULL, "mailbox", GOLDEN_RECEIVED_AT, opts, 0};
    json_t *events = NULL;
    char *err = NULL;
    enum adapter_result r = adapter_email_run(&in, NULL, &events, &err);
    json_t *out = r == ADAPTER_OK ? events : json_pack("{s:s}", "reject", err ? err : "");
    if (r != ADAPTER_OK)
        json_decref(events);
    free(err);
    json_decref(opts);
    free(opath);
    free(data);
    free(path);
    return out;
}

static void golden_case(const char *file)
{
    json_t *got = golden_run(file);
    char base[256];
    snprintf(base, sizeof base, "%.*s.json", (int)(strrchr(file, '.') - file), file);
    char *epath = golden_path(base);
    const char *update = getenv("TB_GOLDEN_UPDATE");
    if (update && strcmp(update, "1") == 0) {
        cr_assert_eq(json_dump_file(got, epath, JSON_INDENT(2)), 0);
        FILE *f = fopen(epath, "a");
        if (f) {
            fputc('\n', f);
            fclose(f);
        }
    }
    json_error_t jerr;
    json_t *want = json_load_file(epath, 0, &jerr);
    cr_assert_not_null(want, "%s: %s", epath, jerr.text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(2));
        cr_log_error("%s differs from %s; got:\n%s", file, base, g ? g : "");
        free(g);
        cr_assert_fail("%s: event differs from the golden file", file);
    }
    json_decref(want);
    json_decref(got);
    free(epath);
}

Test(mail_golden, plain_text_mail_keeps_the_body_and_strips_the_signature)
{
    golden_case("plain.eml");
}
Test(mail_golden, multipart_alternative_prefers_the_plain_part)
{
    golden_case("alternative.eml");
}
Test(mail_golden, quoted_printable_windows_1252_and_encoded_word_subject_become_utf8)
{
    golden_case("qp_cp1252.eml");
}
Test(mail_golden, base64_utf8_text_with_attachments_lists_and_keeps_small_ones)
{
    golden_case("base64_attachments.eml");
}
Test(mail_golden, reply_with_quotes_and_jr_subject_references_the_job_request)
{
    golden_case("reply_jr.eml");
}
Test(mail_golden, outlook_reply_loses_the_original_message_block)
{
    golden_case("outlook_reply.eml");
}
Test(mail_golden, german_outlook_reply_loses_the_von_gesendet_block)
{
    golden_case("outlook_de_reply.eml");
}
Test(mail_golden, gmail_reply_loses_the_wrapped_on_wrote_history)
{
    golden_case("gmail_reply.eml");
}
Test(mail_golden, out_of_office_reply_is_machine_mail)
{
    golden_case("ooo.eml");
}
Test(mail_golden, delivery_status_bounce_is_machine_mail)
{
    golden_case("bounce.eml");
}
Test(mail_golden, deeply_nested_mime_is_rejected_by_the_depth_limit)
{
    golden_case("mime_depth_bomb.eml");
}
Test(mail_golden, mime_with_hundreds_of_parts_is_rejected_by_the_part_limit)
{
    golden_case("mime_parts_bomb.eml");
}
Test(mail_golden, encoded_crlf_in_headers_comes_out_on_one_line)
{
    golden_case("header_injection.eml");
}
Test(mail_golden, html_only_mail_is_converted_to_readable_text)
{
    golden_case("html_only.eml");
}
Test(mail_golden, bms_alarm_mail_becomes_an_event_with_the_alarm_text)
{
    golden_case("bms_alarm.eml");
}
Test(mail_golden, format_flowed_is_unwrapped_and_plus_address_references_the_ticket)
{
    golden_case("flowed_plus.eml");
}
Test(mail_golden, our_own_mail_coming_back_is_machine_mail)
{
    golden_case("own_mail.eml");
}
Test(mail_golden, provider_reference_message_parses_raw)
{
    golden_case("provider_raw.eml");
}
Test(mail_golden, sendgrid_parsed_fields_post_gives_the_event)
{
    golden_case("provider_sendgrid.post");
}
Test(mail_golden, sendgrid_raw_email_post_gives_the_event)
{
    golden_case("provider_sendgrid_raw.post");
}
Test(mail_golden, mailgun_urlencoded_post_gives_the_event)
{
    golden_case("provider_mailgun.post");
}
Test(mail_golden, mailgun_multipart_post_gives_the_event_with_its_attachment)
{
    golden_case("provider_mailgun_multipart.post");
}
Test(mail_golden, postmark_json_post_gives_the_event)
{
    golden_case("provider_postmark.post");
}

/* Every input in the corpus has an expected output and matches it, including files added
 * without a named test above. */
Test(mail_golden, every_corpus_input_has_a_matching_golden_file)
{
    char *dir = golden_path("");
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if ((l > 4 && strcmp(e->d_name + l - 4, ".eml") == 0) ||
            (l > 5 && strcmp(e->d_name + l - 5, ".post") == 0)) {
            golden_case(e->d_name);
            n++;
        }
    }
    closedir(d);
    free(dir);
    cr_assert_geq(n, 20, "the corpus has only %d inputs", n);
}
