#!/bin/bash
# Intake security and lifecycle through the real server: Standard Webhooks and GitHub
# signatures over HTTP, key rotation, stale timestamps, allow-lists, URL tokens, rate limits,
# webhook-id deduplication, TLS with a client certificate, and SIGHUP reload (good and bad).
. "$(dirname "$0")/lib.sh"

export TRACKPLAN_API_KEY=sec-sim-key
t_sim --api-key "$TRACKPLAN_API_KEY"
CONF=$T_TMP/tb.yaml
SW_OLD=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
SW_NEW=whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=
GH="It's a Secret to Everybody"

# A CA, a server certificate and a client certificate for the TLS listener.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout "$T_TMP/ca.key" \
    -out "$T_TMP/ca.pem" 2>/dev/null
for who in server client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$T_TMP/$who.key" \
        -out "$T_TMP/$who.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$T_TMP/ext"
    openssl x509 -req -in "$T_TMP/$who.csr" -CA "$T_TMP/ca.pem" -CAkey "$T_TMP/ca.key" \
        -CAcreateserial -days 2 -extfile "$T_TMP/ext" -out "$T_TMP/$who.pem" 2>/dev/null
done

write_conf() {
    cat >"$CONF" <<YAML
listen: 127.0.0.1:0
tls: {listen: "127.0.0.1:0", cert: server.pem, key: server.key, client_ca: ca.pem}
trackplan: {url: "$SIM_URL", api_key: "\${TRACKPLAN_API_KEY}"}
store: {path: tb.db}
rules: rules
sources:
  sw:
    adapter: json
    auth: {hmac: {scheme: standard-webhooks, secrets: [$SW_NEW, $SW_OLD], tolerance: 300}}
  gh:
    adapter: json
    auth: {hmac: {scheme: github, secrets: ["$GH"]}}
  limited:
    adapter: json
    auth: {bearer: rl-token}
    rate_limit: {rate: 0.5, burst: 2}
  fenced:
    adapter: json
    auth: {bearer: fence-token, allow: [10.9.9.0/24]}
  urltok:
    adapter: json
    auth: {url_token: {param: key, values: [u-token-1]}}
$1
YAML
}
mkdir -p "$T_TMP/rules"
cat >"$T_TMP/rules/10-probe.yaml" <<'YAML'
rules:
  - name: probes-are-not-work
    actions:
      - op: ignore
YAML
write_conf ""
t_start tb "$TB_BIN" serve -c "$CONF"
TB_URL=$T_URL
TLS_URL=$(sed -n 's/.*listening on \(https:\/\/[^ ]*\).*/\1/p' "$T_TMP/tb.out")

BODY='{"status":"firing","title":"probe"}'
printf '%s' "$BODY" >"$T_TMP/body"
sw_sig() { # secret id ts file -> v1,base64
    python3 -c '
import base64, hashlib, hmac, sys
key = base64.b64decode(sys.argv[1].split("_", 1)[1])
msg = (sys.argv[2] + "." + sys.argv[3] + ".").encode() + open(sys.argv[4], "rb").read()
print("v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode())' "$@"
}
post_sw() { # id ts sig [file] -> status
    curl -s -o "$T_TMP/resp" -w '%{http_code}' -H 'Content-Type: application/json' \
        -H "webhook-id: $1" -H "webhook-timestamp: $2" -H "webhook-signature: $3" \
        --data-binary "@${4:-$T_TMP/body}" "$TB_URL/hooks/sw"
}
now=$(date +%s)
t_eq "a Standard Webhooks signature with the old key is accepted" \
    "$(post_sw msg-1 "$now" "$(sw_sig "$SW_OLD" msg-1 "$now" "$T_TMP/body")")" 202
t_eq "the same webhook-id again answers 200" \
    "$(post_sw msg-1 "$now" "$(sw_sig "$SW_OLD" msg-1 "$now" "$T_TMP/body")")" 200
t_eq "the rotated key is accepted too" \
    "$(post_sw msg-2 "$now" "$(sw_sig "$SW_NEW" msg-2 "$now" "$T_TMP/body")")" 202
t_eq "several signatures, one valid, are accepted" \
    "$(post_sw msg-3 "$now" "v1,AAAA $(sw_sig "$SW_NEW" msg-3 "$now" "$T_TMP/body")")" 202
printf '%s' '{"status":"firing","title":"probf"}' >"$T_TMP/flipped"
t_eq "a flipped body byte is refused" \
    "$(post_sw msg-4 "$now" "$(sw_sig "$SW_NEW" msg-4 "$now" "$T_TMP/body")" "$T_TMP/flipped")" 403
old=$((now - 600))
t_eq "a stale timestamp is refused" \
    "$(post_sw msg-5 "$old" "$(sw_sig "$SW_NEW" msg-5 "$old" "$T_TMP/body")")" 403
future=$((now + 600))
t_eq "a future timestamp is refused" \
    "$(post_sw msg-6 "$future" "$(sw_sig "$SW_NEW" msg-6 "$future" "$T_TMP/body")")" 403
t_eq "no signature headers answer 401" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary "@$T_TMP/body" "$TB_URL/hooks/sw")" 401

