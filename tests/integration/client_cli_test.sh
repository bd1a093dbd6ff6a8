#!/bin/bash
# client_cli_test: `trackbridge api` and `trackbridge ping` against trackplan-sim — exit codes
# (2xx -> 0, HTTP or transport error -> 1, usage -> 2), printed JSON, field errors of a 400,
# the verbose trace with credentials masked, and both authentication modes.
. "$(dirname "$0")/lib.sh"
unset TRACKPLAN_URL TRACKPLAN_API_KEY TRACKPLAN_USER TRACKPLAN_PASSWORD

KEY=K-cli-secret-42
t_sim --api-key "$KEY" --user "ops:pa:ss"
API="$TB_BIN api --url $SIM_URL"
DEAD=http://127.0.0.1:9   # discard port: nothing listens on loopback there

# Usage errors -> 2
$TB_BIN api >/dev/null 2>"$T_TMP/e"; t_eq "no arguments is a usage error" $? 2
$API --api-key "$KEY" no_such_op >/dev/null 2>"$T_TMP/e"; t_eq "an unknown operation is a usage error" $? 2
t_ok "the unknown operation is named" grep -q "unknown operation 'no_such_op'" "$T_TMP/e"
$API --api-key "$KEY" create_site --data '{not json' >/dev/null 2>"$T_TMP/e"; t_eq "bad --data JSON is a usage error" $? 2
$API --api-key "$KEY" get_site >/dev/null 2>&1; t_eq "a missing GUID is a usage error" $? 2
$API --api-key "$KEY" create_site >/dev/null 2>&1; t_eq "a create without --data is a usage error" $? 2
$API --api-key "$KEY" --bogus list_sites >/dev/null 2>&1; t_eq "an unknown option is a usage error" $? 2
$TB_BIN api list_sites >/dev/null 2>"$T_TMP/e" </dev/null; t_eq "no URL is a usage error" $? 2
$TB_BIN ping extra >/dev/null 2>&1; t_eq "ping takes no arguments" $? 2
$TB_BIN api --help >"$T_TMP/o"; t_eq "api --help exits 0" $? 0
t_ok "api --help lists the operations" grep -q "upsert_stock_level" "$T_TMP/o"
$TB_BIN ping --help >"$T_TMP/o"; t_eq "ping --help exits 0" $? 0

# 2xx -> 0, with the JSON on stdout
$API --api-key "$KEY" create_site --data '{"name": "Depot, North (B|2)", "code": 7}' >"$T_TMP/o"
t_eq "create_site exits 0" $? 0
GUID=$(tr -d '"[:space:]' <"$T_TMP/o")
t_ok "create_site prints the new GUID" grep -Eq '^[0-9a-f-]{36}$' <<<"$GUID"
$API --api-key "$KEY" get_site "$GUID" >"$T_TMP/o"; t_eq "get_site exits 0" $? 0
t_ok "get_site prints the site, indented by two" grep -q '^  "name": "Depot, North (B|2)",$' "$T_TMP/o"
$API --api-key "$KEY" list_sites --query page=1 --query pageSize=10 >"$T_TMP/o"
t_eq "list_sites with --query exits 0" $? 0
t_ok "list_sites shows the count" grep -q '"count": 1' "$T_TMP/o"
$API --api-key "$KEY" list_sites --filter 'name==Depot\, North \(B\|2\)' >"$T_TMP/o"
t_eq "--filter exits 0" $? 0
t_ok "--filter with escapes finds the site" grep -q '"count": 1' "$T_TMP/o"
$API --api-key "$KEY" list_sites --filter 'name==Depot' >"$T_TMP/o"
t_ok "--filter excludes other names" grep -q '"count": 0' "$T_TMP/o"
$API --api-key "$KEY" GET "/api/Sites?page=1&pageSize=5" >"$T_TMP/o"; t_eq "METHOD PATH exits 0" $? 0
t_ok "METHOD PATH prints the page" grep -q '"data": \[' "$T_TMP/o"
printf '{"name": "From a file", "code": 9}' >"$T_TMP/site.json"
$API --api-key "$KEY" create_site --data "@$T_TMP/site.json" >/dev/null; t_eq "--data @FILE exits 0" $? 0
$API --api-key "$KEY" list_sites --all --order-by 'name desc' >"$T_TMP/o"; t_eq "--all exits 0" $? 0
t_ok "--all gathers both sites in order" \
    bash -c "grep -o '\"name\": \"[^\"]*\"' '$T_TMP/o' | head -1 | grep -q 'From a file'"

# HTTP errors -> 1, explained on stderr
$API --api-key "$KEY" get_site 6f1c2d3e-0000-4000-8000-00000000abcd >"$T_TMP/o" 2>"$T_TMP/e"
t_eq "a 404 exits 1" $? 1
t_ok "the 404 is explained" grep -q "HTTP 404 Not Found" "$T_TMP/e"
t_ok "nothing is printed on stdout for a 404" test ! -s "$T_TMP/o"
$API --api-key "$KEY" create_job --data '{"siteId": 1}' >/dev/null 2>"$T_TMP/e"
t_eq "a 400 exits 1" $? 1
t_ok "the 400 lists its field errors" grep -q "^  jobDetails: " "$T_TMP/e"
$API --api-key wrong list_sites >/dev/null 2>"$T_TMP/e"; t_eq "a wrong key exits 1" $? 1
t_ok "the 401 is explained" grep -q "HTTP 401" "$T_TMP/e"

