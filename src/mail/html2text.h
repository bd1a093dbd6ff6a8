/* html2text: turns the HTML body of a mail into readable plain text for people and rules —
 * block elements become line breaks, entities are decoded, script/style/title are dropped,
 * links read "text <url>" and blockquotes are prefixed with "> " so quoted history can be
 * stripped like plain-text quotes. Not an HTML parser for rendering: one linear pass. */
#ifndef TB_MAIL_HTML2TEXT_H
#define TB_MAIL_HTML2TEXT_H

#include <stddef.h>

/* Converts len bytes of UTF-8 HTML into text. The output is cut (at a character boundary) once
 * it would pass max_out bytes (0 = no cap). Returns a malloc'd NUL-terminated string and its
 * length in *out_len (may be NULL), or NULL when memory runs out. */
char *mail_html2text(const char *html, size_t len, size_t max_out, size_t *out_len);

#endif
