/* provider: form bodies, provider detection, SendGrid/Mailgun/Postmark posts and the email
 * options. The fixtures in tests/golden/mail carry one message in six forms; they must all
 * give the same mail fields. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/buf.h"
#include "common/util.h"
#include "mail/provider.h"
#include "testutil.h"

static struct mail_form *form_ok(const char *body, size_t len, const char *ct)
{
    struct mail_form *f = NULL;
    char *err = NULL;
    enum mail_result r = mail_form_parse(body, len, ct, NULL, &f, &err);
    cr_assert_eq(r, MAIL_OK, "form rejected: %s", err ? err : "");
    return f;
}

static char *form_reject(const char *body, size_t len, const char *ct)
{
    struct mail_form *f = NULL;
    char *err = NULL;
    enum mail_result r = mail_form_parse(body, len, ct, NULL, &f, &err);
    cr_assert_eq(r, MAIL_REJECT);
    cr_assert_null(f);
    cr_assert_not_null(err);
    return err;
}

static const char *field(const struct mail_form *f, const char *name)
{
    const struct mail_form_field *fld = mail_form_get(f, name);
    cr_assert_not_null(fld, "no field %s", name);
    return fld->value;
}

Test(mail_provider, urlencoded_forms_decode_plus_and_percent)
{
    const char *b = "a=1&b=x+y%21&c&d=%zz&e=caf%C3%A9&&a=second";
    struct mail_form *f = form_ok(b, strlen(b), "application/x-www-form-urlencoded");
    cr_expect_str_eq(field(f, "a"), "1");
    cr_expect_str_eq(field(f, "b"), "x y!");
    cr_expect_str_eq(field(f, "c"), "");
    cr_expect_str_eq(field(f, "d"), "%zz");
    cr_expect_str_eq(field(f, "e"), "caf\xc3\xa9");
    cr_expect_eq(mail_form_count(f), 6);
    cr_expect_null(mail_form_get(f, "missing"));
    mail_form_free(f);
}

Test(mail_provider, multipart_forms_give_fields_and_files)
{
    const char *b = "--B\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nHello\r\n"
                    "--B\r\nContent-Disposition: form-data; name=\"attachment1\"; "
                    "filename=\"r.txt\"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
                    "line\xe9\r\n--B--\r\n";
    struct mail_form *f = form_ok(b, strlen(b), "multipart/form-data; boundary=B");
    cr_expect_str_eq(field(f, "subject"), "Hello");
    const struct mail_form_field *file = mail_form_get(f, "attachment1");
    cr_assert_not_null(file);
    cr_expect_str_eq(file->filename, "r.txt");
    cr_expect_str_eq(file->content_type, "text/plain");
    cr_expect_str_eq(file->charset, "iso-8859-1");
    cr_expect_eq(file->len, 5);
    cr_expect_null(mail_form_get(f, "subject")->filename);
    mail_form_free(f);
}

Test(mail_provider, broken_forms_are_rejected_with_a_reason)
{
    const char *b = "--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--B--\r\n";
    char *err = form_reject(b, strlen(b), "multipart/form-data");
    cr_expect(strstr(err, "boundary") != NULL, "%s", err);
    free(err);
    err = form_reject(b, strlen(b), "multipart/form-data; boundary=OTHER");
    cr_expect(strstr(err, "no parts") != NULL, "%s", err);
    free(err);
    err = form_reject("x=1", 3, "text/csv");
    cr_expect(strstr(err, "not a form") != NULL, "%s", err);
    free(err);
}

Test(mail_provider, forms_with_too_many_fields_are_rejected)
{
    buf_t b;
    buf_init(&b, 0);
    for (int i = 0; i <= MAIL_FORM_MAX_FIELDS; i++)
        buf_printf(&b, "f%d=v&", i);
    char *err = form_reject(b.data, b.len, "application/x-www-form-urlencoded");
    cr_expect(strstr(err, "more than 1000 fields") != NULL, "%s", err);
    free(err);
    buf_free(&b);
}

Test(mail_provider, providers_are_told_apart_by_type_and_fields)
{
    cr_expect_eq(mail_provider_detect("message/rfc822", NULL, NULL), MAIL_PROVIDER_RAW);
    cr_expect_eq(mail_provider_detect("Text/Plain; charset=utf-8", NULL, NULL),
                 MAIL_PROVIDER_RAW);
    const char *sg = "envelope=%7B%7D&from=a%40b";
    struct mail_form *f = form_ok(sg, strlen(sg), "application/x-www-form-urlencoded");
    cr_expect_eq(mail_provider_detect("multipart/form-data; boundary=x", f, NULL),
                 MAIL_PROVIDER_SENDGRID);
    mail_form_free(f);
    const char *mg = "body-plain=x&signature=ab&from=a%40b";
    f = form_ok(mg, strlen(mg), "application/x-www-form-urlencoded");
    cr_expect_eq(mail_provider_detect("application/x-www-form-urlencoded", f, NULL),
                 MAIL_PROVIDER_MAILGUN);
    mail_form_free(f);
    const char *neither = "from=a%40b&subject=x";
    f = form_ok(neither, strlen(neither), "application/x-www-form-urlencoded");
    cr_expect_eq(mail_provider_detect("application/x-www-form-urlencoded", f, NULL),
                 MAIL_PROVIDER_AUTO);
    mail_form_free(f);
    json_t *pm = json_pack("{s:s, s:s}", "MessageID", "x", "From", "a@b");
    cr_expect_eq(mail_provider_detect("application/json", NULL, pm), MAIL_PROVIDER_POSTMARK);
    json_decref(pm);
    json_t *other = json_pack("{s:s}", "alert", "x");
    cr_expect_eq(mail_provider_detect("application/json", NULL, other), MAIL_PROVIDER_AUTO);
    json_decref(other);
    cr_expect_eq(mail_provider_detect("image/png", NULL, NULL), MAIL_PROVIDER_AUTO);
}

/* The event of a golden fixture (raw .eml or a .post). */
static json_t *fixture_event(const char *file)
{
    char *path = util_asprintf("%s/tests/golden/mail/%s", tu_env("TB_SRC", "."), file);
    size_t len = 0;
    char *data = util_read_file(path, 1 << 20, &len);
    cr_assert_not_null(data, "cannot read %s", path);
    char ct[256] = "message/rfc822";
    const char *body = data;
    if (strstr(file, ".post")) {
        const char *end = strstr(data, "\r\n\r\n");
        cr_assert_not_null(end);
        snprintf(ct, sizeof ct, "%.*s", (int)(end - data - 14), data + 14);
        body = end + 4;
        len -= (size_t)(body - data);
    }
    json_t *opts = json_pack("{s:[s]}", "our_domains", "fm.example.com");
    struct adapter_input in = {body, len, ct, NULL, NULL, "mail", "2025-06-05T00:00:00.000Z",
                               opts, 0};
    json_t *events = NULL;
    char *err = NULL;
    cr_assert_eq(adapter_email_run(&in, NULL, &events, &err), ADAPTER_OK, "%s: %s", file,
                 err ? err : "");
    json_t *ev = json_incref(json_array_get(events, 0));
    json_decref(events);
    json_decref(opts);
    free(data);
    free(path);
    return ev;
}

