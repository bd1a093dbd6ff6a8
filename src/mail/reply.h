/* reply: finds the new part of a reply — the text above the quoted history ("> " lines,
 * "On … wrote:" and its translations, Outlook's "-----Original Message-----" and
 * "From: … Sent: … To: … Subject:" blocks) and above the signature ("-- ", "Sent from my …").
 * Works on plain text (HTML is converted first); the full text is always kept by the caller. */
#ifndef TB_MAIL_REPLY_H
#define TB_MAIL_REPLY_H

#include <stddef.h>

/* Returns the new part of text (LF or CRLF lines) as a malloc'd UTF-8 string with LF line
 * ends, trailing blank lines removed, and its length in *out_len (may be NULL). When nothing
 * is left above the history, the text without its "> " lines is returned instead. NULL on OOM. */
char *mail_reply_strip(const char *text, size_t len, size_t *out_len);

#endif
