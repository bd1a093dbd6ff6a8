/* auth: compiles a source's `auth:` spec once and checks each intake request against it —
 * allow-list first, then credentials (bearer, basic, URL token), then the HMAC signature over
 * the raw body. Every secret comparison goes through crypto_equal; only lengths may leak.
 * See auth.h for the contract and docs/security.md for the user-facing description. */
#include "auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/util.h"

#define AUTH_MAX_ENTRIES 16      /* tokens, basic pairs, URL token values, HMAC secrets */
#define AUTH_MAX_ALLOW 256       /* allow-list entries */
#define AUTH_MAX_VALUE 4096      /* bytes in one configured token, password or secret */
#define AUTH_MAX_CRED 8192       /* bytes of presented credentials worth looking at */
#define AUTH_MAX_SIG_ENTRIES 32  /* signatures considered in one webhook-signature header */
#define AUTH_DEFAULT_TOLERANCE 300
#define AUTH_MAX_TOLERANCE 604800

#define REALM "trackbridge"

enum hmac_scheme { HMAC_NONE, HMAC_STANDARD, HMAC_GITHUB, HMAC_GENERIC, HMAC_GRAFANA };

struct secret {
    unsigned char *key;
    size_t len;
};

struct basic_cred {
    char *user;
    char *pass;
};

struct cidr {
    unsigned char addr[16]; /* IPv6, IPv4 as ::ffff:a.b.c.d */
    unsigned bits;
};

struct auth {
    char **bearer;
    size_t n_bearer;
    struct basic_cred *basic;
    size_t n_basic;
    char *url_param;
    char **url_values;
    size_t n_url;
    enum hmac_scheme scheme;
    struct secret *secrets;
    size_t n_secrets;
    char *sig_header;       /* generic, grafana */
    char *sig_prefix;       /* generic, optional */
    char *ts_header;        /* grafana, optional */
    int64_t tolerance;
    struct cidr *allow;
    size_t n_allow;
};

/* ---- spec compilation -------------------------------------------------------------- */

/* Stores msg (malloc'd, may be NULL on OOM) in *err; returns -1 for tail calls. */
static int spec_fail(char **err, char *msg)
{
    if (err)
        *err = msg ? msg : util_strdup("auth: out of memory");
    else
        free(msg);
    return -1;
}

static void wipe_str(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static int is_header_name(const char *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    if (!*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              strchr(tchar, c)))
            return 0;
    }
    return 1;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* Copies a non-empty string of at most AUTH_MAX_VALUE bytes into *out. */
static int spec_string(json_t *v, const char *path, char **out, char **err)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return spec_fail(err, util_asprintf("%s: must be a non-empty string", path));
    if (json_string_length(v) > AUTH_MAX_VALUE)
        return spec_fail(err, util_asprintf("%s: longer than %d bytes", path, AUTH_MAX_VALUE));
    if (strlen(json_string_value(v)) != json_string_length(v))
        return spec_fail(err, util_asprintf("%s: must not contain NUL bytes", path));
    *out = util_strdup(json_string_value(v));
    return *out ? 0 : spec_fail(err, NULL);
}

/* Rejects keys of obj not in allowed (NULL-terminated); path names obj. */
static int spec_keys(json_t *obj, const char *path, const char *const *allowed, char **err)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i])
            return spec_fail(err, util_asprintf("%s.%s: unknown key", path, key));
    }
    return 0;
}

