/* parse: raw mail → message object (GMime), limits, charsets, the builder and text helpers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "mail/parse.h"

static json_t *parse_ok(const char *raw, const struct mail_limits *lim)
{
    json_t *msg = NULL;
    char *err = NULL;
    enum mail_result r = mail_parse_message(raw, strlen(raw), lim, &msg, &err);
    cr_assert_eq(r, MAIL_OK, "rejected: %s", err ? err : "");
    cr_assert_null(err);
    cr_assert(json_is_object(msg));
    return msg;
}

static char *parse_reject(const char *raw, size_t len, const struct mail_limits *lim)
{
    json_t *msg = NULL;
    char *err = NULL;
    enum mail_result r = mail_parse_message(raw, len, lim, &msg, &err);
    cr_assert_eq(r, MAIL_REJECT);
    cr_assert_null(msg);
    cr_assert_not_null(err);
    return err;
}

static const char *str(json_t *msg, const char *key)
{
    const char *s = json_string_value(json_object_get(msg, key));
    cr_assert_not_null(s, "field %s missing", key);
    return s;
}

Test(mail_parse, headers_are_decoded_into_the_normalised_fields)
{
    json_t *m = parse_ok("From: =?utf-8?q?J=C3=BCrgen?= <Juergen@Example.COM>\r\n"
                         "To: a@x.example, \"B\" <B@Y.example>, team: c@z.example;\r\n"
                         "Cc: d@x.example\r\n"
                         "Reply-To: <replies@x.example>\r\n"
                         "Subject: =?iso-8859-1?q?B=FCro?= =?utf-8?b?IOKAkyBrYWx0?=\r\n"
                         "Date: Tue, 3 Jun 2025 09:12:00 +0200\r\n"
                         "Message-ID: <id1@x.example>\r\n"
                         "In-Reply-To: <p1@x.example> (comment)\r\n"
                         "References: <r1@x.example>\r\n <r2@x.example>\r\n"
                         "\r\nbody\r\n",
                         NULL);
    cr_expect_str_eq(str(m, "subject"), "B\xc3\xbcro \xe2\x80\x93 kalt");
    json_t *from = json_object_get(m, "from");
    cr_expect_str_eq(json_string_value(json_object_get(from, "address")), "juergen@example.com");
    cr_expect_str_eq(json_string_value(json_object_get(from, "name")), "J\xc3\xbcrgen");
    cr_expect_str_eq(json_string_value(json_object_get(from, "domain")), "example.com");
    json_t *to = json_object_get(m, "to");
    cr_assert_eq(json_array_size(to), 3);
    cr_expect_str_eq(json_string_value(json_array_get(to, 1)), "b@y.example");
    cr_expect_str_eq(json_string_value(json_array_get(to, 2)), "c@z.example");
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(m, "cc"), 0)),
                     "d@x.example");
    cr_expect_str_eq(str(m, "reply_to"), "replies@x.example");
    cr_expect_str_eq(str(m, "date"), "2025-06-03T07:12:00.000Z");
    cr_expect_str_eq(str(m, "message_id"), "id1@x.example");
    cr_expect_str_eq(str(m, "in_reply_to"), "p1@x.example");
    json_t *refs = json_object_get(m, "references");
    cr_assert_eq(json_array_size(refs), 2);
    cr_expect_str_eq(json_string_value(json_array_get(refs, 1)), "r2@x.example");
    cr_expect_str_eq(str(m, "body"), "body");
    json_decref(m);
}

Test(mail_parse, raw_8bit_headers_are_read_as_utf8_or_windows_1252)
{
    json_t *m = parse_ok("From: a@x.example\r\nSubject: B\xfcro kalt\r\n\r\nx\r\n", NULL);
    cr_expect_str_eq(str(m, "subject"), "B\xc3\xbcro kalt");
    json_decref(m);
    m = parse_ok("From: a@x.example\r\nSubject: B\xc3\xbcro\r\n\r\nx\r\n", NULL);
    cr_expect_str_eq(str(m, "subject"), "B\xc3\xbcro");
    json_decref(m);
}

Test(mail_parse, headers_object_has_lowercased_names_and_first_values)
{
    json_t *m = parse_ok("From: a@x.example\r\nX-Custom: one\r\nx-custom: two\r\n"
                         "Subject: first\r\nSubject: second\r\n\r\nx\r\n",
                         NULL);
    json_t *h = json_object_get(m, "headers");
    cr_expect_str_eq(json_string_value(json_object_get(h, "x-custom")), "one");
    cr_expect_str_eq(json_string_value(json_object_get(h, "subject")), "first");
    cr_expect_str_eq(str(m, "subject"), "first");
    cr_expect_null(json_object_get(h, "X-Custom"));
    json_decref(m);
}

Test(mail_parse, missing_or_bad_date_leaves_date_empty)
{
    json_t *m = parse_ok("From: a@x.example\r\nDate: yesterday-ish\r\n\r\nx\r\n", NULL);
    cr_expect_str_eq(str(m, "date"), "");
    json_decref(m);
}

Test(mail_parse, mbox_from_line_from_a_pipe_is_skipped)
{
    json_t *m = parse_ok("From sender@x.example Mon Jun  2 08:00:00 2025\n"
                         "From: a@x.example\nSubject: mbox\n\nbody\n",
                         NULL);
    cr_expect_str_eq(str(m, "subject"), "mbox");
    json_decref(m);
}

Test(mail_parse, input_without_a_header_block_is_rejected)
{
    char *err = parse_reject("just some words\nand more\n", 25, NULL);
    cr_expect(strstr(err, "header") != NULL, "%s", err);
    free(err);
}

Test(mail_parse, message_over_the_size_limit_is_rejected)
{
    struct mail_limits lim;
    mail_parse_limits_default(&lim);
    lim.max_bytes = 64;
    const char *raw = "From: a@x.example\r\nSubject: long enough to pass sixty-four bytes\r\n\r\n"
                      "body\r\n";
    char *err = parse_reject(raw, strlen(raw), &lim);
    cr_expect(strstr(err, "larger than the limit of 64") != NULL, "%s", err);
    free(err);
}

static char *nested(int depth)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "From: a@x.example\r\nSubject: nested\r\nMIME-Version: 1.0\r\n");
    for (int i = 0; i < depth; i++)
        buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i);
    buf_puts(&b, "Content-Type: text/plain\r\n\r\ninnermost\r\n");
    for (int i = depth - 1; i >= 0; i--)
        buf_printf(&b, "--b%d--\r\n", i);
    return buf_steal(&b);
}

Test(mail_parse, nesting_within_the_depth_limit_is_read)
{
    struct mail_limits lim;
    mail_parse_limits_default(&lim);
    lim.max_depth = 8;
    char *raw = nested(7);
    json_t *m = parse_ok(raw, &lim);
    cr_expect_str_eq(str(m, "body"), "innermost");
    json_decref(m);
    free(raw);
}

Test(mail_parse, nesting_past_the_depth_limit_is_rejected_with_the_reason)
{
    struct mail_limits lim;
    mail_parse_limits_default(&lim);
    lim.max_depth = 8;
    char *raw = nested(9);
    char *err = parse_reject(raw, strlen(raw), &lim);
    cr_expect(strstr(err, "MIME nesting deeper than the limit of 8") != NULL, "%s", err);
    free(err);
    free(raw);
}

Test(mail_parse, thousands_of_nested_containers_are_refused_before_parsing)
{
    char *raw = nested(20000);
    char *err = parse_reject(raw, strlen(raw), NULL);
    cr_expect(strstr(err, "more than 200 MIME parts") != NULL, "%s", err);
    free(err);
    free(raw);
}

Test(mail_parse, part_count_past_the_limit_is_rejected)
{
    struct mail_limits lim;
    mail_parse_limits_default(&lim);
    lim.max_parts = 10;
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "From: a@x.example\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n");
    for (int i = 0; i < 10; i++)
        buf_printf(&b, "--p\r\nContent-Type: text/plain\r\n\r\n%d\r\n", i);
    buf_puts(&b, "--p--\r\n");
    /* 10 leaves + the container = 11 parts */
    char *err = parse_reject(b.data, b.len, &lim);
    cr_expect(strstr(err, "more than 10 MIME parts") != NULL, "%s", err);
    free(err);
    buf_free(&b);
}

