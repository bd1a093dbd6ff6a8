#!/bin/bash
# End to end through the real binaries: trackplan-sim as TrackplanFM, trackbridge serve with
# the shipped configuration and sample rules, driven as Alertmanager would drive it.
. "$(dirname "$0")/lib.sh"

DATA=$TB_SRC/tests/integration/data
export TRACKBRIDGE_TOKEN=e2e-hook-token-5f1c TRACKPLAN_API_KEY=e2e-sim-key-9a7b
ADMIN=e2e-admin-token-c3d2
t_sim --api-key "$TRACKPLAN_API_KEY" --seed "$TB_SRC/deploy/sim-seed.json"
DB=$T_TMP/tb.db

serve() {
    t_start tb "$TB_BIN" serve -c "$TB_SRC/deploy/trackbridge.yaml" \
        --set listen=127.0.0.1:0 --set "trackplan.url=$SIM_URL" --set "store.path=$DB" \
        --set delivery.backoff.base=50ms --set delivery.backoff.cap=200ms \
        --set trackplan.retries.max=0 --set delivery.max_attempts=4 \
        --set delivery.breaker.failures=0 --set "admin.token=$ADMIN"
    TB_URL=$T_URL
}

post() { # post FILE [extra curl args...] -> prints "status body"
    f=$1; shift
    curl -s -o "$T_TMP/resp" -w '%{http_code}' -H "Authorization: Bearer $TRACKBRIDGE_TOKEN" \
        -H 'Content-Type: application/json' --data-binary "@$f" "$@" "$TB_URL/hooks/alertmanager"
}

sim_jobs() { # prints "count status,status,..."
    curl -s -H "X-API-Key: $TRACKPLAN_API_KEY" "$SIM_URL/api/jobs?page=1&pageSize=1000" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["count"], ",".join(sorted(j.get("status","") for j in d["data"])))'
}