/* A string or a non-empty list of strings → *out (n entries). */
static int spec_string_list(json_t *v, const char *path, int allow_scalar, char ***out,
                            size_t *n, char **err)
{
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (json_is_array(v) ? count == 0 : !(allow_scalar && json_is_string(v)))
        return spec_fail(err, util_asprintf(allow_scalar ? "%s: must be a non-empty string or list"
                                                         : "%s: must be a non-empty list",
                                            path));
    if (count > AUTH_MAX_ENTRIES)
        return spec_fail(err, util_asprintf("%s: at most %d entries", path, AUTH_MAX_ENTRIES));
    *out = calloc(count, sizeof **out);
    if (!*out)
        return spec_fail(err, NULL);
    *n = count;
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
        char *ipath = json_is_array(v) ? util_asprintf("%s[%zu]", path, i) : util_strdup(path);
        if (!ipath)
            return spec_fail(err, NULL);
        int rc = spec_string(item, ipath, &(*out)[i], err);
        free(ipath);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int spec_bearer(auth_t *a, json_t *v, char **err)
{
    if (spec_string_list(v, "auth.bearer", 1, &a->bearer, &a->n_bearer, err) < 0)
        return -1;
    for (size_t i = 0; i < a->n_bearer; i++)
        for (const char *p = a->bearer[i]; *p; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
                char idx[32] = "";
                if (json_is_array(v))
                    snprintf(idx, sizeof idx, "[%zu]", i);
                return spec_fail(err, util_asprintf("auth.bearer%s: must be printable ASCII "
                                                    "without spaces",
                                                    idx));
            }
    return 0;
}

static int spec_basic_one(json_t *v, const char *path, struct basic_cred *c, char **err)
{
    static const char *const keys[] = {"user", "password", NULL};
    if (!json_is_object(v))
        return spec_fail(err, util_asprintf("%s: must be a mapping with user and password",
                                            path));
    if (spec_keys(v, path, keys, err) < 0)
        return -1;
    char *p = util_asprintf("%s.user", path);
    if (!p)
        return spec_fail(err, NULL);
    int rc = spec_string(json_object_get(v, "user"), p, &c->user, err);
    if (rc == 0 && (strchr(c->user, ':') || has_ctl(c->user)))
        rc = spec_fail(err, util_asprintf("%s: must not contain ':' or control characters", p));
    free(p);
    if (rc < 0)
        return -1;
    p = util_asprintf("%s.password", path);
    if (!p)
        return spec_fail(err, NULL);
    rc = spec_string(json_object_get(v, "password"), p, &c->pass, err);
    if (rc == 0 && has_ctl(c->pass))
        rc = spec_fail(err, util_asprintf("%s: must not contain control characters", p));
    free(p);
    return rc;
}

static int spec_basic(auth_t *a, json_t *v, char **err)
{
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (json_is_array(v) && count == 0)
        return spec_fail(err, util_strdup("auth.basic: must be a mapping or a non-empty list"));
    if (count > AUTH_MAX_ENTRIES)
        return spec_fail(err, util_asprintf("auth.basic: at most %d entries", AUTH_MAX_ENTRIES));
    a->basic = calloc(count, sizeof *a->basic);
    if (!a->basic)
        return spec_fail(err, NULL);
    a->n_basic = count;
    for (size_t i = 0; i < count; i++) {
        char *path = json_is_array(v) ? util_asprintf("auth.basic[%zu]", i)
                                      : util_strdup("auth.basic");
        if (!path)
            return spec_fail(err, NULL);
        int rc = spec_basic_one(json_is_array(v) ? json_array_get(v, i) : v, path,
                                &a->basic[i], err);
        free(path);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int spec_url_token(auth_t *a, json_t *v, char **err)
{
    static const char *const keys[] = {"param", "values", NULL};
    if (!json_is_object(v))
        return spec_fail(err, util_strdup("auth.url_token: must be a mapping with param and "
                                          "values"));
    if (spec_keys(v, "auth.url_token", keys, err) < 0)
        return -1;
    json_t *param = json_object_get(v, "param");
    if (param) {
        if (spec_string(param, "auth.url_token.param", &a->url_param, err) < 0)
            return -1;
    } else if (!(a->url_param = util_strdup("token"))) {
        return spec_fail(err, NULL);
    }
    json_t *values = json_object_get(v, "values");
    if (!values)
        return spec_fail(err, util_strdup("auth.url_token.values: required"));
    return spec_string_list(values, "auth.url_token.values", 1, &a->url_values, &a->n_url, err);
}

/* Standard Webhooks secrets are "whsec_" + base64 of the key (the prefix is optional). */
static int spec_secret(const char *s, enum hmac_scheme scheme, const char *path,
                       struct secret *out, char **err)
{
    if (scheme == HMAC_STANDARD) {
        if (strncmp(s, "whsec_", 6) == 0)
            s += 6;
        size_t len = 0;
        unsigned char *key = crypto_b64_decode(s, strlen(s), &len);
        if (!key || len == 0) {
            free(key);
            return spec_fail(err, util_asprintf("%s: not a Standard Webhooks secret "
                                                "(whsec_ followed by base64)",
                                                path));
        }
        out->key = key;
        out->len = len;
        return 0;
    }
    out->len = strlen(s);
    out->key = (unsigned char *)util_strdup(s);
    return out->key ? 0 : spec_fail(err, NULL);
}

static int spec_tolerance(json_t *v, int64_t *out, char **err)
{
    int64_t t = -1;
    if (json_is_integer(v))
        t = json_integer_value(v);
    else if (!json_is_string(v) ||
             util_parse_i64(json_string_value(v), 1, AUTH_MAX_TOLERANCE, &t) < 0)
        t = -1;
    if (t < 1 || t > AUTH_MAX_TOLERANCE)
        return spec_fail(err, util_asprintf("auth.hmac.tolerance: must be a number of seconds "
                                            "from 1 to %d",
                                            AUTH_MAX_TOLERANCE));
    *out = t;
    return 0;
}

static int spec_hmac(auth_t *a, json_t *v, char **err)
{
    static const char *const all[] = {"scheme", "secrets", "header", "prefix",
                                      "timestamp_header", "tolerance", NULL};
    static const struct {
        const char *name;
        enum hmac_scheme scheme;
        const char *const keys[6];
    } schemes[] = {
        {"standard-webhooks", HMAC_STANDARD, {"scheme", "secrets", "tolerance", NULL}},
        {"github", HMAC_GITHUB, {"scheme", "secrets", NULL}},
        {"generic", HMAC_GENERIC, {"scheme", "secrets", "header", "prefix", NULL}},
        {"grafana", HMAC_GRAFANA,
         {"scheme", "secrets", "header", "timestamp_header", "tolerance", NULL}},
    };
    if (!json_is_object(v))
        return spec_fail(err, util_strdup("auth.hmac: must be a mapping"));
    if (spec_keys(v, "auth.hmac", all, err) < 0)
        return -1;
    json_t *sv = json_object_get(v, "scheme");
    if (!json_is_string(sv))
        return spec_fail(err, util_strdup("auth.hmac.scheme: required (standard-webhooks, "
                                          "github, generic or grafana)"));
    size_t si = 0, ns = sizeof schemes / sizeof schemes[0];
    while (si < ns && strcmp(schemes[si].name, json_string_value(sv)) != 0)
        si++;
    if (si == ns)
        return spec_fail(err, util_asprintf("auth.hmac.scheme: unknown scheme \"%s\" (expected "
                                            "standard-webhooks, github, generic or grafana)",
                                            json_string_value(sv)));
    a->scheme = schemes[si].scheme;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        size_t k = 0;
        while (schemes[si].keys[k] && strcmp(schemes[si].keys[k], key) != 0)
            k++;
        if (!schemes[si].keys[k])
            return spec_fail(err, util_asprintf("auth.hmac.%s: not used with scheme %s", key,
                                                schemes[si].name));
    }

    json_t *secrets = json_object_get(v, "secrets");
    size_t count = json_is_array(secrets) ? json_array_size(secrets) : 0;
    if (count == 0)
        return spec_fail(err, util_strdup("auth.hmac.secrets: must be a non-empty list"));
    if (count > AUTH_MAX_ENTRIES)
        return spec_fail(err, util_asprintf("auth.hmac.secrets: at most %d entries",
                                            AUTH_MAX_ENTRIES));
    a->secrets = calloc(count, sizeof *a->secrets);
    if (!a->secrets)
        return spec_fail(err, NULL);
    a->n_secrets = count;
    for (size_t i = 0; i < count; i++) {
        char *path = util_asprintf("auth.hmac.secrets[%zu]", i);
        char *s = NULL;
        int rc = path ? spec_string(json_array_get(secrets, i), path, &s, err)
                      : spec_fail(err, NULL);
        if (rc == 0)
            rc = spec_secret(s, a->scheme, path, &a->secrets[i], err);
        wipe_str(s);
        free(path);
        if (rc < 0)
            return -1;
    }

    json_t *hdr = json_object_get(v, "header");
    if (hdr) {
        if (spec_string(hdr, "auth.hmac.header", &a->sig_header, err) < 0)
            return -1;
    } else if (a->scheme == HMAC_GENERIC) {
        return spec_fail(err, util_strdup("auth.hmac.header: required with scheme generic"));
    } else if (a->scheme == HMAC_GRAFANA &&
               !(a->sig_header = util_strdup("X-Grafana-Alerting-Signature"))) {
        return spec_fail(err, NULL);
    }
    if (a->sig_header && !is_header_name(a->sig_header))
        return spec_fail(err, util_strdup("auth.hmac.header: not a valid header name"));
    json_t *pre = json_object_get(v, "prefix");
    if (pre && spec_string(pre, "auth.hmac.prefix", &a->sig_prefix, err) < 0)
        return -1;
    json_t *tsh = json_object_get(v, "timestamp_header");
    if (tsh) {
        if (spec_string(tsh, "auth.hmac.timestamp_header", &a->ts_header, err) < 0)
            return -1;
        if (!is_header_name(a->ts_header))
            return spec_fail(err, util_strdup("auth.hmac.timestamp_header: not a valid header "
                                              "name"));
    }
    a->tolerance = AUTH_DEFAULT_TOLERANCE;
    json_t *tol = json_object_get(v, "tolerance");
    if (tol && spec_tolerance(tol, &a->tolerance, err) < 0)
        return -1;
    return 0;
}

/* Parses "a.b.c.d[/n]" or "x:y::z[/n]" into c (IPv4 mapped into IPv6 space). */
static int cidr_parse(const char *s, struct cidr *c)
{
    char tmp[64];
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len + 1);
    char *slash = strchr(tmp, '/');
    if (slash)
        *slash = '\0';
    unsigned maxbits;
    unsigned char in4[4];
    memset(c, 0, sizeof *c);
    if (inet_pton(AF_INET, tmp, in4) == 1) {
        c->addr[10] = c->addr[11] = 0xff;
        memcpy(c->addr + 12, in4, 4);
        maxbits = 32;
    } else if (inet_pton(AF_INET6, tmp, c->addr) == 1) {
        maxbits = 128;
    } else {
        return -1;
    }
    long bits = maxbits;
    if (slash) {
        const char *b = slash + 1;
        if (*b < '0' || *b > '9' || util_parse_long(b, 0, maxbits, &bits) < 0)
            return -1;
    }
    c->bits = (unsigned)bits + (maxbits == 32 ? 96 : 0);
    return 0;
}

/* 1 when c has no bits set past its prefix. */
static int cidr_is_network(const struct cidr *c)
{
    for (unsigned i = c->bits; i < 128; i++)
        if (c->addr[i / 8] & (0x80u >> (i % 8)))
            return 0;
    return 1;
}

static int spec_allow(auth_t *a, json_t *v, char **err)
{
    size_t count = json_is_array(v) ? json_array_size(v) : 0;
    if (count == 0)
        return spec_fail(err, util_strdup("auth.allow: must be a non-empty list"));
    if (count > AUTH_MAX_ALLOW)
        return spec_fail(err, util_asprintf("auth.allow: at most %d entries", AUTH_MAX_ALLOW));
    a->allow = calloc(count, sizeof *a->allow);
    if (!a->allow)
        return spec_fail(err, NULL);
    a->n_allow = count;
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_array_get(v, i);
        if (!json_is_string(item))
            return spec_fail(err, util_asprintf("auth.allow[%zu]: must be an address or CIDR "
                                                "string",
                                                i));
        const char *s = json_string_value(item);
        if (cidr_parse(s, &a->allow[i]) < 0)
            return spec_fail(err, util_asprintf("auth.allow[%zu]: not an IPv4 or IPv6 address "
                                                "or CIDR: \"%.64s\"",
                                                i, s));
        if (!cidr_is_network(&a->allow[i]))
            return spec_fail(err, util_asprintf("auth.allow[%zu]: host bits set in \"%s\"", i,
                                                s));
    }
    return 0;
}

