/* fuzz_mail: hostile mail through the email adapter and its helpers. The first byte picks the
 * format of the rest: 0 raw message, 1 SendGrid form (boundary xYzZY), 2 Mailgun urlencoded,
 * 3 Postmark JSON, 4 Mailgun form (boundary mgBoundary42), 5 the text helpers (HTML, reply
 * stripping, header cleaning, charsets, references), 6 Mailgun signature extraction.
 * Beyond "no crash, no leak", it checks that header-derived fields are single lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "mail/html2text.h"
#include "mail/parse.h"
#include "mail/provider.h"
#include "mail/reply.h"
#include "mail/ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_one_line(json_t *v)
{
    const char *s = json_string_value(v);
    if (s && (strchr(s, '\r') || strchr(s, '\n')))
        abort();
}

static void fz_check_event(json_t *ev)
{
    fz_one_line(json_object_get(ev, "title"));
    fz_one_line(json_object_get(ev, "subject"));
    fz_one_line(json_object_get(ev, "reply_to"));
    fz_one_line(json_object_get(ev, "message_id"));
    fz_one_line(json_object_get(json_object_get(ev, "from"), "address"));
    fz_one_line(json_object_get(json_object_get(ev, "from"), "name"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(ev, "headers"), k, v)
        fz_one_line(v);
    size_t i;
    json_array_foreach(json_object_get(ev, "to"), i, v)
        fz_one_line(v);
    char *dump = json_dumps(ev, 0);
    if (!dump)
        abort(); /* every string must be valid UTF-8 */
    free(dump);
}

static void fz_helpers(const char *p, size_t n)
{
    size_t len = 0;
    free(mail_html2text(p, n, 4096, &len));
    free(mail_reply_strip(p, n, &len));
    static const char *const charsets[] = {NULL, "utf-8", "windows-1252", "iso-2022-jp",
                                           "koi8-r", "x-bogus"};
    for (size_t i = 0; i < sizeof charsets / sizeof charsets[0]; i++)
        free(mail_parse_to_utf8(charsets[i], p, n, &len));
    char *z = malloc(n + 1);
    if (!z)
        return;
    memcpy(z, p, n);
    z[n] = '\0';
    char *c = mail_parse_clean_line(z);
    if (c && (strchr(c, '\r') || strchr(c, '\n')))
        abort();
    free(c);
    struct mail_ref r;
    char dom[64];
    (void)mail_ref_parse_message_id(z, &r, dom, sizeof dom);
    (void)mail_ref_match_subject(mail_ref_set_default(), z, &r);
    (void)mail_ref_match_plus(mail_ref_set_default(), z, &r);
    json_t *m = mail_parse_msg_new();
    if (m) {
        (void)mail_parse_add_header(m, "Subject", z);
        (void)mail_parse_add_header(m, "From", z);
        (void)mail_parse_add_header(m, "References", z);
        (void)mail_parse_add_header(m, "Date", z);
        fz_one_line(json_object_get(m, "subject"));
        json_decref(m);
    }
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const types[] = {
        "message/rfc822", "multipart/form-data; boundary=xYzZY",
        "application/x-www-form-urlencoded", "application/json",
        "multipart/form-data; boundary=mgBoundary42"};
    unsigned mode = data[0] % 7;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (mode == 5) {
        fz_helpers(body, len);
        return 0;
    }
    if (mode == 6) {
        char *ts = NULL, *tok = NULL, *sig = NULL;
        if (mail_provider_mailgun_signature(body, len, types[2], &ts, &tok, &sig) == 0) {
            free(ts);
            free(tok);
            free(sig);
        }
        return 0;
    }
    json_t *opts = json_pack("{s:[s], s:b, s:i, s:i}", "our_domains", "fm.example.com",
                             "keep_attachments", 1, "max_attachment_bytes", 256,
                             "max_mime_depth", 8);
    struct adapter_input in = {body, len, types[mode], NULL, NULL, "fuzz",
                               "2025-06-05T00:00:00.000Z", opts, 0};
    json_t *events = NULL;
    char *err = NULL;
    if (adapter_email_run(&in, NULL, &events, &err) == ADAPTER_OK) {
        if (json_array_size(events) != 1)
            abort();
        fz_check_event(json_array_get(events, 0));
    } else if (!err) {
        abort(); /* a rejection always says why */
    }
    json_decref(events);
    free(err);
    json_decref(opts);
    return 0;
}