Test(mail_parse, header_line_floods_are_refused_before_parsing)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "From: a@x.example\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\n");
    for (int i = 0; i <= MAIL_MAX_HEADER_LINES; i++)
        buf_puts(&b, "X-Flood: v\r\n");
    buf_puts(&b, "\r\nbody\r\n--p--\r\n");
    char *err = parse_reject(b.data, b.len, NULL);
    cr_expect(strstr(err, "more than 20000 header lines") != NULL, "%s", err);
    free(err);
    buf_free(&b);
}

Test(mail_parse, prescan_counts_header_lines_only_in_header_blocks)
{
    const char *raw = "From: a@x.example\r\n\r\nKey: value\r\nOther: value\r\n-- \r\nsig: x\r\n";
    struct mail_prescan ps;
    mail_parse_prescan(raw, strlen(raw), 100, &ps);
    cr_expect_eq(ps.header_lines, 2, "From, and the line after the \"-- \" line");
    cr_expect_eq(ps.header_cut, strlen(raw));
    const char *hdrs = "A: 1\r\nB: 2\r\n folded\r\nC: 3\r\n";
    mail_parse_prescan(hdrs, strlen(hdrs), 2, &ps);
    cr_expect_eq(ps.header_lines, 3);
    cr_expect_eq(ps.header_cut, strlen("A: 1\r\nB: 2\r\n folded\r\n"));
}