auth_t *auth_new(json_t *spec, char **err)
{
    static const char *const keys[] = {"bearer", "basic", "url_token", "hmac", "allow", NULL};
    auth_t *a = calloc(1, sizeof *a);
    json_t *v;
    if (err)
        *err = NULL;
    if (!a) {
        spec_fail(err, NULL);
        goto fail;
    }
    if (!spec || json_is_null(spec))
        return a;
    if (!json_is_object(spec)) {
        spec_fail(err, util_strdup("auth: must be a mapping"));
        goto fail;
    }
    if (spec_keys(spec, "auth", keys, err) < 0)
        goto fail;
    if ((v = json_object_get(spec, "bearer")) && spec_bearer(a, v, err) < 0)
        goto fail;
    if ((v = json_object_get(spec, "basic")) && spec_basic(a, v, err) < 0)
        goto fail;
    if ((v = json_object_get(spec, "url_token")) && spec_url_token(a, v, err) < 0)
        goto fail;
    if ((v = json_object_get(spec, "hmac")) && spec_hmac(a, v, err) < 0)
        goto fail;
    if ((v = json_object_get(spec, "allow")) && spec_allow(a, v, err) < 0)
        goto fail;
    return a;
fail:
    auth_free(a);
    return NULL;
}

void auth_free(auth_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_bearer; i++)
        wipe_str(a->bearer[i]);
    free(a->bearer);
    for (size_t i = 0; i < a->n_basic; i++) {
        wipe_str(a->basic[i].user);
        wipe_str(a->basic[i].pass);
    }
    free(a->basic);
    free(a->url_param);
    for (size_t i = 0; i < a->n_url; i++)
        wipe_str(a->url_values[i]);
    free(a->url_values);
    for (size_t i = 0; i < a->n_secrets; i++) {
        if (a->secrets[i].key)
            OPENSSL_cleanse(a->secrets[i].key, a->secrets[i].len);
        free(a->secrets[i].key);
    }
    free(a->secrets);
    free(a->sig_header);
    free(a->sig_prefix);
    free(a->ts_header);
    free(a->allow);
    free(a);
}

