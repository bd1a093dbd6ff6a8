/* email: the `email` source adapter — a raw message (message/rfc822, or text/plain from the
 * MTA pipe) or a provider post (SendGrid, Mailgun, Postmark) becomes exactly one event with
 * the normalised fields, the mail fields (docs/email.md), the ticket reference and the
 * machine-mail verdict. The MIME, provider, reference and loop work lives in src/mail/. */
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/crypto.h"
#include "common/util.h"
#include "mail/loop.h"
#include "mail/parse.h"
#include "mail/provider.h"
#include "mail/ref.h"

enum ev_family { EV_RAW, EV_FORM, EV_JSON, EV_OTHER };

static enum ev_family ev_family_of(const char *content_type, char *mt, size_t size)
{
    size_t k = 0;
    const char *p = content_type ? content_type : "";
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && *p != ';' && *p != ' ' && *p != '\t' && k + 1 < size) {
        char c = *p++;
        mt[k++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    mt[k] = '\0';
    if (k == 0 || strcmp(mt, "message/rfc822") == 0 || strcmp(mt, "text/plain") == 0 ||
        strcmp(mt, "application/octet-stream") == 0 || strcmp(mt, "message/global") == 0)
        return EV_RAW;
    if (strcmp(mt, "multipart/form-data") == 0 ||
        strcmp(mt, "application/x-www-form-urlencoded") == 0)
        return EV_FORM;
    if (strcmp(mt, "application/json") == 0 || (k > 5 && strcmp(mt + k - 5, "+json") == 0))
        return EV_JSON;
    return EV_OTHER;
}

/* The message as a mail_result from whichever provider format the request is in. */
static enum mail_result ev_message(const struct adapter_input *in,
                                   const struct adapter_limits *lim, struct mail_options *opt,
                                   enum mail_provider *used, json_t **msg, char **err)
{
    char mt[96];
    enum ev_family fam = ev_family_of(in->content_type, mt, sizeof mt);
    enum mail_provider want = opt->provider;
    const char *body = in->body ? in->body : "";
    enum mail_result r;

    switch (fam) {
    case EV_RAW:
        if (want != MAIL_PROVIDER_AUTO && want != MAIL_PROVIDER_RAW) {
            *err = adapter_errf("content type %s does not fit provider %s", mt[0] ? mt : "(none)",
                                mail_provider_name(want));
            return MAIL_REJECT;
        }
        *used = MAIL_PROVIDER_RAW;
        return mail_parse_message(body, in->body_len, &opt->limits, msg, err);
    case EV_FORM: {
        if (want == MAIL_PROVIDER_RAW || want == MAIL_PROVIDER_POSTMARK) {
            *err = adapter_errf("content type %s does not fit provider %s", mt,
                                mail_provider_name(want));
            return MAIL_REJECT;
        }
        struct mail_form *form = NULL;
        r = mail_form_parse(body, in->body_len, in->content_type, &opt->limits, &form, err);
        if (r != MAIL_OK)
            return r;
        enum mail_provider p = want;
        if (p == MAIL_PROVIDER_AUTO)
            p = mail_provider_detect(in->content_type, form, NULL);
        if (p == MAIL_PROVIDER_SENDGRID) {
            r = mail_provider_sendgrid(form, &opt->limits, msg, err);
        } else if (p == MAIL_PROVIDER_MAILGUN) {
            r = mail_provider_mailgun(form, &opt->limits, msg, err);
        } else {
            *err = adapter_errf("cannot tell SendGrid from Mailgun by the form fields; set the "
                                "provider option");
            r = MAIL_REJECT;
        }
        *used = p;
        mail_form_free(form);
        return r;
    }
    case EV_JSON: {
        if (want != MAIL_PROVIDER_AUTO && want != MAIL_PROVIDER_POSTMARK) {
            *err = adapter_errf("content type %s does not fit provider %s", mt,
                                mail_provider_name(want));
            return MAIL_REJECT;
        }
        json_t *doc = adapter_parse_json(body, in->body_len, adapter_max_depth(lim), err);
        if (!doc)
            return MAIL_REJECT;
        if (want == MAIL_PROVIDER_AUTO &&
            mail_provider_detect(in->content_type, NULL, doc) != MAIL_PROVIDER_POSTMARK) {
            json_decref(doc);
            *err = adapter_errf("JSON body is not a Postmark inbound post (no FromFull, "
                                "MessageID or TextBody)");
            return MAIL_REJECT;
        }
        *used = MAIL_PROVIDER_POSTMARK;
        r = mail_provider_postmark(doc, &opt->limits, msg, err);
        json_decref(doc);
        return r;
    }
    case EV_OTHER:
        break;
    }
    *err = adapter_errf("content type %s is not accepted by the email adapter (message/rfc822, "
                        "text/plain, multipart/form-data, application/x-www-form-urlencoded, "
                        "application/json)",
                        mt);
    return MAIL_REJECT;
}

/* The thread root's Message-ID: first of References, else In-Reply-To, else the message's
 * own id, else the provider's id, else a digest of the request body. malloc'd. */
static char *ev_key(json_t *msg, const struct adapter_input *in)
{
    const char *k = json_string_value(json_array_get(json_object_get(msg, "references"), 0));
    if (!k || !*k)
        k = json_string_value(json_object_get(msg, "in_reply_to"));
    if (!k || !*k)
        k = json_string_value(json_object_get(msg, "message_id"));
    if (!k || !*k)
        k = json_string_value(json_object_get(msg, "provider_message_id"));
    if (k && *k)
        return strdup(k);
    unsigned char d[32];
    char hex[65];
    crypto_sha256(in->body ? in->body : "", in->body ? in->body_len : 0, d);
    crypto_hex(d, 16, hex);
    return util_asprintf("body-sha256:%s", hex);
}

/* raw: the message without the big bodies and attachment contents (new reference). */
static json_t *ev_raw(json_t *msg)
{
    json_t *raw = json_deep_copy(msg);
    if (!raw)
        return NULL;
    json_object_del(raw, "body");
    json_object_del(raw, "body_stripped");
    json_object_del(raw, "html");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(raw, "attachments"), i, a)
        json_object_del(a, "content");
    return raw;
}

