#!/bin/bash
# e2e_bench.sh: alerts per second turned into TrackplanFM jobs, end to end. N distinct
# Alertmanager alerts (groups of P per payload, generated first by gen_alerts.py) are posted
# to `trackbridge serve` (shipped configuration and sample rules, rate limit removed) with
# curl in parallel; the script then polls trackplan-sim until it holds N jobs, and prints
# the rate and its split (intake, planning, delivery) with the CPU each process used, as
# "name: value unit" lines. It prints figures; it asserts none.
#
# Usage: bash tests/bench/e2e_bench.sh          (a Release build in build-bench or build,
#        or TB_BUILD=DIR, or TB_BIN and SIM_BIN)
# Knobs: BENCH_ALERTS (20000), BENCH_PER (alerts per payload, 50), BENCH_PARALLEL (curl
#        transfers at once, 16), BENCH_TIMEOUT (s to wait for the jobs, 300), BENCH_SET
#        (extra "key=value ..." overrides for trackbridge), BENCH_KEEP=1 keeps the temp folder.
. "$(dirname "$0")/bench_lib.sh"
b_init e2e_bench

N=${BENCH_ALERTS:-20000}
PER=${BENCH_PER:-50}
PAR=${BENCH_PARALLEL:-16}
TIMEOUT=${BENCH_TIMEOUT:-300}
for v in "$N" "$PER" "$PAR" "$TIMEOUT"; do
    case $v in '' | *[!0-9]*) b_die "not a whole number: '$v'" ;; esac
done
[ "$N" -ge 1 ] && [ "$N" -le 1000000 ] || b_die "BENCH_ALERTS must be 1..1000000"
[ "$PAR" -ge 1 ] && [ "$PAR" -le 256 ] || b_die "BENCH_PARALLEL must be 1..256"
EXTRA=()
for kv in ${BENCH_SET:-}; do EXTRA+=(--set "$kv"); done
cd "$B_TMP" || b_die "no temporary folder"

# Payloads first, so generating them costs nothing during the run.
FILES=$(python3 "$B_HERE/gen_alerts.py" --alerts "$N" --per "$PER" --out "$B_TMP/payloads" \
    --salt "$(printf '%08x' $((RANDOM * 32768 + RANDOM)))") || b_die "gen_alerts.py failed"

b_sim
b_serve "$B_TMP/tb.db" "${EXTRA[@]}"
TB_PID=$B_PID_tb
SIM_PID=$B_PID_sim

# One curl process runs every transfer, PAR at a time (curl's --parallel, one config block
# per payload, "next" between blocks).
CFG=$B_TMP/curl.cfg
: >"$CFG"
chmod 600 "$CFG"
for f in "$B_TMP"/payloads/am_*.json; do
    [ -s "$CFG" ] && echo next >>"$CFG"
    cat >>"$CFG" <<EOF
url = "$TB_URL/hooks/alertmanager"
header = "Authorization: Bearer $TRACKBRIDGE_TOKEN"
header = "Content-Type: application/json"
data-binary = "@$f"
output = "/dev/null"
write-out = "%{http_code} %{time_total}\n"
max-time = 60
EOF
done

# jobs_count : the simulator's job count (-1 when it cannot be read); sed, not python, to keep
# the poller's own CPU out of the figures.
jobs_count() {
    local n
    n=$(curl -s --max-time 5 -H "X-API-Key: $TRACKPLAN_API_KEY" \
        "$SIM_URL/api/jobs?page=1&pageSize=1" | sed -n 's/^{"count":\([0-9]*\),.*/\1/p')
    echo "${n:--1}"
}
base_jobs=$(jobs_count)
[ "$base_jobs" -ge 0 ] || b_die "cannot read the job count from trackplan-sim"