Test(mail_parse, prescan_counts_parts_by_their_declared_boundaries)
{
    const char *raw = "From: a@x.example\r\nContent-Type: multipart/mixed;\r\n boundary=\"outer\"\r\n\r\n"
                      "--outer\r\nContent-Type: text/plain\r\n\r\n-- \r\n--not-a-boundary\r\n"
                      "--outer \r\nContent-Type: message/rfc822\r\n\r\n"
                      "From: b@y.example\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n"
                      "--in\r\n\r\nx\r\n--in--\r\n--outer--\r\n";
    struct mail_prescan ps;
    mail_parse_prescan(raw, strlen(raw), 100, &ps);
    cr_expect_eq(ps.parts, 3, "two outer parts and one inner part");
    cr_expect_eq(ps.containers, 3, "two multiparts and the embedded message");
}

Test(mail_parse, unreadable_boundaries_count_every_dash_line)
{
    const char *raw = "From: a@x.example\r\nContent-Type: multipart/mixed; boundary*=''b\r\n\r\n"
                      "--b\r\n\r\nx\r\n--anything\r\n\r\ny\r\n--b--\r\n";
    struct mail_prescan ps;
    mail_parse_prescan(raw, strlen(raw), 100, &ps);
    cr_expect_eq(ps.parts, 2);
}

Test(mail_parse, a_flood_of_tiny_parts_is_refused_before_parsing)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "From: a@x.example\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n");
    for (int i = 0; i < 300000; i++)
        buf_puts(&b, "--p\r\n\r\nx\r\n");
    buf_puts(&b, "--p--\r\n");
    char *err = parse_reject(b.data, b.len, NULL);
    cr_expect(strstr(err, "more than 200 MIME parts") != NULL, "%s", err);
    free(err);
    buf_free(&b);
}

Test(mail_parse, html_only_mail_gets_its_body_from_the_html)
{
    json_t *m = parse_ok("From: a@x.example\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                         "<p>Hello&nbsp;there</p><p>Line two</p>\r\n",
                         NULL);
    cr_expect_str_eq(str(m, "body"), "Hello there\n\nLine two");
    cr_expect(strstr(str(m, "html"), "<p>Hello") != NULL);
    json_decref(m);
}

Test(mail_parse, plain_mail_has_no_html_field)
{
    json_t *m = parse_ok("From: a@x.example\r\n\r\ntext\r\n", NULL);
    cr_expect_null(json_object_get(m, "html"));
    json_decref(m);
}