/* ---- request checks ---------------------------------------------------------------- */

static const char *req_header(const struct auth_request *r, const char *name)
{
    return r->header ? r->header(r->header_ud, name) : NULL;
}

/* Constant time for equal lengths; only the length comparison may leak. */
static int ct_match(const void *p, size_t n, const char *expected)
{
    size_t elen = strlen(expected);
    if (n != elen)
        return 0;
    return crypto_equal(p, expected, n);
}

static int peer_addr16(const struct sockaddr *sa, unsigned char out[16])
{
    if (!sa)
        return -1;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof sin);
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &sin.sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof sin6);
        memcpy(out, &sin6.sin6_addr, 16);
        return 0;
    }
    return -1;
}

static int cidr_match(const struct cidr *c, const unsigned char a[16])
{
    size_t full = c->bits / 8;
    if (memcmp(c->addr, a, full) != 0)
        return 0;
    unsigned rem = c->bits % 8;
    if (rem == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xffu << (8 - rem));
    return (c->addr[full] & mask) == (a[full] & mask);
}

static int peer_allowed(const auth_t *a, const struct sockaddr *peer)
{
    unsigned char addr[16];
    if (peer_addr16(peer, addr) < 0)
        return 0;
    for (size_t i = 0; i < a->n_allow; i++)
        if (cidr_match(&a->allow[i], addr))
            return 1;
    return 0;
}