wait_jobs() { # wait_jobs WANT -> waits up to 15 s for sim_jobs to print WANT
    for _ in $(seq 150); do
        [ "$(sim_jobs)" = "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

stored_requests() { sqlite3 "$DB.intake" 'SELECT count(*) FROM requests'; }

serve

# 1. A firing group of two alerts makes two jobs.
t_eq "firing payload is accepted with 202" "$(post "$DATA/am_firing.json")" 202
t_ok "the 202 body carries the request id" grep -q '"id":"[0-9a-f-]\{36\}"' "$T_TMP/resp"
FIRST_ID=$(python3 -c 'import json;print(json.load(open("'"$T_TMP/resp"'"))["id"])')
t_ok "two jobs appear in TrackplanFM" wait_jobs "2 Open,Open"

# 2. The same payload 20 times at once (HA peers, repeat_interval) makes nothing more.
pids=""
for i in $(seq 20); do post "$DATA/am_firing.json" >"$T_TMP/dup.$i" & pids="$pids $!"; done
for p in $pids; do wait "$p"; done
t_eq "every repeat is accepted" "$(cat "$T_TMP"/dup.* | tr -d '\n')" "$(printf '202%.0s' $(seq 20))"
sleep 1
t_eq "repeats create no job" "$(sim_jobs)" "2 Open,Open"

# 3. The resolve completes the same two jobs.
t_eq "resolved payload is accepted" "$(post "$DATA/am_resolved.json")" 202
t_ok "both jobs are completed" wait_jobs "2 Completed,Completed"

# 4. A delivery with an Idempotency-Key is stored once; the repeat gets 200 and the first id.
t_eq "keyed delivery is accepted" "$(post "$DATA/am_firing.json" -H 'Idempotency-Key: k-1')" 202
K1=$(cat "$T_TMP/resp")
t_eq "keyed repeat answers 200" "$(post "$DATA/am_firing.json" -H 'Idempotency-Key: k-1')" 200
t_eq "keyed repeat returns the first id" "$(python3 -c 'import json,sys;a=json.loads(sys.argv[1]);b=json.load(open(sys.argv[2]));print(a["id"]==b["id"], b.get("duplicate"))' "$K1" "$T_TMP/resp")" "True True"
t_ok "firing again after completion reopens: two new jobs" wait_jobs "4 Completed,Completed,Open,Open"

# 5. Bad input: the documented status, a problem body, and nothing stored.
before=$(stored_requests)
check_problem() { # NAME WANT_STATUS CURL_ARGS...
    name=$1 want=$2; shift 2
    got=$(curl -s -o "$T_TMP/prob" -D "$T_TMP/hdr" -w '%{http_code}' "$@")
    t_eq "$name answers $want" "$got" "$want"
    t_ok "$name answers problem+json" grep -qi '^content-type: application/problem+json' "$T_TMP/hdr"
    t_ok "$name body has type, title, status, detail" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert all(k in d for k in ("type","title","status","detail")) and d["status"]==int(sys.argv[2])' "$T_TMP/prob" "$want"
}
AUTH="Authorization: Bearer $TRACKBRIDGE_TOKEN"
JSON='Content-Type: application/json'
check_problem "no credentials" 401 -H "$JSON" --data-binary "@$DATA/am_firing.json" "$TB_URL/hooks/alertmanager"
check_problem "a wrong token" 401 -H "Authorization: Bearer nope" -H "$JSON" --data-binary "@$DATA/am_firing.json" "$TB_URL/hooks/alertmanager"
check_problem "an unknown source" 404 -H "$AUTH" -H "$JSON" --data-binary '{}' "$TB_URL/hooks/nosuch"
check_problem "a GET on a hook" 405 -H "$AUTH" "$TB_URL/hooks/alertmanager"
check_problem "broken JSON" 400 -H "$AUTH" -H "$JSON" --data-binary '{"alerts": [' "$TB_URL/hooks/alertmanager"
check_problem "too deep JSON" 400 -H "$AUTH" -H "$JSON" --data-binary "$(python3 -c 'print("["*200 + "]"*200)')" "$TB_URL/hooks/alertmanager"
check_problem "a form body" 415 -H "$AUTH" -H 'Content-Type: application/x-www-form-urlencoded' --data-binary 'a=b' "$TB_URL/hooks/alertmanager"
head -c 1100000 /dev/zero | tr '\0' ' ' >"$T_TMP/big"
check_problem "a body over the limit" 413 -H "$AUTH" -H "$JSON" --data-binary "@$T_TMP/big" "$TB_URL/hooks/alertmanager"
t_eq "refused requests are not stored" "$(stored_requests)" "$before"

# 6. TrackplanFM answers 503 twice: retried, then delivered.
curl -s -o /dev/null -X POST -d '{"status":503,"count":2,"path":"^/api/jobs$","method":"POST"}' "$SIM_URL/_sim/faults"
sed 's/c4a1d0f3e2b18a77/aaaa000000000001/; s/9be01d44aa73c2f0/aaaa000000000002/' "$DATA/am_firing.json" >"$T_TMP/f503.json"
t_eq "alert during an outage is accepted" "$(post "$T_TMP/f503.json")" 202
t_ok "jobs arrive after the 503s" wait_jobs "6 Completed,Completed,Open,Open,Open,Open"
n503=$(curl -s "$SIM_URL/_sim/requests" | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["status"]==503))')
t_eq "the simulator saw both 503s" "$n503" 2

# 7. A 400 from TrackplanFM dead-letters the step; replay delivers it.
curl -s -o /dev/null -X POST -d '{"status":400,"count":8,"path":"^/api/jobs$","method":"POST"}' "$SIM_URL/_sim/faults"
sed 's/c4a1d0f3e2b18a77/bbbb000000000001/; s/9be01d44aa73c2f0/bbbb000000000002/' "$DATA/am_firing.json" >"$T_TMP/f400.json"
t_eq "alert rejected downstream is still accepted" "$(post "$T_TMP/f400.json")" 202
REQ400=$(python3 -c 'import json;print(json.load(open("'"$T_TMP/resp"'"))["id"])')
dead() { curl -s "$TB_URL/metrics" | sed -n 's/^trackbridge_dead_letters \([0-9]*\).*/\1/p'; }
wait_dead() { for _ in $(seq 100); do [ "$(dead)" = "$1" ] && return 0; sleep 0.1; done; return 1; }
t_ok "both creates are dead letters" wait_dead 2
t_ok "explain shows the dead letter" sh -c "'$TB_BIN' explain -c '$TB_SRC/deploy/trackbridge.yaml' --set 'store.path=$DB' $REQ400 | grep -q '\"state\": \"dead\"'"
curl -s -o /dev/null -X DELETE "$SIM_URL/_sim/faults"
t_ok "replay --dead requeues them" sh -c "'$TB_BIN' replay -c '$TB_SRC/deploy/trackbridge.yaml' --set 'store.path=$DB' --dead | grep -q '^2 dead letters'"
t_ok "replayed deliveries create the jobs" wait_jobs "8 Completed,Completed,Open,Open,Open,Open,Open,Open"

# 8. The admin API shows a request's trace; without the token it is refused.
t_eq "admin API needs its token" "$(curl -s -o /dev/null -w '%{http_code}' "$TB_URL/api/events/$FIRST_ID")" 401
curl -s -H "Authorization: Bearer $ADMIN" "$TB_URL/api/events/$FIRST_ID" >"$T_TMP/trace"
t_ok "the trace names the rule, key and both API calls" python3 -c '
import json,sys; t=json.load(open(sys.argv[1]))
ev=t["events"]; assert len(ev)==2 and all(e["rule"]=="monitoring-alert" for e in ev)
assert all(e["key"].startswith("alert:alertmanager:") for e in ev)
assert all([d["op"] for d in e["deliveries"]]==["list_sites","create_job"] and all(d["state"]=="done" for d in e["deliveries"]) for e in ev)
for e in ev:
    tried = e["trace"]["rules"]
    assert tried[-1]["rule"] == "monitoring-alert" and tried[-1]["matched"] is True, tried
    assert len(tried) >= 2 and not any(t["matched"] for t in tried[:-1]), tried
    assert all(t["where"].startswith("rules/") or "/rules/" in t["where"] for t in tried), tried
    assert all(d["ms_after_planning"] >= 0 for d in e["deliveries"]) and e["planned_at"]' "$T_TMP/trace"

# 8b. A resolve that arrives while its create is still out is kept: the create's completion
#     does not turn the key back to open, so a recurrence opens a new job.
curl -s -o /dev/null -X POST -d '{"delayMs":1500,"count":2,"path":"^/api/jobs$","method":"POST"}' "$SIM_URL/_sim/faults"
sed 's/c4a1d0f3e2b18a77/dddd000000000001/; s/9be01d44aa73c2f0/dddd000000000002/' "$DATA/am_firing.json" >"$T_TMP/fslow.json"
sed 's/c4a1d0f3e2b18a77/dddd000000000001/; s/9be01d44aa73c2f0/dddd000000000002/' "$DATA/am_resolved.json" >"$T_TMP/rslow.json"
t_eq "firing with slow creates is accepted" "$(post "$T_TMP/fslow.json")" 202
sleep 0.5
t_eq "its resolve, sent while the creates are out, is accepted" "$(post "$T_TMP/rslow.json")" 202
t_ok "the slow jobs are created, then completed" wait_jobs "10 Completed,Completed,Completed,Completed,Open,Open,Open,Open,Open,Open"
curl -s -o /dev/null -X DELETE "$SIM_URL/_sim/faults"
t_eq "the alert firing again is accepted" "$(post "$T_TMP/fslow.json")" 202
t_ok "it opens new jobs (the keys stayed resolved)" wait_jobs "12 Completed,Completed,Completed,Completed,Open,Open,Open,Open,Open,Open,Open,Open"

# 9. Work accepted while TrackplanFM is down is delivered after a restart of trackbridge.
kill "$T_PID_sim"; wait "$T_PID_sim" 2>/dev/null
sed 's/c4a1d0f3e2b18a77/cccc000000000001/; s/9be01d44aa73c2f0/cccc000000000002/' "$DATA/am_firing.json" >"$T_TMP/fdown.json"
t_eq "alert while TrackplanFM is down is accepted" "$(post "$T_TMP/fdown.json")" 202
sleep 1
kill "$T_PID_tb"; wait "$T_PID_tb" 2>/dev/null
t_ok "trackbridge stopped cleanly on SIGTERM" grep -q 'msg=stopped' "$T_TMP/tb.err"
mv "$T_TMP/tb.err" "$T_TMP/tb-first.err"
t_sim --api-key "$TRACKPLAN_API_KEY" --seed "$TB_SRC/deploy/sim-seed.json" --listen "${SIM_URL#http://}"
serve
t_ok "pending deliveries resume after the restart" wait_jobs "2 Open,Open"

# 10. A store at its size cap answers 503 with Retry-After; everything acknowledged is kept.
t_start tbfull "$TB_BIN" serve -c "$TB_SRC/deploy/trackbridge.yaml" \
    --set listen=127.0.0.1:0 --set "trackplan.url=$SIM_URL" --set "store.path=$T_TMP/full.db" \
    --set store.max_size=256KiB --set sources.alertmanager.rate_limit=null
FULL_URL=$T_URL
python3 - "$DATA/am_firing.json" "$T_TMP/big.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["alerts"][0]["annotations"]["pad"] = "x" * 40000
json.dump(d, open(sys.argv[2], "w"))
PY
accepted=0 full=""
for i in $(seq 40); do
    code=$(curl -s -D "$T_TMP/full.hdr" -o "$T_TMP/full.body" -w '%{http_code}' \
        -H "Authorization: Bearer $TRACKBRIDGE_TOKEN" -H 'Content-Type: application/json' \
        --data-binary "@$T_TMP/big.json" "$FULL_URL/hooks/alertmanager")
    if [ "$code" = 202 ]; then accepted=$((accepted + 1)); else full=$code; break; fi
done
t_eq "past its cap the store answers 503" "$full" 503
t_ok "some requests fitted before the cap" test "$accepted" -gt 0
t_ok "the 503 says to retry later" grep -qi '^retry-after: [0-9]' "$T_TMP/full.hdr"
t_ok "the 503 is a problem naming the full store" sh -c "grep -qi '^content-type: application/problem+json' '$T_TMP/full.hdr' && grep -q 'store is full' '$T_TMP/full.body'"
t_eq "every acknowledged request is stored, nothing else" "$(sqlite3 "$T_TMP/full.db.intake" 'SELECT count(*) FROM requests')" "$accepted"
t_eq "readiness reports the full store" "$(curl -s -o /dev/null -w '%{http_code}' "$FULL_URL/readyz")" 503
kill "$T_PID_tbfull"; wait "$T_PID_tbfull" 2>/dev/null

# 11. No secret ever reaches a log.
for secret in "$TRACKBRIDGE_TOKEN" "$TRACKPLAN_API_KEY" "$ADMIN"; do
    t_ok "no log holds a secret" sh -c "! grep -rqF -- '$secret' '$T_TMP'/*.err"
done
t_done
