/* sim_auth: users, API keys and HS256 JWTs for the simulator; see sim_auth.h. Secrets are
 * compared in constant time and never logged. */
#include "sim/sim_auth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/util.h"

#define SIM_AUTH_MAX_TOKEN 8192

struct sim_user {
    char *name;
    char *password;
    enum sim_role role;
};

struct sim_auth {
    char *key_header;
    int64_t ttl_s;
    unsigned char secret[32];
    char **keys;
    size_t nkeys;
    struct sim_user *users;
    size_t nusers;
};

static const char sim_jwt_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

sim_auth_t *sim_auth_new(const char *key_header, int64_t ttl_s)
{
    sim_auth_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->ttl_s = ttl_s;
    a->key_header = util_strdup(key_header ? key_header : "X-API-Key");
    if (!a->key_header || util_random(a->secret, sizeof(a->secret)) < 0) {
        sim_auth_free(a);
        return NULL;
    }
    return a;
}

void sim_auth_free(sim_auth_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nkeys; i++)
        free(a->keys[i]);
    free(a->keys);
    for (size_t i = 0; i < a->nusers; i++) {
        free(a->users[i].name);
        free(a->users[i].password);
    }
    free(a->users);
    free(a->key_header);
    memset(a->secret, 0, sizeof(a->secret));
    free(a);
}

int sim_auth_add_key(sim_auth_t *a, const char *key)
{
    char *copy = util_strdup(key);
    char **grown = copy ? realloc(a->keys, (a->nkeys + 1) * sizeof(*grown)) : NULL;
    if (!grown) {
        free(copy);
        return -1;
    }
    a->keys = grown;
    a->keys[a->nkeys++] = copy;
    return 0;
}

int sim_auth_add_user(sim_auth_t *a, const char *name, const char *password, enum sim_role role)
{
    char *n = util_strdup(name), *p = util_strdup(password);
    if (!n || !p)
        goto fail;
    for (size_t i = 0; i < a->nusers; i++) {
        if (strcmp(a->users[i].name, name) == 0) {
            free(a->users[i].name);
            free(a->users[i].password);
            a->users[i] = (struct sim_user){n, p, role};
            return 0;
        }
    }
    struct sim_user *grown = realloc(a->users, (a->nusers + 1) * sizeof(*grown));
    if (!grown)
        goto fail;
    a->users = grown;
    a->users[a->nusers++] = (struct sim_user){n, p, role};
    return 0;
fail:
    free(n);
    free(p);
    return -1;
}

int sim_auth_parse_role(const char *s, enum sim_role *out)
{
    if (!s)
        return -1;
    if (strcasecmp(s, "full") == 0 || strcasecmp(s, "rw") == 0) {
        *out = SIM_ROLE_FULL;
        return 0;
    }
    if (strcasecmp(s, "readonly") == 0 || strcasecmp(s, "read-only") == 0 ||
        strcasecmp(s, "ro") == 0) {
        *out = SIM_ROLE_READONLY;
        return 0;
    }
    return -1;
}

int sim_auth_add_user_spec(sim_auth_t *a, const char *spec)
{
    int rc = -1;
    char *copy = util_strdup(spec);
    if (!copy)
        return -1;
    char *colon = strchr(copy, ':');
    if (!colon || colon == copy)
        goto out;
    *colon = '\0';
    char *password = colon + 1;
    enum sim_role role = SIM_ROLE_FULL;
    char *last = strrchr(password, ':');
    if (last && sim_auth_parse_role(last + 1, &role) == 0)
        *last = '\0';
    else
        role = SIM_ROLE_FULL;
    if (!*password)
        goto out;
    rc = sim_auth_add_user(a, copy, password, role);
out:
    free(copy);
    return rc;
}

int sim_auth_is_open(const sim_auth_t *a) { return a->nkeys == 0 && a->nusers == 0; }

const char *sim_auth_key_header(const sim_auth_t *a) { return a->key_header; }

/* base64url(HMAC(secret, input)) as a new string, or NULL on OOM. */
static char *sim_auth_sign(const sim_auth_t *a, const char *input, size_t len)
{
    unsigned char mac[32];
    crypto_hmac_sha256(a->secret, sizeof(a->secret), input, len, mac);
    return crypto_b64_encode(mac, sizeof(mac), 1);
}