Test(mail_parse, attachments_are_listed_and_not_read_as_body)
{
    json_t *m = parse_ok(
        "From: a@x.example\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
        "--m\r\nContent-Type: text/plain\r\n\r\nthe text\r\n"
        "--m\r\nContent-Type: text/plain; name=log.txt\r\nContent-Disposition: attachment; "
        "filename=log.txt\r\n\r\nnot body\r\n"
        "--m\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=\"p.png\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
        "--m\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@y.example\r\nSubject: fwd\r\n\r\n"
        "forwarded\r\n"
        "--m--\r\n",
        NULL);
    cr_expect_str_eq(str(m, "body"), "the text");
    json_t *a = json_object_get(m, "attachments");
    cr_assert_eq(json_array_size(a), 3);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(a, 0), "name")), "log.txt");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(a, 1), "type")),
                     "image/png");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(a, 1), "size")), 5);
    cr_expect_null(json_object_get(json_array_get(a, 1), "content"));
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(a, 2), "type")),
                     "message/rfc822");
    json_decref(m);
}

Test(mail_parse, attachment_content_is_kept_only_when_asked_and_small)
{
    struct mail_limits lim;
    mail_parse_limits_default(&lim);
    lim.keep_attachments = 1;
    lim.max_attachment_bytes = 5;
    json_t *m = parse_ok(
        "From: a@x.example\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
        "--m\r\nContent-Type: text/plain\r\n\r\nt\r\n"
        "--m\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        "filename=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
        "--m\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        "filename=b.bin\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n"
        "--m--\r\n",
        &lim);
    json_t *a = json_object_get(m, "attachments");
    cr_assert_eq(json_array_size(a), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(a, 0), "content")),
                     "aGVsbG8=");
    cr_expect_null(json_object_get(json_array_get(a, 1), "content"));
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(a, 1), "size")), 11);
    json_decref(m);
}

Test(mail_parse, inline_text_parts_around_an_image_read_as_one_text)
{
    json_t *m = parse_ok(
        "From: a@x.example\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
        "--m\r\nContent-Type: text/plain\r\n\r\nabove\r\n"
        "--m\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n\r\nxx\r\n"
        "--m\r\nContent-Type: text/plain\r\n\r\nbelow\r\n--m--\r\n",
        NULL);
    cr_expect_str_eq(str(m, "body"), "above\n\nbelow");
    json_decref(m);
}

Test(mail_parse, format_flowed_with_delsp_is_unwrapped)
{
    json_t *m = parse_ok("From: a@x.example\r\nContent-Type: text/plain; format=flowed; "
                         "delsp=yes\r\n\r\nThe lift is stu \r\nck again.\r\n> quo \r\n> ted\r\n"
                         "-- \r\nsig\r\n",
                         NULL);
    cr_expect_str_eq(str(m, "body"), "The lift is stuck again.\n> quoted\n-- \nsig");
    cr_expect_str_eq(str(m, "body_stripped"), "The lift is stuck again.");
    json_decref(m);
}

Test(mail_parse, text_is_cut_at_the_text_limit)
{
    struct mail_limits lim;
    mail_parse_limits_default(&lim);
    lim.max_text_bytes = 8;
    json_t *m = parse_ok("From: a@x.example\r\n\r\n0123456789abcdef\r\n", &lim);
    cr_expect_str_eq(str(m, "body"), "01234567");
    json_decref(m);
}

Test(mail_parse, clean_line_flattens_control_characters)
{
    char *s = mail_parse_clean_line("  Broken\r\nBcc: x@evil.example\t\x01tail \xe2\x80\xa8 end  ");
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "Broken Bcc: x@evil.example tail end");
    free(s);
    s = mail_parse_clean_line("bad \xff byte");
    cr_expect_str_eq(s, "bad \xef\xbf\xbd byte");
    free(s);
    cr_expect_null(mail_parse_clean_line(NULL));
}

static void expect_utf8(const char *charset, const char *in, size_t len, const char *want)
{
    size_t n = 0;
    char *s = mail_parse_to_utf8(charset, in, len, &n);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, want, "charset %s", charset ? charset : "(none)");
    cr_expect_eq(n, strlen(s));
    free(s);
}