gh_sig=$(python3 -c 'import hashlib,hmac,sys; print("sha256="+hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$GH" "$T_TMP/body")
t_eq "a GitHub-style signature is accepted" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Content-Type: application/json' -H "X-Hub-Signature-256: $gh_sig" \
    --data-binary "@$T_TMP/body" "$TB_URL/hooks/gh")" 202
t_eq "a GitHub-style signature over other bytes is refused" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Content-Type: application/json' -H "X-Hub-Signature-256: $gh_sig" \
    --data-binary "@$T_TMP/flipped" "$TB_URL/hooks/gh")" 403

codes=""
for i in 1 2 3; do
    codes="$codes$(curl -s -o /dev/null -D "$T_TMP/rl.$i" -w '%{http_code} ' -H 'Authorization: Bearer rl-token' \
        -H 'Content-Type: application/json' --data-binary "@$T_TMP/body" "$TB_URL/hooks/limited")"
done
t_eq "the burst passes, then the rate limit answers 429" "$codes" "202 202 429 "
t_ok "a 429 says when to retry" grep -qi '^retry-after: [1-9]' "$T_TMP/rl.3"
t_eq "a peer outside the allow-list is refused" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Authorization: Bearer fence-token' -H 'Content-Type: application/json' \
    --data-binary "@$T_TMP/body" "$TB_URL/hooks/fenced")" 403
t_eq "a URL token is accepted" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary "@$T_TMP/body" "$TB_URL/hooks/urltok?key=u-token-1")" 202
t_eq "a wrong URL token is refused" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary "@$T_TMP/body" "$TB_URL/hooks/urltok?key=nope")" 401
t_ok "the URL token is not stored with the request" sh -c "! sqlite3 '$T_TMP/tb.db.intake' 'SELECT headers FROM requests' | grep -q u-token-1"

t_ok "TLS with a client certificate is served" sh -c "curl -sf --cacert '$T_TMP/ca.pem' --cert '$T_TMP/client.pem' --key '$T_TMP/client.key' '$TLS_URL/healthz' | grep -q ok"
t_ok "TLS without a client certificate is refused" sh -c "! curl -sf --cacert '$T_TMP/ca.pem' '$TLS_URL/healthz'"

# SIGHUP: a good configuration adds a source; a broken one is refused and the old one kept.
t_eq "an unknown source answers 404 before the reload" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary "@$T_TMP/body" "$TB_URL/hooks/late")" 404
write_conf "  late: {adapter: json, auth: {bearer: late-token}}"
kill -HUP "$T_PID_tb"
reloaded() { grep -q 'msg=reloaded' "$T_TMP/tb.err"; }
for _ in $(seq 50); do reloaded && break; sleep 0.1; done
t_eq "the source added by the reload answers 202" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Authorization: Bearer late-token' -H 'Content-Type: application/json' \
    --data-binary "@$T_TMP/body" "$TB_URL/hooks/late")" 202
printf 'sources: [unclosed\n' >"$CONF"
kill -HUP "$T_PID_tb"
failed() { grep -q 'reload failed' "$T_TMP/tb.err"; }
for _ in $(seq 50); do failed && break; sleep 0.1; done
t_ok "a broken configuration is refused on reload" failed
t_eq "the running configuration is kept" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Authorization: Bearer late-token' -H 'Content-Type: application/json' \
    --data-binary "@$T_TMP/body" "$TB_URL/hooks/late")" 202
t_ok "readiness holds after the failed reload" sh -c "curl -sf '$TB_URL/readyz' | grep -q ready"
t_done