static int basic_match(const auth_t *a, const char *cred, size_t clen)
{
    size_t len = 0;
    int ok = 0;
    unsigned char *dec = crypto_b64_decode(cred, clen, &len);
    if (!dec || memchr(dec, '\0', len))
        goto done;
    const unsigned char *colon = memchr(dec, ':', len);
    if (!colon)
        goto done;
    size_t ulen = (size_t)(colon - dec);
    for (size_t i = 0; i < a->n_basic; i++)
        ok |= ct_match(dec, ulen, a->basic[i].user) &
              ct_match(colon + 1, len - ulen - 1, a->basic[i].pass);
done:
    if (dec)
        OPENSSL_cleanse(dec, len);
    free(dec);
    return ok;
}

/* Matches the Authorization header against bearer or basic; 1 on a match. */
static int authorization_match(const auth_t *a, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t slen = strcspn(v, " \t");
    const char *cred = v + slen;
    while (*cred == ' ' || *cred == '\t')
        cred++;
    size_t clen = strlen(cred);
    while (clen > 0 && (cred[clen - 1] == ' ' || cred[clen - 1] == '\t'))
        clen--;
    if (clen == 0 || clen > AUTH_MAX_CRED)
        return 0;
    int ok = 0;
    if (slen == 6 && strncasecmp(v, "Bearer", 6) == 0) {
        for (size_t i = 0; i < a->n_bearer; i++)
            ok |= ct_match(cred, clen, a->bearer[i]);
    } else if (slen == 5 && strncasecmp(v, "Basic", 5) == 0 && a->n_basic > 0) {
        ok = basic_match(a, cred, clen);
    }
    return ok;
}

