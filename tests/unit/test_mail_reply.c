/* reply: the new part of a reply, without quoted history and signatures. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mail/reply.h"

#define EXPECT_STRIPPED(text, want)                                                            \
    do {                                                                                       \
        size_t n_ = 0;                                                                         \
        char *got_ = mail_reply_strip(text, strlen(text), &n_);                                \
        cr_assert_not_null(got_);                                                              \
        cr_expect_str_eq(got_, want, "text: %s", text);                                        \
        cr_expect_eq(n_, strlen(got_));                                                        \
        free(got_);                                                                            \
    } while (0)

Test(mail_reply, text_without_history_is_kept)
{
    EXPECT_STRIPPED("The tap in kitchen 2 drips.\n\nThanks\n", "The tap in kitchen 2 drips.\n\nThanks");
}

Test(mail_reply, quoted_lines_are_removed)
{
    EXPECT_STRIPPED("Still broken.\n\n> Has it been fixed?\n> FM\n", "Still broken.");
    EXPECT_STRIPPED("Answer one.\n> question two\nAnswer two.\n", "Answer one.\nAnswer two.");
}

Test(mail_reply, on_wrote_attribution_cuts_the_history)
{
    EXPECT_STRIPPED("Yes, today.\n\nOn Tue, 3 Jun 2025 at 16:20, FM <fm@x.example> wrote:\n"
                    "> Can we come?\nunquoted old text\n",
                    "Yes, today.");
}

Test(mail_reply, attribution_wrapped_over_two_lines_is_found)
{
    EXPECT_STRIPPED("Yes.\n\nOn Wed, 4 Jun 2025 at 09:02, FM Helpdesk <helpdesk@fm.example.com>\n"
                    "wrote:\n\n> old\n",
                    "Yes.");
}

Test(mail_reply, translated_attributions_are_found)
{
    EXPECT_STRIPPED("Ja.\n\nAm 04.06.2025 um 09:02 schrieb Leitwarte <lw@fm.example>:\n> alt\n",
                    "Ja.");
    EXPECT_STRIPPED("Oui.\n\nLe mer. 4 juin 2025 \xc3\xa0 09:02, FM <fm@x.example> a \xc3\xa9"
                    "crit :\n> ancien\n",
                    "Oui.");
}

Test(mail_reply, a_line_starting_with_on_is_not_an_attribution_without_wrote)
{
    EXPECT_STRIPPED("On Monday the lift stopped twice.\nPlease check.\n",
                    "On Monday the lift stopped twice.\nPlease check.");
}

Test(mail_reply, outlook_original_message_separator_cuts_the_history)
{
    EXPECT_STRIPPED("Thursday works.\n\n-----Original Message-----\nFrom: FM\nSent: today\n",
                    "Thursday works.");
    EXPECT_STRIPPED("Danke.\n\n-----Urspr\xc3\xbcngliche Nachricht-----\nVon: FM\n", "Danke.");
}

Test(mail_reply, outlook_header_block_cuts_the_history_with_its_rule)
{
    EXPECT_STRIPPED("Fine.\n\n________________________________\nFrom: FM <fm@x.example>\n"
                    "Sent: Tuesday, June 3, 2025 3:10 PM\nTo: Me\nSubject: visit\n\nold\n",
                    "Fine.");
    EXPECT_STRIPPED("Gut.\n\nVon: Leitwarte\nGesendet: Mittwoch\nAn: Lena\nBetreff: x\n\nalt\n",
                    "Gut.");
}

Test(mail_reply, a_lone_from_line_in_the_text_is_kept)
{
    EXPECT_STRIPPED("From: the roof above room 4.12\nwater comes in when it rains.\n",
                    "From: the roof above room 4.12\nwater comes in when it rains.");
}

Test(mail_reply, signatures_are_cut)
{
    EXPECT_STRIPPED("Light is out.\n\n-- \nKwame Osei\n+44 20\n", "Light is out.");
    EXPECT_STRIPPED("Light is out.\n\nSent from my iPhone\n", "Light is out.");
    EXPECT_STRIPPED("Licht ist aus.\n\nVon meinem iPhone gesendet\n", "Licht ist aus.");
}

Test(mail_reply, bottom_posted_reply_keeps_the_text_below_the_quotes)
{
    EXPECT_STRIPPED("On Tue, 3 Jun 2025, FM <fm@x.example> wrote:\n> Is it fixed?\n\nNo, still "
                    "dripping.\n",
                    "No, still dripping.");
}

Test(mail_reply, crlf_lines_come_out_with_lf_and_blank_runs_collapse)
{
    EXPECT_STRIPPED("a\r\n\r\n\r\n\r\nb\r\n", "a\n\nb");
}

Test(mail_reply, empty_and_all_quoted_texts_give_empty_strings)
{
    EXPECT_STRIPPED("", "");
    EXPECT_STRIPPED("> only\n> quotes\n", "");
}