# Transport errors -> 1
$TB_BIN api --url $DEAD --api-key "$KEY" --retries 1 list_sites >/dev/null 2>"$T_TMP/e"
t_eq "an unreachable server exits 1" $? 1
t_ok "the transport error is explained" grep -q "transport error 7" "$T_TMP/e"

# -v: lines and headers on stderr, credentials masked
$API --api-key "$KEY" -v list_sites >/dev/null 2>"$T_TMP/e"; t_eq "-v exits 0" $? 0
t_ok "-v shows the request line" grep -q '^> GET /api/sites?page=1&pageSize=50 HTTP/1.1' "$T_TMP/e"
t_ok "-v shows the response status" grep -q '^< HTTP/1.1 200' "$T_TMP/e"
t_ok "-v masks the API key" grep -q '^> X-API-Key: \*\*\*' "$T_TMP/e"
t_ok "-v never shows the key" bash -c "! grep -q '$KEY' '$T_TMP/e'"
t_ok "-v shows the user agent" grep -q '^> User-Agent: trackbridge/' "$T_TMP/e"

# JWT credentials from the environment; -v masks the bearer token
TRACKPLAN_URL=$SIM_URL TRACKPLAN_USER=ops TRACKPLAN_PASSWORD=pa:ss $TB_BIN api -v list_sites \
    >"$T_TMP/o" 2>"$T_TMP/e"
t_eq "JWT login from the environment exits 0" $? 0
t_ok "the login went first" grep -q '^> POST /api/auth/login' "$T_TMP/e"
t_ok "-v masks the bearer token" grep -q '^> Authorization: Bearer \*\*\*$' "$T_TMP/e"
t_ok "-v never shows the password" bash -c "! grep -q 'pa:ss' '$T_TMP/e'"
TRACKPLAN_URL=$SIM_URL $TB_BIN api --user ops:wrong list_sites >/dev/null 2>"$T_TMP/e"
t_eq "a refused login exits 1" $? 1
t_ok "the refused login is explained" grep -q "login failed: HTTP 401" "$T_TMP/e"

# ping
$TB_BIN ping --url "$SIM_URL" --api-key "$KEY" >"$T_TMP/o"; t_eq "ping with a good key exits 0" $? 0
t_ok "ping says ok" grep -Eq "^ok: $SIM_URL reachable, credentials accepted \([0-9]+ ms\)$" "$T_TMP/o"
$TB_BIN ping --url "$SIM_URL" --user ops:pa:ss >"$T_TMP/o"; t_eq "ping with a user exits 0" $? 0
$TB_BIN ping --url "$SIM_URL" --api-key nope >/dev/null 2>"$T_TMP/e"; t_eq "ping with a wrong key exits 1" $? 1
t_ok "ping names the 401" grep -q "credentials rejected (401)" "$T_TMP/e"
$TB_BIN ping --url "$SIM_URL" --user ops:nope >/dev/null 2>"$T_TMP/e"; t_eq "ping with a wrong password exits 1" $? 1
t_ok "ping names the refused login" grep -q "login credentials rejected (401)" "$T_TMP/e"
$TB_BIN ping --url $DEAD --api-key "$KEY" >/dev/null 2>"$T_TMP/e"; t_eq "ping of a dead port exits 1" $? 1
t_ok "ping says unreachable" grep -q "unreachable" "$T_TMP/e"
$TB_BIN ping --url "$SIM_URL/nothing-here" --api-key "$KEY" >/dev/null 2>"$T_TMP/e"
t_eq "ping of a wrong base URL exits 1" $? 1
t_ok "ping suspects the base URL" grep -q "not found (404)" "$T_TMP/e"

# -c: the configuration's trackplan section, with --set overrides; the command line still wins
env -u TRACKPLAN_URL TRACKBRIDGE_TOKEN=t TRACKPLAN_API_KEY="$KEY" $TB_BIN ping -c "$TB_SRC/deploy/trackbridge.yaml" \
    --set "trackplan.url=$SIM_URL" >"$T_TMP/o"
t_eq "ping -c reads the URL and key from the configuration" $? 0
env -u TRACKPLAN_URL TRACKBRIDGE_TOKEN=t TRACKPLAN_API_KEY="$KEY" $TB_BIN api -c "$TB_SRC/deploy/trackbridge.yaml" \
    --set "trackplan.url=$SIM_URL" list_sites --query page=1 --query pageSize=1 >"$T_TMP/o"
t_eq "api -c calls with the configuration's credentials" $? 0
env -u TRACKPLAN_URL TRACKBRIDGE_TOKEN=t TRACKPLAN_API_KEY="$KEY" $TB_BIN ping -c "$TB_SRC/deploy/trackbridge.yaml" \
    --set "trackplan.url=$SIM_URL" --api-key nope >/dev/null 2>&1
t_eq "the command line overrides the configuration" $? 1
env -u TRACKPLAN_API_KEY TRACKBRIDGE_TOKEN=t $TB_BIN ping -c "$TB_SRC/deploy/trackbridge.yaml" >/dev/null 2>"$T_TMP/e"
t_eq "a configuration that does not load exits 1" $? 1
t_ok "and says where" grep -q "trackbridge.yaml:[0-9]*:[0-9]*: environment variable TRACKPLAN_API_KEY is not set" "$T_TMP/e"

t_done