Test(mail_parse, charsets_are_converted_to_utf8)
{
    expect_utf8("windows-1252", "\x80 \x96 \x93x\x94", 7,
                "\xe2\x82\xac \xe2\x80\x93 \xe2\x80\x9cx\xe2\x80\x9d");
    expect_utf8("iso-8859-1", "caf\xe9 \x96", 6, "caf\xc3\xa9 \xe2\x80\x93");
    expect_utf8("ISO-8859-15", "\xa4", 1, "\xe2\x82\xac");
    expect_utf8("koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", 6,
                "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
    expect_utf8("utf-8", "ok \xc3\xa4", 5, "ok \xc3\xa4");
}

Test(mail_parse, unknown_or_missing_charsets_fall_back_sensibly)
{
    expect_utf8(NULL, "B\xc3\xbcro", 5, "B\xc3\xbcro");
    expect_utf8(NULL, "B\xfcro", 4, "B\xc3\xbcro");
    expect_utf8("x-no-such-charset", "B\xfcro", 4, "B\xc3\xbcro");
    expect_utf8("us-ascii", "B\xfcro", 4, "B\xc3\xbcro");
}

Test(mail_parse, invalid_utf8_nuls_and_crlf_are_cleaned)
{
    expect_utf8("utf-8", "a\xff" "b\0c\r\nd\re", 10, "a\xef\xbf\xbd" "bc\nd\ne");
}

Test(mail_parse, builder_fields_follow_first_wins)
{
    json_t *m = mail_parse_msg_new();
    cr_assert_not_null(m);
    cr_expect_eq(mail_parse_add_mailbox(m, "from", "<First@X.Example>", "One"), 0);
    cr_expect_eq(mail_parse_add_mailbox(m, "from", "second@x.example", "Two"), 0);
    cr_expect_eq(mail_parse_add_mailbox(m, "to", "t1@x.example", NULL), 0);
    cr_expect_eq(mail_parse_add_mailbox(m, "to", "t2@x.example", NULL), 0);
    cr_expect_eq(mail_parse_add_header(m, "Subject", "one"), 0);
    cr_expect_eq(mail_parse_add_header(m, "subject", "two"), 0);
    cr_expect_eq(mail_parse_add_header(m, "Bad Name", "x"), 0);
    json_t *from = json_object_get(m, "from");
    cr_expect_str_eq(json_string_value(json_object_get(from, "address")), "first@x.example");
    cr_expect_str_eq(json_string_value(json_object_get(from, "name")), "One");
    cr_expect_eq(json_array_size(json_object_get(m, "to")), 2);
    cr_expect_str_eq(str(m, "subject"), "one");
    cr_expect_null(json_object_get(json_object_get(m, "headers"), "bad name"));
    json_decref(m);
}

Test(mail_parse, header_count_is_capped)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "From: a@x.example\r\n");
    for (int i = 0; i < MAIL_MAX_HEADERS + 100; i++)
        buf_printf(&b, "X-H%d: v\r\n", i);
    buf_puts(&b, "\r\nbody\r\n");
    json_t *m = parse_ok(b.data, NULL);
    cr_expect_eq(json_object_size(json_object_get(m, "headers")), MAIL_MAX_HEADERS);
    json_decref(m);
    buf_free(&b);
}

Test(mail_parse, header_block_adds_fields_without_a_body)
{
    json_t *m = mail_parse_msg_new();
    const char *block = "Subject: from the block\r\nMessage-ID: <hb@x.example>\r\n"
                        "Auto-Submitted: auto-generated\r\n";
    cr_assert_eq(mail_parse_header_block(m, block, strlen(block), NULL), 0);
    cr_expect_str_eq(str(m, "subject"), "from the block");
    cr_expect_str_eq(str(m, "message_id"), "hb@x.example");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(m, "headers"),
                                                       "auto-submitted")),
                     "auto-generated");
    json_decref(m);
}

static void *parse_in_thread(void *arg)
{
    (void)arg;
    const char *raw = "From: a@x.example\r\nSubject: =?utf-8?q?thread_=C3=A4?=\r\n\r\nbody\r\n";
    long ok = 0;
    for (int i = 0; i < 50; i++) {
        json_t *m = NULL;
        char *err = NULL;
        if (mail_parse_message(raw, strlen(raw), NULL, &m, &err) == MAIL_OK &&
            strcmp(json_string_value(json_object_get(m, "subject")), "thread \xc3\xa4") == 0)
            ok++;
        json_decref(m);
        free(err);
    }
    return (void *)ok;
}

Test(mail_parse, parsing_from_several_threads_at_once_works)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, parse_in_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        cr_expect_eq((long)r, 50);
    }
}