Test(mail_provider, every_provider_form_of_a_message_gives_the_same_mail_fields)
{
    static const char *const fields[] = {"key",        "title",       "text",      "time",
                                         "subject",    "from",        "to",        "cc",
                                         "reply_to",   "date",        "message_id",
                                         "in_reply_to", "references", "body",
                                         "body_stripped", "ticket_ref", "auto", NULL};
    static const char *const posts[] = {"provider_sendgrid.post", "provider_sendgrid_raw.post",
                                        "provider_mailgun.post",
                                        "provider_mailgun_multipart.post",
                                        "provider_postmark.post", NULL};
    json_t *want = fixture_event("provider_raw.eml");
    for (size_t p = 0; posts[p]; p++) {
        json_t *got = fixture_event(posts[p]);
        for (size_t i = 0; fields[i]; i++) {
            json_t *a = json_object_get(want, fields[i]), *b = json_object_get(got, fields[i]);
            char *sa = json_dumps(a, JSON_ENCODE_ANY), *sb = json_dumps(b, JSON_ENCODE_ANY);
            cr_expect(json_equal(a, b), "%s: %s is %s, raw mail says %s", posts[p], fields[i],
                      sb ? sb : "(none)", sa ? sa : "(none)");
            free(sa);
            free(sb);
        }
        /* the urlencoded Mailgun post carries no files; every other form does */
        size_t natt = json_array_size(json_object_get(got, "attachments"));
        cr_expect_eq(natt, strcmp(posts[p], "provider_mailgun.post") == 0 ? 0u : 1u, "%s",
                     posts[p]);
        cr_expect_eq(json_real_value(json_object_get(got, "spam_score")), 0.1, "%s", posts[p]);
        json_decref(got);
    }
    json_decref(want);
}

Test(mail_provider, sendgrid_prefers_the_raw_email_field)
{
    const char *b = "--B\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nfield "
                    "subject\r\n--B\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n"
                    "From: a@x.example\r\nSubject: raw subject\r\n\r\nraw body\r\n\r\n--B--\r\n";
    struct mail_form *f = form_ok(b, strlen(b), "multipart/form-data; boundary=B");
    json_t *m = NULL;
    char *err = NULL;
    cr_assert_eq(mail_provider_sendgrid(f, NULL, &m, &err), MAIL_OK, "%s", err ? err : "");
    cr_expect_str_eq(json_string_value(json_object_get(m, "subject")), "raw subject");
    cr_expect_str_eq(json_string_value(json_object_get(m, "body")), "raw body");
    json_decref(m);
    mail_form_free(f);
}

