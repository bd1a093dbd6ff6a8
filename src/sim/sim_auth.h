/* sim_auth: TrackplanFM's two ways in (guide §1, §2.1) as the simulator checks them — users
 * who log in for an HS256 JWT (signed with a per-process random secret, with sub, iat, exp and
 * role claims) and API keys sent in a configurable header. Roles: full, or read-only. It
 * decides who is calling; what a role may do is the caller's business. */
#ifndef TB_SIM_AUTH_H
#define TB_SIM_AUTH_H

#include <stdint.h>

enum sim_role { SIM_ROLE_NONE = 0, SIM_ROLE_READONLY, SIM_ROLE_FULL };

enum sim_auth_result {
    SIM_AUTH_OK,       /* role_out set */
    SIM_AUTH_MISSING,  /* no credentials at all */
    SIM_AUTH_INVALID,  /* wrong key, malformed or badly signed token */
    SIM_AUTH_EXPIRED   /* a well-signed token past its exp */
};

typedef struct sim_auth sim_auth_t;

/* New authenticator; key_header NULL means "X-API-Key"; ttl_s is the token lifetime.
 * NULL on OOM or when no random secret can be drawn. */
sim_auth_t *sim_auth_new(const char *key_header, int64_t ttl_s);
/* Releases keys, users and the secret (wiped); NULL is a no-op. */
void sim_auth_free(sim_auth_t *a);

/* Adds an API key with full access. 0, or -1 on OOM. */
int sim_auth_add_key(sim_auth_t *a, const char *key);
/* Adds a user, replacing one of the same name. 0, or -1 on OOM. */
int sim_auth_add_user(sim_auth_t *a, const char *name, const char *password, enum sim_role role);
/* Parses "NAME:PASSWORD" or "NAME:PASSWORD:ro" (password may hold ':' unless the last part is
 * "ro"/"rw") and adds the user. 0, or -1 when malformed or on OOM. */
int sim_auth_add_user_spec(sim_auth_t *a, const char *spec);
/* Parses a role word: "full"/"rw" or "readonly"/"read-only"/"ro" (any case). 0 or -1. */
int sim_auth_parse_role(const char *s, enum sim_role *out);

/* True when neither keys nor users are configured: every call is let in with full rights. */
int sim_auth_is_open(const sim_auth_t *a);
/* The configured API key header name (borrowed). */
const char *sim_auth_key_header(const sim_auth_t *a);

/* Checks a user's password (constant-time) and, when right, returns a new signed token
 * (free()) with iat = now in seconds and exp = iat + ttl. NULL when the user is unknown, the
 * password wrong, or on OOM. In open mode any name and password are accepted (full rights). */
char *sim_auth_login(sim_auth_t *a, const char *name, const char *password, int64_t now_ms);

/* Checks an Authorization header value ("Bearer <jwt>", may be NULL) and an API key header
 * value (may be NULL) at time now_ms; a token is accepted through the second its exp names
 * (so one issued with a ttl of 1 s is good for 1 to 2 s). Either valid credential lets the
 * caller in. */
enum sim_auth_result sim_auth_check(const sim_auth_t *a, const char *authorization,
                                    const char *api_key, int64_t now_ms, enum sim_role *role_out);

#endif
