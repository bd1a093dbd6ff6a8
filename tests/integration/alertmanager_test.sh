#!/bin/bash
# A real sender: Debian's Prometheus Alertmanager with a webhook receiver pointing at
# trackbridge (bearer credentials, send_resolved). Alerts fired through Alertmanager's API
# become jobs in trackplan-sim, and are completed when Alertmanager sends the resolve.
. "$(dirname "$0")/lib.sh"

AM=$(command -v prometheus-alertmanager || true)
if [ -z "$AM" ]; then
    echo "FAIL - prometheus-alertmanager is not installed (deploy/bootstrap.sh installs it)"
    echo "0 passed, 1 failed"
    exit 1
fi
export TRACKBRIDGE_TOKEN=am-hook-token-7d TRACKPLAN_API_KEY=am-sim-key
t_sim --api-key "$TRACKPLAN_API_KEY" --seed "$TB_SRC/deploy/sim-seed.json"
t_start tb "$TB_BIN" serve -c "$TB_SRC/deploy/trackbridge.yaml" --set listen=127.0.0.1:0 \
    --set "trackplan.url=$SIM_URL" --set "store.path=$T_TMP/tb.db"
TB_URL=$T_URL

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AM_PORT=$(free_port)
cat >"$T_TMP/alertmanager.yml" <<YAML
route:
  receiver: trackbridge
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: trackbridge
    webhook_configs:
      - url: $TB_URL/hooks/alertmanager
        send_resolved: true
        max_alerts: 100
        http_config:
          authorization:
            type: Bearer
            credentials: $TRACKBRIDGE_TOKEN
YAML
"$AM" --config.file="$T_TMP/alertmanager.yml" --storage.path="$T_TMP/am-data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
    >"$T_TMP/am.out" 2>"$T_TMP/am.log" &
T_PIDS="$T_PIDS $!"
AM_URL=http://127.0.0.1:$AM_PORT
for _ in $(seq 100); do curl -sf "$AM_URL/-/ready" >/dev/null && break; sleep 0.1; done
t_ok "Alertmanager is ready" curl -sf "$AM_URL/-/ready" -o /dev/null

fire() { # ENDS_AT (empty: firing)
    python3 - "$AM_URL" "${1:-}" <<'PY'
import json, sys, urllib.request, datetime
url, ends = sys.argv[1], sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc)
alerts = []
for inst in ("ahu-1:9100", "ahu-2:9100"):
    a = {"labels": {"alertname": "AirHandlerFault", "severity": "critical", "instance": inst,
                    "site": "HQ"},
         "annotations": {"summary": "Air handler %s fault" % inst.split(":")[0],
                         "description": "Supply fan status does not match command."},
         "startsAt": (now - datetime.timedelta(minutes=5)).isoformat()}
    if ends:
        a["endsAt"] = now.isoformat()
    alerts.append(a)
req = urllib.request.Request(url + "/api/v2/alerts", json.dumps(alerts).encode(),
                             {"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
PY
}
sim_jobs() {
    curl -s -H "X-API-Key: $TRACKPLAN_API_KEY" "$SIM_URL/api/jobs?page=1&pageSize=100" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["count"], ",".join(sorted(j["status"] for j in d["data"])))'
}
wait_jobs() { for _ in $(seq 300); do [ "$(sim_jobs)" = "$1" ] && return 0; sleep 0.1; done; return 1; }

fire
t_ok "two firing alerts become two open jobs" wait_jobs "2 Open,Open"
t_ok "the jobs name the alert" sh -c "curl -s -H 'X-API-Key: $TRACKPLAN_API_KEY' '$SIM_URL/api/jobs?page=1&pageSize=10' | grep -q 'Air handler ahu-1 fault'"
fire resolved
t_ok "the resolve from Alertmanager completes both jobs" wait_jobs "2 Completed,Completed"
accepted=$(curl -s "$TB_URL/metrics" | sed -n 's/^trackbridge_requests_total{source="alertmanager",code="202"} \([0-9]*\).*/\1/p')
t_ok "Alertmanager's notifications were accepted with 202" test "${accepted:-0}" -ge 2
t_done
