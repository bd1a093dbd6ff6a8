/* html2text: HTML bodies become readable text for rules and people. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mail/html2text.h"

static char *h2t(const char *html)
{
    size_t n = 0;
    char *s = mail_html2text(html, strlen(html), 0, &n);
    cr_assert_not_null(s);
    cr_assert_eq(n, strlen(s));
    return s;
}

#define EXPECT_TEXT(html, want)                                                                \
    do {                                                                                       \
        char *got_ = h2t(html);                                                                \
        cr_expect_str_eq(got_, want, "html: %s", html);                                        \
        free(got_);                                                                            \
    } while (0)

Test(mail_html2text, paragraphs_divs_and_breaks_become_line_breaks)
{
    EXPECT_TEXT("<p>first</p><p>second</p>", "first\n\nsecond");
    EXPECT_TEXT("<div>one</div><div>two</div>", "one\ntwo");
    EXPECT_TEXT("a<br>b<br/><br />c", "a\nb\n\nc");
    EXPECT_TEXT("<h1>Title</h1>text", "Title\n\ntext");
}

Test(mail_html2text, whitespace_collapses_outside_pre)
{
    EXPECT_TEXT("  a \n\t  b   ", "a b");
    EXPECT_TEXT("<pre>x  y\n  z</pre>", "x  y\n  z");
}

Test(mail_html2text, entities_are_decoded)
{
    EXPECT_TEXT("&amp;&lt;&gt;&quot;&#39;&#x41;&euro;&copy;", "&<>\"'A\xe2\x82\xac\xc2\xa9");
    EXPECT_TEXT("caf&eacute; &ndash; &hellip;", "caf\xc3\xa9 \xe2\x80\x93 \xe2\x80\xa6");
    EXPECT_TEXT("a&nbsp;&nbsp;b", "a b");
}

Test(mail_html2text, numeric_c1_references_read_as_windows_1252)
{
    EXPECT_TEXT("&#150; &#128;", "\xe2\x80\x93 \xe2\x82\xac");
}

Test(mail_html2text, unknown_entities_and_stray_brackets_stay_literal)
{
    EXPECT_TEXT("a < b &bogus; c & d", "a < b &bogus; c & d");
    EXPECT_TEXT("x <3 y", "x <3 y");
}

Test(mail_html2text, script_style_and_title_content_is_dropped)
{
    EXPECT_TEXT("<html><head><title>T</title><style>p{color:red}</style></head>"
                "<body><script>alert('x<p>')</script>visible</body></html>",
                "visible");
    EXPECT_TEXT("<SCRIPT type=\"text/javascript\">var a = '</p>';</SCRIPT>after", "after");
}

Test(mail_html2text, comments_and_doctype_are_dropped)
{
    EXPECT_TEXT("<!DOCTYPE html><!-- hidden <p>x</p> -->shown<?xml x?>", "shown");
    EXPECT_TEXT("<!--[if mso]><p>outlook only</p><![endif]-->all", "all");
}

Test(mail_html2text, links_read_as_text_then_url)
{
    EXPECT_TEXT("<a href=\"https://fm.example/r?a=1&amp;b=2\">report</a>",
                "report <https://fm.example/r?a=1&b=2>");
    EXPECT_TEXT("see <a href='https://x.example/'>here</a>.", "see here <https://x.example/>.");
}

Test(mail_html2text, links_whose_text_is_the_address_are_not_repeated)
{
    EXPECT_TEXT("<a href=\"mailto:ops@fm.example\">ops@fm.example</a>", "ops@fm.example");
    EXPECT_TEXT("<a href=\"https://x.example/\">https://x.example/</a>", "https://x.example/");
    EXPECT_TEXT("<a href=\"#top\">top</a>", "top");
    EXPECT_TEXT("<a href=\"https://t.example/p\"><img src=\"logo.png\"></a>", "");
}

Test(mail_html2text, list_items_get_dashes)
{
    EXPECT_TEXT("<ul><li>one</li><li>two</li></ul>after", "- one\n- two\n\nafter");
}

Test(mail_html2text, table_cells_are_separated_and_rows_broken)
{
    EXPECT_TEXT("<table><tr><td>Room</td><td>4.12</td></tr><tr><td>Floor</td><td>4</td></tr>"
                "</table>",
                "Room 4.12\nFloor 4");
}

Test(mail_html2text, blockquotes_are_prefixed_like_plain_text_quotes)
{
    EXPECT_TEXT("<div>new text</div><blockquote>old<br>older</blockquote>",
                "new text\n\n> old\n> older");
    EXPECT_TEXT("<blockquote>a<blockquote>b</blockquote></blockquote>", "> a\n\n> > b");
}

Test(mail_html2text, unterminated_markup_ends_cleanly)
{
    EXPECT_TEXT("text<a href='x", "text");
    EXPECT_TEXT("text<!-- never closed", "text");
    EXPECT_TEXT("text<script>never closed", "text");
    EXPECT_TEXT("&#x", "&#x");
}

Test(mail_html2text, output_cap_cuts_at_a_character_boundary)
{
    const char *html = "<p>\xc3\xa4\xc3\xb6\xc3\xbc\xc3\xa4\xc3\xb6\xc3\xbc</p>";
    size_t n = 0;
    char *s = mail_html2text(html, strlen(html), 5, &n);
    cr_assert_not_null(s);
    cr_expect_leq(n, 5);
    cr_expect_eq(n % 2, 0, "a two-byte character was split: %zu bytes", n);
    cr_expect_str_eq(s, "\xc3\xa4\xc3\xb6");
    free(s);
}

Test(mail_html2text, empty_input_gives_an_empty_string)
{
    size_t n = 7;
    char *s = mail_html2text("", 0, 0, &n);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "");
    cr_expect_eq(n, 0);
    free(s);
}
