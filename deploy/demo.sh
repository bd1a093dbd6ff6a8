#!/bin/sh
# README command A: installs what is needed (Debian 12, as root), builds, starts trackplan-sim
# (seeded with sites, assets and resources) and trackbridge serve with the shipped
# configuration and sample rules, sends a demo Alertmanager alert, a demo BMS alarm and a
# demo helpdesk email, and shows the jobs and job requests they created. Ctrl-C stops both.
# Ports: TRACKBRIDGE_PORT (default 8080) and SIM_PORT (default 8081).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
port=${TRACKBRIDGE_PORT:-8080}
sim_port=${SIM_PORT:-8081}

"$top/deploy/bootstrap.sh"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTB_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target trackbridge trackplan-sim >/dev/null
tb="$build/trackbridge"
sim="$build/trackplan-sim"

state=$(mktemp -d /tmp/trackbridge-demo.XXXXXX)
TRACKBRIDGE_TOKEN=demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
TRACKPLAN_API_KEY=demo-sim-key
TRACKPLAN_URL=http://127.0.0.1:$sim_port
TRACKBRIDGE_LISTEN=127.0.0.1:$port
TRACKBRIDGE_STORE=$state/trackbridge.db
export TRACKBRIDGE_TOKEN TRACKPLAN_API_KEY TRACKPLAN_URL TRACKBRIDGE_LISTEN TRACKBRIDGE_STORE

sim_pid=""
tb_pid=""
stop() {
    trap - INT TERM EXIT
    echo
    echo "stopping trackbridge and trackplan-sim ..."
    [ -n "$tb_pid" ] && kill "$tb_pid" 2>/dev/null && wait "$tb_pid" 2>/dev/null
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
    echo "stopped; logs and store are in $state"
    exit 0
}
trap stop INT TERM EXIT

wait_line() { # FILE: waits for "listening on"
    i=0
    while ! grep -q "listening on" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "did not start; see ${1%.out}.log" >&2; exit 1; }
        sleep 0.1
    done
}

"$sim" --listen "127.0.0.1:$sim_port" --api-key "$TRACKPLAN_API_KEY" \
    --seed "$top/deploy/sim-seed.json" >"$state/sim.out" 2>"$state/sim.log" &
sim_pid=$!
wait_line "$state/sim.out"
"$tb" check -c "$top/deploy/trackbridge.yaml"
"$tb" serve -c "$top/deploy/trackbridge.yaml" >"$state/tb.out" 2>"$state/trackbridge.log" &
tb_pid=$!
wait_line "$state/tb.out"
url=http://127.0.0.1:$port
echo "trackplan-sim on $TRACKPLAN_URL, trackbridge on $url"

hook() { # SOURCE CONTENT-TYPE FILE
    printf '  POST /hooks/%-13s ' "$1"
    curl -s -w ' -> %{http_code}\n' -H "Authorization: Bearer $TRACKBRIDGE_TOKEN" \
        -H "Content-Type: $2" --data-binary "@$3" "$url/hooks/$1"
}
echo
echo "sending a demo Alertmanager alert, a BMS alarm and a helpdesk email:"
hook alertmanager application/json "$top/deploy/demo/alertmanager.json"
hook bms application/json "$top/deploy/demo/bms.json"
hook email message/rfc822 "$top/deploy/demo/helpdesk.eml"
sleep 2

echo
echo "jobs in TrackplanFM (trackbridge api list_jobs):"
"$tb" api list_jobs --query page=1 --query pageSize=20 |
    python3 -c 'import json,sys
for j in json.load(sys.stdin)["data"]:
    print("  job %-3s %-9s %s" % (j.get("jobNumber"), j.get("status"), j.get("jobDetails","").splitlines()[0]))'
echo "job requests (trackbridge api list_job_requests):"
"$tb" api list_job_requests --query page=1 --query pageSize=20 |
    python3 -c 'import json,sys
for r in json.load(sys.stdin)["data"]:
    print("  JR  %-5s %-24s %s" % (r.get("jobRequestNumber"), r.get("raisedByEmail",""), r.get("description","").splitlines()[0]))'

cat <<NEXT

where to look next:
  metrics:   curl -s $url/metrics | grep ^trackbridge_
  a trace:   $tb explain -c deploy/trackbridge.yaml --set store.path=$TRACKBRIDGE_STORE 1
  logs:      tail -f $state/trackbridge.log
  dry run:   $tb test -c deploy/trackbridge.yaml --source alertmanager deploy/demo/alertmanager.json
  resolve:   sed 's/"firing"/"resolved"/g' deploy/demo/alertmanager.json | curl -s \\
               -H "Authorization: Bearer \$TRACKBRIDGE_TOKEN" -H 'Content-Type: application/json' \\
               --data-binary @- $url/hooks/alertmanager
  (TRACKBRIDGE_TOKEN=$TRACKBRIDGE_TOKEN)

trackbridge keeps running; press Ctrl-C to stop both.
NEXT
wait "$tb_pid"