# cpu_snap : "tb_loop tb_other sim busy total" clock ticks now (busy and total: all CPUs).
cpu_snap() {
    local loop all sim
    loop=$(b_ticks "$TB_PID/task/$TB_PID")
    all=$(b_ticks "$TB_PID")
    sim=$(b_ticks "$SIM_PID")
    echo "$loop $((all - loop)) $sim $(b_sys_ticks)"
}
# cpu_figs PHASE "SNAP0" "SNAP1" MS [LOADGEN_TICKS] : prints the CPU each side used over a
# phase, and what the rest of the machine (other than trackbridge, the simulator and the
# load generator) used.
cpu_figs() {
    local phase=$1 ms=$4 gen=${5:-0}
    set -- $2 $3
    local loop=$((${6} - ${1})) other=$((${7} - ${2})) sim=$((${8} - ${3}))
    local busy=$((${9} - ${4})) total=$((${10} - ${5}))
    local rest=$((busy - loop - other - sim - gen))
    [ "$rest" -ge 0 ] || rest=0
    P_LOOP=$(b_pct "$loop" "$ms")
    P_SIM=$(b_pct "$sim" "$ms")
    P_REST=$(b_pct "$rest" "$ms")
    P_BUSY=$(awk -v b="$busy" -v t="$total" 'BEGIN { printf "%.0f", (t > 0 ? b * 100 / t : 0) }')
    b_fig "${phase}_cpu_trackbridge_loop" "$P_LOOP" "% of a core"
    b_fig "${phase}_cpu_trackbridge_other_threads" "$(b_pct "$other" "$ms")" "% of a core"
    b_fig "${phase}_cpu_sim" "$P_SIM" "% of a core"
    b_fig "${phase}_cpu_other_processes" "$P_REST" "% of a core"
    b_fig "${phase}_cpu_machine" "$P_BUSY" "% of $B_NCPU cores"
}
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }'; }

b_note "e2e benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -sr), $B_NCPU CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
b_note "$N alerts in $FILES payloads of $PER, $PAR transfers at once${BENCH_SET:+, overrides: $BENCH_SET}"

S0=$(cpu_snap)
T0=$(b_now_ms)
TIMEFORMAT='%U %S'
{ time curl -s --parallel --parallel-max "$PAR" --config "$CFG" >"$B_TMP/codes" \
    2>"$B_TMP/curl.err"; } 2>"$B_TMP/curl.time"
T_IN=$(b_now_ms)
CURL_TICKS=$(awk -v hz="$B_HZ" '{ printf "%.0f", ($1 + $2) * hz }' "$B_TMP/curl.time")
S_IN=$(cpu_snap)
accepted=$(grep -c '^20[02] ' "$B_TMP/codes")
refused=$(grep -vc '^20[02] ' "$B_TMP/codes")
[ "$accepted" -gt 0 ] || b_die "no payload was accepted ($(cut -d' ' -f1 "$B_TMP/codes" | sort | uniq -c | tr '\n' ' '))"

# Wait for the jobs; note when the pipeline has planned every stored request. Stop when all
# N are there, at the timeout, or when nothing has moved for STALL seconds with nothing left
# to do (a refused payload's alerts never come).
STALL=10
T_PLAN=""
S_PLAN=""
jobs=0
first_job=""
last_jobs=-1
last_move=$(b_now_ms)
while :; do
    jobs=$(($(jobs_count) - base_jobs))
    now=$(b_now_ms)
    [ -z "$first_job" ] && [ "$jobs" -gt 0 ] && first_job=$now
    pending=$(b_metric trackbridge_requests_pending)
    if [ -z "$T_PLAN" ] && [ "$pending" = 0 ]; then
        T_PLAN=$now
        S_PLAN=$(cpu_snap)
    fi
    [ "$jobs" -ge "$N" ] && break
    [ $((now - T0)) -ge $((TIMEOUT * 1000)) ] && break
    if [ "$jobs" != "$last_jobs" ]; then
        last_jobs=$jobs
        last_move=$now
    elif [ $((now - last_move)) -ge $((STALL * 1000)) ] && [ "$pending" = 0 ] &&
        [ "$(b_metric trackbridge_queue_depth)" = 0 ]; then
        break
    fi
    sleep 0.2
done
T_END=$(b_now_ms)
S_END=$(cpu_snap)
[ -n "$T_PLAN" ] || { T_PLAN=$T_END; S_PLAN=$S_END; }
[ "$T_PLAN" -ge "$T_IN" ] || { T_PLAN=$T_IN; S_PLAN=$S_IN; }