static enum auth_result check_credentials(const auth_t *a, const struct auth_request *r,
                                          const char **why)
{
    int presented = 0, ok = 0;
    if (a->n_bearer || a->n_basic) {
        const char *authz = req_header(r, "Authorization");
        if (authz) {
            presented = 1;
            ok = authorization_match(a, authz);
        }
    }
    if (!ok && a->n_url && r->query) {
        const char *tok = r->query(r->query_ud, a->url_param);
        if (tok) {
            presented = 1;
            size_t tlen = strlen(tok);
            for (size_t i = 0; i < a->n_url && tlen <= AUTH_MAX_CRED; i++)
                ok |= ct_match(tok, tlen, a->url_values[i]);
        }
    }
    if (ok)
        return AUTH_OK;
    *why = presented ? "invalid credentials" : "credentials required";
    return AUTH_UNAUTHORIZED;
}

/* Strict unsigned decimal seconds: digits only, at most 18 of them. */
static int parse_ts(const char *s, int64_t *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 18 || s[n] != '\0')
        return -1;
    return util_parse_i64(s, 0, INT64_MAX, out);
}

static int ts_within(int64_t ts, int64_t now, int64_t tolerance)
{
    int64_t d;
    if (__builtin_sub_overflow(now, ts, &d) || d == INT64_MIN)
        return 0;
    if (d < 0)
        d = -d;
    return d <= tolerance;
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly 64 hex digits → 32 bytes. 0 or -1. */
static int hex_decode32(const char *s, size_t n, unsigned char out[32])
{
    if (n != 64)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_val((unsigned char)s[2 * i]), lo = hex_val((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* HMAC-SHA256 of prefix + body under every secret. 0, or -1 when memory runs out. */
static int compute_macs(const auth_t *a, const char *prefix, size_t plen, const char *body,
                        size_t blen, unsigned char macs[][32])
{
    buf_t b;
    const char *msg = body ? body : "";
    size_t mlen = body ? blen : 0;
    int rc = -1;
    buf_init(&b, 0);
    if (plen > 0) {
        if (buf_append(&b, prefix, plen) < 0 || buf_append(&b, msg, mlen) < 0)
            goto done;
        msg = b.data;
        mlen = b.len;
    }
    for (size_t i = 0; i < a->n_secrets; i++)
        crypto_hmac_sha256(a->secrets[i].key, a->secrets[i].len, msg, mlen, macs[i]);
    rc = 0;
done:
    buf_free(&b);
    return rc;
}

static int macs_match(const auth_t *a, unsigned char macs[][32], const unsigned char sig[32])
{
    int ok = 0;
    for (size_t i = 0; i < a->n_secrets; i++)
        ok |= crypto_equal(macs[i], sig, 32);
    return ok;
}

/* Any "v1,<base64>" entry of the space-separated header matching any mac. */
static int standard_sig_match(const auth_t *a, unsigned char macs[][32], const char *h)
{
    int ok = 0;
    size_t seen = 0;
    while (*h && seen < AUTH_MAX_SIG_ENTRIES) {
        while (*h == ' ')
            h++;
        size_t n = strcspn(h, " ");
        if (n == 0)
            break;
        seen++;
        if (n > 3 && n <= 3 + 88 && memcmp(h, "v1,", 3) == 0) {
            size_t len = 0;
            unsigned char *sig = crypto_b64_decode(h + 3, n - 3, &len);
            if (sig && len == 32)
                ok |= macs_match(a, macs, sig);
            free(sig);
        }
        h += n;
    }
    return ok;
}

/* Decodes a generic signature: 64 hex digits, or base64 of 32 bytes. 0 or -1. */
static int decode_sig32(const char *s, size_t n, unsigned char out[32])
{
    if (hex_decode32(s, n, out) == 0)
        return 0;
    if (n > 48)
        return -1;
    size_t len = 0;
    unsigned char *dec = crypto_b64_decode(s, n, &len);
    int rc = (dec && len == 32) ? 0 : -1;
    if (rc == 0)
        memcpy(out, dec, 32);
    free(dec);
    return rc;
}

static enum auth_result check_hmac(const auth_t *a, const struct auth_request *r,
                                   const char **why)
{
    unsigned char macs[AUTH_MAX_ENTRIES][32];
    unsigned char sig[32];
    enum auth_result res = AUTH_FORBIDDEN;
    const char *sighdr = NULL, *ts = NULL, *id = NULL;
    char *prefix = NULL;
    int64_t tsv = 0;
    int ok = 0;

    switch (a->scheme) {
    case HMAC_STANDARD:
        id = req_header(r, "webhook-id");
        ts = req_header(r, "webhook-timestamp");
        sighdr = req_header(r, "webhook-signature");
        break;
    case HMAC_GITHUB:
        sighdr = req_header(r, "X-Hub-Signature-256");
        break;
    case HMAC_GENERIC:
        sighdr = req_header(r, a->sig_header);
        break;
    case HMAC_GRAFANA:
        sighdr = req_header(r, a->sig_header);
        if (a->ts_header)
            ts = req_header(r, a->ts_header);
        break;
    case HMAC_NONE:
        return AUTH_OK;
    }
    if (!sighdr || (a->scheme == HMAC_STANDARD && (!id || !ts)) ||
        (a->scheme == HMAC_GRAFANA && a->ts_header && !ts)) {
        *why = "signature required";
        return AUTH_UNAUTHORIZED;
    }
    if (ts) {
        if (parse_ts(ts, &tsv) < 0) {
            *why = "invalid signature timestamp";
            goto done;
        }
        if (!ts_within(tsv, r->now_s, a->tolerance)) {
            *why = "timestamp outside tolerance";
            goto done;
        }
        prefix = a->scheme == HMAC_STANDARD ? util_asprintf("%s.%s.", id, ts)
                                            : util_asprintf("%s:", ts);
    }
    if ((ts && !prefix) ||
        compute_macs(a, prefix, prefix ? strlen(prefix) : 0, r->body, r->body_len, macs) < 0) {
        log_warn("auth: out of memory while checking a signature");
        *why = "signature check failed";
        goto done;
    }

    if (a->scheme == HMAC_STANDARD) {
        ok = standard_sig_match(a, macs, sighdr);
    } else {
        const char *s = sighdr;
        while (*s == ' ' || *s == '\t')
            s++;
        const char *want = a->scheme == HMAC_GITHUB ? "sha256=" : a->sig_prefix;
        if (want) {
            size_t wl = strlen(want);
            if (strncasecmp(s, want, wl) != 0) {
                *why = "signature mismatch";
                goto done;
            }
            s += wl;
        }
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        int dec = a->scheme == HMAC_GENERIC ? decode_sig32(s, n, sig) : hex_decode32(s, n, sig);
        ok = dec == 0 && macs_match(a, macs, sig);
    }
    if (ok)
        res = AUTH_OK;
    else
        *why = "signature mismatch";
done:
    OPENSSL_cleanse(macs, sizeof macs);
    free(prefix);
    return res;
}

enum auth_result auth_check(const auth_t *a, const struct auth_request *r, const char **reason)
{
    const char *why = "authenticated";
    enum auth_result res = AUTH_OK;
    if (auth_is_open(a))
        goto done;
    if (!r) {
        res = AUTH_UNAUTHORIZED;
        why = "credentials required";
        goto done;
    }
    if (a->n_allow && !peer_allowed(a, r->peer)) {
        res = AUTH_FORBIDDEN;
        why = "address not allowed";
        goto done;
    }
    if (a->n_bearer || a->n_basic || a->n_url) {
        res = check_credentials(a, r, &why);
        if (res != AUTH_OK)
            goto done;
    }
    if (a->scheme != HMAC_NONE)
        res = check_hmac(a, r, &why);
done:
    if (reason)
        *reason = res == AUTH_OK ? "authenticated" : why;
    return res;
}

int auth_is_open(const auth_t *a)
{
    return !a || (a->n_allow == 0 && a->n_bearer == 0 && a->n_basic == 0 && a->n_url == 0 &&
                  a->scheme == HMAC_NONE);
}

int auth_needs_body(const auth_t *a)
{
    return a && a->scheme != HMAC_NONE;
}

int auth_http_status(enum auth_result r)
{
    switch (r) {
    case AUTH_OK:
        return 0;
    case AUTH_UNAUTHORIZED:
        return 401;
    case AUTH_FORBIDDEN:
        return 403;
    }
    return 403;
}

const char *auth_challenge(const auth_t *a)
{
    if (a && a->n_basic)
        return "Basic realm=\"" REALM "\", charset=\"UTF-8\"";
    if (a && a->n_bearer)
        return "Bearer realm=\"" REALM "\"";
    return NULL;
}

int auth_hmac_sha256_hex_verify(const void *key, size_t klen, const void *msg, size_t mlen,
                                const char *hex)
{
    unsigned char want[32], got[32];
    int rc = -1;
    if (!key || (!msg && mlen) || !hex)
        return -1;
    if (hex_decode32(hex, strlen(hex), got) < 0)
        return -1;
    crypto_hmac_sha256(key, klen, msg ? msg : "", mlen, want);
    if (crypto_equal(want, got, 32))
        rc = 0;
    OPENSSL_cleanse(want, sizeof want);
    return rc;
}

int auth_mailgun_verify(const char *signing_key, const char *timestamp, const char *token,
                        const char *signature_hex, int64_t now_s, int64_t tolerance_s)
{
    int64_t ts;
    int rc = -1;
    char *msg = NULL;
    if (!signing_key || !*signing_key || !timestamp || !token || !*token || !signature_hex)
        goto done;
    if (parse_ts(timestamp, &ts) < 0)
        goto done;
    if (tolerance_s > 0 && !ts_within(ts, now_s, tolerance_s))
        goto done;
    msg = util_asprintf("%s%s", timestamp, token);
    if (!msg)
        goto done;
    rc = auth_hmac_sha256_hex_verify(signing_key, strlen(signing_key), msg, strlen(msg),
                                     signature_hex);
done:
    free(msg);
    return rc;
}
