#!/usr/bin/env bash
# sim_auth_test: trackplan-sim authenticates as the guide's §1 and §2.1 describe — API keys in a
# configurable header, JWT login (HS256, sub/iat/exp/role, expiry), read-only users refused
# writes with 403, and §3.1 bodies for 401 and 403; with no credentials configured it is open.
. "$TB_SRC/tests/integration/lib.sh"

HDR=()

. "$TB_SRC/tests/integration/sim_lib.sh"

# claims TOKEN EXPR : a Python expression over the token's decoded claims (as d).
claims() {
    local saved=$BODY out
    BODY=$(printf '{"t":"%s"}' "$1")
    out=$(j "(lambda d: $2)(json.loads(__import__('base64').urlsafe_b64decode(d['t'].split('.')[1] + '==')))")
    BODY=$saved
    printf '%s\n' "$out"
}

unauthorized_body='["https://tools.ietf.org/html/rfc7235#section-3.1", "Unauthorized", 401, "Invalid authentication credentials"]'
problem='[d["type"], d["title"], d["status"], d["detail"]]'
page='page=1&pageSize=10'

t_sim --api-key key-1 --api-key key-2 --user admin:s3cret --user viewer:look:ro

# ---- API keys ------------------------------------------------------------------------------
HDR=()
call GET "/api/sites?$page"
t_eq "no credentials answer 401" "$ST" 401
t_eq "the 401 body is the guide's" "$(j "$problem")" "$unauthorized_body"
t_ok "the 401 asks for a bearer token" grep -q '^WWW-Authenticate: Bearer' <<<"$HEADERS"
HDR=(-H 'X-API-Key: wrong')
call GET "/api/sites?$page"
t_eq "a wrong API key answers 401" "$ST $(j "$problem")" "401 $unauthorized_body"
HDR=(-H 'X-API-Key: key-1')
call GET "/api/sites?$page"
t_eq "the first API key is accepted" "$ST" 200
HDR=(-H 'x-api-key: key-2')
call POST /api/sites '{"name":"HQ"}'
t_eq "the second API key may write" "$ST" 200

# ---- login and JWT -------------------------------------------------------------------------
HDR=()
call POST /api/auth/login '{"username":"admin","password":"wrong"}'
t_eq "a wrong password answers 401" "$ST $(j "$problem")" "401 $unauthorized_body"
call POST /api/auth/login '{"username":"nobody","password":"s3cret"}'
t_eq "an unknown user answers 401" "$ST" 401
call POST /api/auth/login '{"username":"admin"}'
t_eq "a login without password answers 400 naming it" "$ST $(j 'list(d["errors"])')" '400 ["password"]'
call POST /api/auth/login '{"Username":"admin","PASSWORD":"s3cret"}'
t_eq "login binds its properties ignoring case" "$ST" 200
TOKEN=$(j 'd["token"]')
t_eq "the token is HS256" \
    "$(j "json.loads(__import__('base64').urlsafe_b64decode(d['token'].split('.')[0] + '=='))['alg']")" HS256
t_eq "the token names its user and role" "$(claims "$TOKEN" '[d["sub"], d["role"]]')" '["admin", "full"]'
t_eq "the token expires an hour after it was issued" \
    "$(claims "$TOKEN" 'd["exp"] - d["iat"]')" 3600