b_fig alerts "$N" alerts
b_fig payloads_accepted "$accepted" requests
b_fig payloads_refused "$refused" requests
b_fig jobs_created "$jobs" jobs
if [ "$jobs" -ge "$N" ]; then
    b_fig complete yes ""
elif [ $((T_END - T0)) -ge $((TIMEOUT * 1000)) ]; then
    b_fig complete "no (timed out after ${TIMEOUT}s)" ""
else
    b_fig complete "no (stalled: nothing left to process or deliver)" ""
fi
b_fig e2e_time "$(secs $((T_END - T0)))" s
b_fig e2e_rate "$(rate "$jobs" $((T_END - T0)))" "alerts/s"
b_fig first_job_after "$(secs $((${first_job:-$T_END} - T0)))" s
b_fig intake_time "$(secs $((T_IN - T0)))" s
b_fig intake_rate "$(rate $((accepted * PER)) $((T_IN - T0)))" "alerts/s"
# Time each POST took to be answered (nearest rank over the transfers).
for q in 50 99 100; do
    name=intake_latency_p$q
    [ "$q" = 100 ] && name=intake_latency_max
    b_fig "$name" "$(awk '{ print $2 }' "$B_TMP/codes" | sort -n | awk -v q="$q" \
        '{ v[NR] = $1 } END { i = int((NR * q + 99) / 100); if (i < 1) i = 1; printf "%.0f", v[i] * 1000 }')" ms
done
b_fig after_intake_time "$(secs $((T_END - T_IN)))" s
b_fig all_planned_after "$(secs $((T_PLAN - T0)))" s
b_fig delivery_tail_time "$(secs $((T_END - T_PLAN)))" s
cpu_figs intake "$S0" "$S_IN" $((T_IN - T0)) "$CURL_TICKS"
b_fig intake_cpu_curl "$(b_pct "$CURL_TICKS" $((T_IN - T0)))" "% of a core"
cpu_figs after_intake "$S_IN" "$S_END" $((T_END - T_IN))
cpu_figs whole_run "$S0" "$S_END" $((T_END - T0)) "$CURL_TICKS"
# CPU time per job made (microseconds): unlike the rate, it barely moves when other
# processes compete for the cores.
set -- $S0 $S_END
per_job() { awk -v t="$1" -v n="$jobs" -v hz="$B_HZ" 'BEGIN { printf "%.0f", (n > 0 ? t * 1e6 / hz / n : 0) }'; }
b_fig trackbridge_loop_cpu_per_alert "$(per_job $((${6} - ${1})))" us
b_fig trackbridge_cpu_per_alert "$(per_job $((${6} + ${7} - ${1} - ${2})))" us
b_fig sim_cpu_per_alert "$(per_job $((${8} - ${3})))" us
# Which side bounds the rate: a saturated process, else the busiest of ours when the
# machine is saturated, else waiting.
if [ "$P_LOOP" -ge 75 ]; then
    limit="trackbridge event loop CPU ($P_LOOP % of a core; sim $P_SIM %)"
elif [ "$P_SIM" -ge 85 ]; then
    limit="trackplan-sim CPU ($P_SIM % of a core; trackbridge loop $P_LOOP %)"
elif [ "$P_BUSY" -ge 85 ] && [ "$P_LOOP" -ge "$P_SIM" ]; then
    limit="trackbridge event loop CPU with the cores shared ($P_BUSY % busy: trackbridge loop $P_LOOP %, sim $P_SIM %, other processes $P_REST %)"
elif [ "$P_BUSY" -ge 85 ]; then
    limit="trackplan-sim CPU with the cores shared ($P_BUSY % busy: sim $P_SIM %, trackbridge loop $P_LOOP %, other processes $P_REST %)"
else
    limit="waits, not CPU (cores $P_BUSY % busy; trackbridge loop $P_LOOP %, sim $P_SIM %)"
fi
b_fig limit "$limit" ""
b_fig trackbridge_peak_rss "$(b_mib "$(b_kib "$TB_PID" VmHWM)")" MiB
b_fig sim_peak_rss "$(b_mib "$(b_kib "$SIM_PID" VmHWM)")" MiB
b_fig dead_letters "$(b_metric trackbridge_dead_letters)" deliveries
exit 0