Test(mail_provider, sendgrid_text_is_converted_from_its_declared_charset)
{
    const char *b = "--B\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\na@x.example\r\n"
                    "--B\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nB\xfcro\r\n"
                    "--B\r\nContent-Disposition: form-data; name=\"charsets\"\r\n\r\n"
                    "{\"text\":\"iso-8859-1\"}\r\n--B--\r\n";
    struct mail_form *f = form_ok(b, strlen(b), "multipart/form-data; boundary=B");
    json_t *m = NULL;
    char *err = NULL;
    cr_assert_eq(mail_provider_sendgrid(f, NULL, &m, &err), MAIL_OK, "%s", err ? err : "");
    cr_expect_str_eq(json_string_value(json_object_get(m, "body")), "B\xc3\xbcro");
    json_decref(m);
    mail_form_free(f);
}

Test(mail_provider, provider_posts_missing_what_they_always_send_are_rejected)
{
    const char *b = "spam_score=1";
    struct mail_form *f = form_ok(b, strlen(b), "application/x-www-form-urlencoded");
    json_t *m = NULL;
    char *err = NULL;
    cr_expect_eq(mail_provider_sendgrid(f, NULL, &m, &err), MAIL_REJECT);
    cr_expect_null(m);
    free(err);
    err = NULL;
    cr_expect_eq(mail_provider_mailgun(f, NULL, &m, &err), MAIL_REJECT);
    free(err);
    err = NULL;
    mail_form_free(f);
    json_t *doc = json_pack("[]");
    cr_expect_eq(mail_provider_postmark(doc, NULL, &m, &err), MAIL_REJECT);
    free(err);
    json_decref(doc);
}

Test(mail_provider, mailgun_signature_fields_are_exposed_for_auth)
{
    const char *b = "timestamp=1749042332&token=abc&signature=0f1e&from=a%40b";
    char *ts = NULL, *tok = NULL, *sig = NULL;
    cr_assert_eq(mail_provider_mailgun_signature(b, strlen(b),
                                                 "application/x-www-form-urlencoded", &ts, &tok,
                                                 &sig),
                 0);
    cr_expect_str_eq(ts, "1749042332");
    cr_expect_str_eq(tok, "abc");
    cr_expect_str_eq(sig, "0f1e");
    free(ts);
    free(tok);
    free(sig);
    const char *nosig = "timestamp=1&token=abc";
    cr_expect_eq(mail_provider_mailgun_signature(nosig, strlen(nosig),
                                                 "application/x-www-form-urlencoded", &ts, &tok,
                                                 &sig),
                 -1);
    cr_expect_null(ts);
    cr_expect_null(sig);
}

Test(mail_provider, options_are_read_and_checked)
{
    json_t *o = json_pack("{s:s, s:[s, s], s:b, s:i, s:i, s:s, s:[{s:s, s:s}]}", "provider",
                          "Mailgun", "our_domains", "FM.Example.com", "fm2.example", "keep_attachments",
                          1, "max_attachment_bytes", 4096, "max_mime_depth", 5, "loop_id",
                          "bridge-1", "ref_patterns", "pattern", "WO(?<number>\\d+)", "kind",
                          "job");
    struct mail_options opt;
    char *err = NULL;
    cr_assert_eq(mail_provider_options_parse(o, &opt, &err), 0, "%s", err ? err : "");
    cr_expect_eq(opt.provider, MAIL_PROVIDER_MAILGUN);
    cr_expect_eq(opt.n_our_domains, 2);
    cr_expect_str_eq(opt.our_domains[0], "fm.example.com");
    cr_expect_eq(opt.limits.keep_attachments, 1);
    cr_expect_eq(opt.limits.max_attachment_bytes, 4096);
    cr_expect_eq(opt.limits.max_depth, 5);
    cr_expect_eq(opt.limits.max_parts, MAIL_DEFAULT_MAX_PARTS);
    cr_expect_str_eq(opt.loop_id, "bridge-1");
    cr_expect_not_null(opt.refs);
    mail_provider_options_free(&opt);
    json_decref(o);
    cr_expect_eq(mail_provider_options_check(NULL, &err), 0);
}

static void expect_option_error(json_t *o, const char *part)
{
    char *err = NULL;
    cr_expect_eq(mail_provider_options_check(o, &err), -1);
    cr_assert_not_null(err);
    cr_expect(strstr(err, part) != NULL, "error '%s' lacks '%s'", err, part);
    free(err);
    json_decref(o);
}

Test(mail_provider, bad_options_are_named_in_the_error)
{
    expect_option_error(json_pack("{s:s}", "providr", "raw"), "unknown email option: providr");
    expect_option_error(json_pack("{s:s}", "provider", "gmail"), "option provider");
    expect_option_error(json_pack("{s:s}", "our_domains", "a b"), "option our_domains");
    expect_option_error(json_pack("{s:i}", "our_domains", 3), "option our_domains");
    expect_option_error(json_pack("{s:i}", "max_mime_depth", 0), "option max_mime_depth");
    expect_option_error(json_pack("{s:s}", "keep_attachments", "yes"), "keep_attachments");
    expect_option_error(json_pack("{s:[{s:s, s:s}]}", "ref_patterns", "pattern", "(", "kind",
                                  "job"),
                        "ref_patterns[0]");
    expect_option_error(json_pack("[]"), "expected an object");
}
