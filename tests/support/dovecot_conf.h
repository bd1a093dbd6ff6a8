/* dovecot_conf: the configuration of the throw-away dovecot that the IMAP tests and the IMAP
 * benchmark start as root in a temporary folder (plain IMAP on 127.0.0.1, passwd-file users,
 * maildir, everything under DIR/dv). Header-only so the benchmark needs no test library. */
#ifndef TB_DOVECOT_CONF_H
#define TB_DOVECOT_CONF_H

#include <stdio.h>

/* Writes the configuration text into out (n bytes); returns snprintf's count. */
static inline int tu_dovecot_conf(char *out, size_t n, const char *dir, const char *login_user,
                                  const char *internal_user, const char *inbox, int port)
{
    return snprintf(out, n,
                    "protocols = imap\n"
                    "listen = 127.0.0.1\n"
                    "base_dir = %s/dv/base\n"
                    "state_dir = %s/dv/state\n"
                    "log_path = %s/dv/dovecot.log\n"
                    "ssl = no\n"
                    "disable_plaintext_auth = no\n"
                    "auth_mechanisms = plain login\n"
                    "auth_failure_delay = 0\n"
                    "default_login_user = %s\n"
                    "default_internal_user = %s\n"
                    "default_internal_group = %s\n"
                    "first_valid_uid = 1\n"
                    "first_valid_gid = 1\n"
                    "mail_location = maildir:%s\n"
                    "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN %s/dv/passwd\n}\n"
                    "userdb {\n  driver = passwd-file\n  args = %s/dv/passwd\n}\n"
                    "service imap-login {\n"
                    "  inet_listener imap {\n    address = 127.0.0.1\n    port = %d\n  }\n"
                    "  inet_listener imaps {\n    port = 0\n  }\n"
                    "}\n"
                    "service pop3-login {\n  inet_listener pop3 {\n    port = 0\n  }\n}\n",
                    dir, dir, dir, login_user, internal_user, internal_user, inbox, dir, dir,
                    port);
}

#endif