char *sim_auth_login(sim_auth_t *a, const char *name, const char *password, int64_t now_ms)
{
    char *token = NULL, *h64 = NULL, *p64 = NULL, *payload = NULL, *sig = NULL;
    json_t *claims = NULL;
    buf_t b;
    buf_init(&b, SIM_AUTH_MAX_TOKEN);
    enum sim_role role = SIM_ROLE_NONE;
    if (!name || !password)
        goto out;
    if (sim_auth_is_open(a)) {
        role = SIM_ROLE_FULL;
    } else {
        /* every user is compared so timing does not reveal which names exist */
        for (size_t i = 0; i < a->nusers; i++) {
            int name_ok = crypto_str_equal(a->users[i].name, name);
            int pass_ok = crypto_str_equal(a->users[i].password, password);
            if (name_ok && pass_ok)
                role = a->users[i].role;
        }
    }
    if (role == SIM_ROLE_NONE)
        goto out;
    char jti[37];
    util_uuid4(jti);
    int64_t iat = now_ms / 1000;
    claims = json_pack("{s:s, s:I, s:I, s:s, s:s}", "sub", name, "iat", (json_int_t)iat, "exp",
                       (json_int_t)(iat + a->ttl_s), "role",
                       role == SIM_ROLE_FULL ? "full" : "readonly", "jti", jti);
    payload = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    h64 = crypto_b64_encode(sim_jwt_header, strlen(sim_jwt_header), 1);
    p64 = payload ? crypto_b64_encode(payload, strlen(payload), 1) : NULL;
    if (!h64 || !p64 || buf_printf(&b, "%s.%s", h64, p64) < 0)
        goto out;
    sig = sim_auth_sign(a, b.data, b.len);
    if (!sig || buf_printf(&b, ".%s", sig) < 0)
        goto out;
    token = buf_steal(&b);
out:
    buf_free(&b);
    json_decref(claims);
    free(payload);
    free(h64);
    free(p64);
    free(sig);
    return token;
}

/* Decodes one base64url JWT part into a JSON object (new), or NULL. */
static json_t *sim_auth_part(const char *s, size_t n)
{
    size_t len = 0;
    unsigned char *raw = crypto_b64_decode(s, n, &len);
    json_t *j = raw ? json_loadb((const char *)raw, len, 0, NULL) : NULL;
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static enum sim_auth_result sim_auth_check_jwt(const sim_auth_t *a, const char *tok,
                                               int64_t now_ms, enum sim_role *role_out)
{
    enum sim_auth_result res = SIM_AUTH_INVALID;
    json_t *header = NULL, *claims = NULL;
    char *sig = NULL;
    size_t len = strlen(tok);
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (len > SIM_AUTH_MAX_TOKEN || !d1 || !d2 || strchr(d2 + 1, '.'))
        goto out;
    sig = sim_auth_sign(a, tok, (size_t)(d2 - tok));
    if (!sig || !crypto_str_equal(sig, d2 + 1))
        goto out;
    header = sim_auth_part(tok, (size_t)(d1 - tok));
    claims = sim_auth_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!header || !claims)
        goto out;
    const char *alg = json_string_value(json_object_get(header, "alg"));
    json_t *exp = json_object_get(claims, "exp");
    const char *role = json_string_value(json_object_get(claims, "role"));
    enum sim_role r;
    if (!alg || strcmp(alg, "HS256") != 0 || !json_is_integer(exp) ||
        sim_auth_parse_role(role, &r) < 0)
        goto out;
    if (now_ms / 1000 > json_integer_value(exp)) {
        res = SIM_AUTH_EXPIRED;
        goto out;
    }
    *role_out = r;
    res = SIM_AUTH_OK;
out:
    json_decref(header);
    json_decref(claims);
    free(sig);
    return res;
}

enum sim_auth_result sim_auth_check(const sim_auth_t *a, const char *authorization,
                                    const char *api_key, int64_t now_ms, enum sim_role *role_out)
{
    if (sim_auth_is_open(a)) {
        *role_out = SIM_ROLE_FULL;
        return SIM_AUTH_OK;
    }
    enum sim_auth_result res = SIM_AUTH_MISSING;
    if (api_key && *api_key) {
        int ok = 0;
        for (size_t i = 0; i < a->nkeys; i++)
            ok |= crypto_str_equal(a->keys[i], api_key);
        if (ok) {
            *role_out = SIM_ROLE_FULL;
            return SIM_AUTH_OK;
        }
        res = SIM_AUTH_INVALID;
    }
    if (authorization && *authorization) {
        const char *p = authorization;
        while (*p == ' ')
            p++;
        if (strncasecmp(p, "Bearer ", 7) != 0)
            return SIM_AUTH_INVALID;
        p += 7;
        while (*p == ' ')
            p++;
        enum sim_auth_result jr = sim_auth_check_jwt(a, p, now_ms, role_out);
        if (jr == SIM_AUTH_OK || jr == SIM_AUTH_EXPIRED)
            return jr;
        res = SIM_AUTH_INVALID;
    }
    return res;
}
