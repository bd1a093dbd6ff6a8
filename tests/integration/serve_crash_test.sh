#!/bin/bash
# Crash safety: trackbridge is killed with SIGKILL again and again while alerts pour in.
# Every alert that got a 2xx must become exactly one job; no alert may become two.
. "$(dirname "$0")/lib.sh"

ROUNDS=${CRASH_ROUNDS:-6}
PER_ROUND=${CRASH_ALERTS:-40}
export TRACKBRIDGE_TOKEN=crash-hook-token TRACKPLAN_API_KEY=crash-sim-key
t_sim --api-key "$TRACKPLAN_API_KEY" --seed "$TB_SRC/deploy/sim-seed.json"
DB=$T_TMP/tb.db
mkdir -p "$T_TMP/payloads" "$T_TMP/acks"

# One Alertmanager payload per alert, each with its own fingerprint.
python3 - "$T_TMP/payloads" "$ROUNDS" "$PER_ROUND" <<'PY'
import json, sys
out, rounds, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for r in range(rounds):
    for i in range(per):
        fp = "f%02d%04d" % (r, i)
        alert = {"status": "firing", "labels": {"alertname": "CrashProbe", "severity": "critical",
                 "instance": fp, "site": "HQ"}, "annotations": {"summary": "probe " + fp},
                 "startsAt": "2026-11-28T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "", "fingerprint": fp}
        body = {"version": "4", "groupKey": "{}:{alertname=\"CrashProbe\"}", "status": "firing",
                "receiver": "tb", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                "externalURL": "", "truncatedAlerts": 0, "alerts": [alert]}
        json.dump(body, open("%s/%d-%s.json" % (out, r, fp), "w"))
PY

serve() {
    t_start tb "$TB_BIN" serve -c "$TB_SRC/deploy/trackbridge.yaml" \
        --set listen=127.0.0.1:0 --set "trackplan.url=$SIM_URL" --set "store.path=$DB" \
        --set delivery.backoff.base=50ms --set delivery.backoff.cap=300ms \
        --set sources.alertmanager.rate_limit.rate=100000 \
        --set sources.alertmanager.rate_limit.burst=100000
    TB_URL=$T_URL
}

for r in $(seq 0 $((ROUNDS - 1))); do
    serve
    pids=""
    for f in "$T_TMP"/payloads/"$r"-*.json; do
        fp=$(basename "$f" .json); fp=${fp#*-}
        ( code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' \
                -H "Authorization: Bearer $TRACKBRIDGE_TOKEN" -H 'Content-Type: application/json' \
                --data-binary "@$f" "$TB_URL/hooks/alertmanager")
          case $code in 2??) : >"$T_TMP/acks/$fp" ;; esac ) &
        pids="$pids $!"
    done
    # Kill somewhere between the first requests and the deliveries of the last ones.
    sleep "0.$(( (RANDOM % 8) + 1 ))"
    kill -9 "$T_PID_tb" 2>/dev/null
    wait "$T_PID_tb" 2>/dev/null
    for p in $pids; do wait "$p" 2>/dev/null; done
    mv "$T_TMP/tb.err" "$T_TMP/tb-round$r.log"
done

acked=$(ls "$T_TMP/acks" | wc -l)
echo "# $acked of $((ROUNDS * PER_ROUND)) alerts were acknowledged before the kills"
t_ok "some alerts were acknowledged" test "$acked" -gt 0

serve
jobs_by_fp() {
    curl -s -H "X-API-Key: $TRACKPLAN_API_KEY" "$SIM_URL/api/jobs?page=1&pageSize=1000" |
        python3 -c '
import json, re, sys, collections
c = collections.Counter()
for j in json.load(sys.stdin)["data"]:
    m = re.search(r"alert:alertmanager:(f\d{6})", j.get("jobDetails", ""))
    if m: c[m.group(1)] += 1
for fp, n in sorted(c.items()): print(fp, n)'
}
settled() { # every acknowledged alert has a job
    jobs_by_fp >"$T_TMP/jobs"
    for a in $(ls "$T_TMP/acks"); do grep -q "^$a " "$T_TMP/jobs" || return 1; done
    return 0
}
ok=1
for _ in $(seq 300); do settled && break; sleep 0.1; done
sleep 1   # let anything still in flight land, so a double would show
jobs_by_fp >"$T_TMP/jobs"
missing=0
for a in $(ls "$T_TMP/acks"); do grep -q "^$a " "$T_TMP/jobs" || missing=$((missing + 1)); done
t_eq "every acknowledged alert became a job" "$missing" 0
doubles=$(awk '$2 > 1' "$T_TMP/jobs" | wc -l)
t_eq "no alert became two jobs" "$doubles" 0
[ "$doubles" -eq 0 ] || awk '$2 > 1' "$T_TMP/jobs"
echo "# $(wc -l <"$T_TMP/jobs") jobs for $acked acknowledged alerts"
t_done