static json_t *ev_build(const struct adapter_input *in, json_t *msg,
                        const struct mail_options *opt, enum mail_provider provider)
{
    json_t *raw = NULL, *ev = NULL;
    char *key = NULL;
    if (json_object_set_new(msg, "provider", json_string(mail_provider_name(provider))) < 0)
        goto fail;
    raw = ev_raw(msg);
    if (!raw)
        goto fail;
    ev = adapter_event_new(in, "email", raw);
    if (!ev)
        goto fail;
    key = ev_key(msg, in);
    if (!key)
        goto fail;
    adapter_set(ev, "key", key);
    adapter_set(ev, "title", json_string_value(json_object_get(msg, "subject")));
    adapter_set(ev, "text", json_string_value(json_object_get(msg, "body_stripped")));
    const char *date = json_string_value(json_object_get(msg, "date"));
    if (date && *date)
        adapter_set(ev, "time", date);

    /* the mail fields, as the message has them */
    const char *key_s;
    json_t *v;
    json_object_foreach(msg, key_s, v)
    {
        if (json_object_get(ev, key_s))
            continue;
        if (json_object_set(ev, key_s, v) < 0)
            goto fail;
    }
    struct mail_ref ref;
    const struct mail_ref_set *set = opt->refs ? opt->refs : mail_ref_set_default();
    json_t *tref = json_null();
    if (set && mail_ref_find(set, msg, (const char *const *)opt->our_domains,
                             opt->n_our_domains, &ref))
        tref = json_pack("{s:s, s:s, s:s}", "kind", mail_ref_kind_name(ref.kind), "number",
                         ref.number, "via", mail_ref_via_name(ref.via));
    if (!tref || json_object_set_new(ev, "ticket_ref", tref) < 0)
        goto fail;
    struct mail_loop_config lc = {(const char *const *)opt->our_domains, opt->n_our_domains,
                                  opt->loop_id};
    char reason[160];
    int is_auto = mail_loop_is_auto(msg, &lc, reason, sizeof reason);
    if (json_object_set_new(ev, "auto", json_boolean(is_auto)) < 0)
        goto fail;
    adapter_set(ev, "auto_reason", is_auto ? reason : "");
    json_decref(raw);
    free(key);
    return ev;
fail:
    json_decref(raw);
    json_decref(ev);
    free(key);
    return NULL;
}

enum adapter_result adapter_email_run(const struct adapter_input *in,
                                      const struct adapter_limits *lim, json_t **events,
                                      char **err)
{
    *events = NULL;
    *err = NULL;
    struct mail_options opt;
    json_t *msg = NULL, *ev = NULL, *arr = NULL;
    enum mail_provider used = MAIL_PROVIDER_AUTO;
    enum adapter_result res = ADAPTER_REJECT;

    if (mail_provider_options_parse(in->options, &opt, err) < 0)
        return ADAPTER_REJECT;
    enum mail_result r = ev_message(in, lim, &opt, &used, &msg, err);
    if (r != MAIL_OK) {
        if (!*err)
            *err = adapter_errf("message could not be read");
        goto done;
    }
    ev = ev_build(in, msg, &opt, used);
    arr = json_array();
    if (!ev || !arr || json_array_append(arr, ev) < 0) {
        *err = adapter_errf("out of memory while building the email event");
        goto done;
    }
    *events = arr;
    arr = NULL;
    res = ADAPTER_OK;
done:
    json_decref(arr);
    json_decref(ev);
    json_decref(msg);
    mail_provider_options_free(&opt);
    return res;
}