HDR=(-H "Authorization: Bearer $TOKEN")
call GET "/api/sites?$page"
t_eq "a bearer token is accepted" "$ST $(j 'd["count"]')" "200 1"
call POST /api/sites '{"name":"Depot"}'
t_eq "a full user may write" "$ST" 200
HDR=(-H "authorization: bearer $TOKEN")
call GET "/api/sites?$page"
t_eq "the scheme name ignores case" "$ST" 200
TAMPERED=$(python3 -c 'import sys,base64,json
h,p,s = sys.argv[1].split(".")
c = json.loads(base64.urlsafe_b64decode(p + "=="))
c["role"] = "full"; c["sub"] = "mallory"
p = base64.urlsafe_b64encode(json.dumps(c).encode()).decode().rstrip("=")
print(h + "." + p + "." + s)' "$TOKEN")
HDR=(-H "Authorization: Bearer $TAMPERED")
call GET "/api/sites?$page"
t_eq "a token with altered claims answers 401" "$ST $(j "$problem")" "401 $unauthorized_body"
t_ok "the 401 says the token is invalid" grep -q 'error="invalid_token"' <<<"$HEADERS"
HDR=(-H 'Authorization: Bearer abc.def')
call GET "/api/sites?$page"
t_eq "a malformed token answers 401" "$ST" 401
HDR=(-H 'Authorization: Basic YWRtaW46czNjcmV0')
call GET "/api/sites?$page"
t_eq "basic credentials answer 401" "$ST" 401

# ---- read-only users -----------------------------------------------------------------------
HDR=()
call POST /api/auth/login '{"username":"viewer","password":"look"}'
t_eq "a read-only user may log in" "$ST" 200
VTOKEN=$(j 'd["token"]')
t_eq "its token carries the read-only role" "$(claims "$VTOKEN" 'd["role"]')" readonly
HDR=(-H "Authorization: Bearer $VTOKEN")
call GET "/api/sites?$page"
SITE=$(j 'd["data"][0]["guid"]')
t_eq "a read-only user may read" "$ST" 200
call POST /api/sites '{"name":"Nope"}'
t_eq "a read-only user may not create" "$ST" 403
t_eq "the 403 body is the guide's" "$(j "$problem")" \
    '["https://tools.ietf.org/html/rfc7231#section-6.5.3", "Forbidden", 403, "Insufficient permissions to access the requested resource"]'
call PUT "/api/sites/$SITE" '{"name":"Nope"}'
t_eq "a read-only user may not update" "$ST" 403
call DELETE "/api/assets/$SITE"
t_eq "a read-only user may not delete" "$ST" 403
call POST /api/auth/login '{"username":"viewer","password":"look"}'
t_eq "a read-only user may log in again" "$ST" 200
HDR=(-H 'X-API-Key: key-1')
call GET "/api/sites?$page"
t_eq "the read-only user's refused writes stored nothing" "$(j 'd["count"]')" 2
call GET "/_sim/requests"
t_eq "the request log masks credentials" \
    "$(j 'sorted(set(v for e in d for k, v in e["headers"].items() if k.lower() in ("authorization", "x-api-key")))')" \
    '["***", "Basic ***", "Bearer ***", "bearer ***"]'
t_eq "the request log masks login passwords" \
    "$(j 'sorted(set(e["body"].get("password", e["body"].get("PASSWORD")) for e in d if e["op"] == "login" and "assword" in json.dumps(e["body"])))')" \
    '["***"]'
t_ok "logs never show a password or key" bash -c "! grep -Eq 's3cret|key-1|key-2|look' '$T_TMP/sim.err'"
stop_sim

# ---- tokens are per process and expire -----------------------------------------------------
t_sim --user u:p --token-ttl 1
HDR=(-H "Authorization: Bearer $TOKEN")
call GET "/api/sites?$page"
t_eq "a token from another simulator process answers 401" "$ST" 401
HDR=()
call POST /api/auth/login '{"username":"u","password":"p"}'
SHORT=$(j 'd["token"]')
t_eq "--token-ttl sets the lifetime" "$(claims "$SHORT" 'd["exp"] - d["iat"]')" 1
HDR=(-H "Authorization: Bearer $SHORT")
call GET "/api/sites?$page"
t_eq "a fresh token is accepted" "$ST" 200
sleep 2
call GET "/api/sites?$page"
t_eq "an expired token answers 401" "$ST $(j "$problem")" "401 $unauthorized_body"
t_ok "the 401 says the token expired" grep -q 'error_description="The token expired"' <<<"$HEADERS"
stop_sim

# ---- custom key header ---------------------------------------------------------------------
t_sim --api-key key-9 --api-key-header X-Custom-Key
HDR=(-H 'X-API-Key: key-9')
call GET "/api/sites?$page"
t_eq "the default header is not read when another is configured" "$ST" 401
HDR=(-H 'X-Custom-Key: key-9')
call GET "/api/sites?$page"
t_eq "the configured header carries the key" "$ST" 200
stop_sim

# ---- open mode -----------------------------------------------------------------------------
t_sim
HDR=()
call POST /api/sites '{"name":"Open"}'
t_eq "with no keys and no users every call is accepted" "$ST" 200
call POST /api/auth/login '{"username":"any","password":"thing"}'
t_eq "an open simulator lets anyone log in" "$ST" 200
t_ok "an open simulator says so on stderr" grep -q 'open' "$T_TMP/sim.err"
stop_sim
t_done
