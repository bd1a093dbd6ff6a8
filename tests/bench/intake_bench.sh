#!/bin/bash
# intake_bench.sh: durable intake throughput of `trackbridge serve`. wrk POSTs a real
# Alertmanager payload to /hooks/alertmanager (shipped configuration and sample rules,
# trackplan-sim behind, rate limit removed) at 32 and 128 connections, then the same load
# against a bare nginx answering 202 '{}', and prints requests/s, latency, CPU, peak RSS and
# the trackbridge/nginx ratio as "name: value unit" lines. It prints figures; it asserts none.
#
# Usage: bash tests/bench/intake_bench.sh       (a Release build in build-bench or build,
#        or TB_BUILD=DIR, or TB_BIN and SIM_BIN)
# Knobs: BENCH_DURATION (s per run, 10), BENCH_THREADS (wrk threads, 2), BENCH_CONNS ("32 128"),
#        BENCH_BODY_FILE (payload), BENCH_NGINX_WORKERS (1), BENCH_DRAIN_MAX (s, 120),
#        BENCH_KEEP=1 keeps the temporary folder (logs, store).
. "$(dirname "$0")/bench_lib.sh"
b_init intake_bench

command -v wrk >/dev/null 2>&1 || b_die "wrk is not installed (apt-get install wrk)"
DURATION=${BENCH_DURATION:-10}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-32 128}
BODY=${BENCH_BODY_FILE:-$B_ROOT/tests/integration/data/am_firing.json}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-1}
DRAIN_MAX=${BENCH_DRAIN_MAX:-120}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -r "$BODY" ] || b_die "no payload $BODY"
BODY=$(cd "$(dirname "$BODY")" && pwd)/$(basename "$BODY")
for v in "$DURATION" "$THREADS" "$NGINX_WORKERS" "$DRAIN_MAX" $CONNS; do
    case $v in '' | *[!0-9]*) b_die "not a whole number: '$v'" ;; esac
done
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 600 ] || b_die "BENCH_DURATION must be 1..600"
for c in $CONNS; do
    [ "$c" -ge "$THREADS" ] && [ "$c" -le 10000 ] || b_die "connections must be $THREADS..10000"
done
cd "$B_TMP" || b_die "no temporary folder"

# trackplan-sim and trackbridge -----------------------------------------------------------
b_sim
SIM_PID=$B_PID_sim
DB=$B_TMP/tb.db
b_serve "$DB"
TB_PID=$B_PID_tb
code=$(curl -s -o "$B_TMP/first" -w '%{http_code}' -H "Authorization: Bearer $TRACKBRIDGE_TOKEN" \
    -H 'Content-Type: application/json' --data-binary "@$BODY" "$TB_URL/hooks/alertmanager")
[ "$code" = 202 ] || b_die "a first POST answered $code: $(cat "$B_TMP/first")"

# nginx: its own instance, everything in the temporary folder --------------------------------
NGINX_URL=""
NG_PID=""
if [ -x "$NGINX" ]; then
    NG=$B_TMP/nginx
    mkdir -p "$NG/logs" "$NG/tmp"
    NG_PORT=$(b_free_port)
    cat >"$NG/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $NG/nginx.pid;
error_log $NG/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    client_max_body_size 1m;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NG_PORT;
        default_type application/json;
        location / { return 202 '{}'; }
    }
}
EOF
    "$NGINX" -p "$NG" -e "$NG/logs/error.log" -c "$NG/nginx.conf" -g 'daemon off;' \
        >"$NG/logs/stdout" 2>&1 &
    NG_PID=$!
    B_PIDS="$B_PIDS $NG_PID"
    for _ in $(seq 50); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '{}' \
            "http://127.0.0.1:$NG_PORT/hooks/alertmanager")" = 202 ]; then
            NGINX_URL=http://127.0.0.1:$NG_PORT
            break
        fi
        kill -0 "$NG_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$NGINX_URL" ] || b_note "nginx did not start: $(tail -n 3 "$NG/logs/error.log" 2>/dev/null)"
else
    b_note "nginx is not installed: no baseline (apt-get install nginx-light)"
fi

# proc_ticks PID... : CPU ticks of the processes (all their threads; gone ones count 0).
proc_ticks() {
    local p sum=0
    for p in "$@"; do sum=$((sum + $(b_ticks "$p"))); done
    echo "$sum"
}
# nginx_pids : the nginx master and its workers.
nginx_pids() {
    [ -n "$NG_PID" ] || return 0
    echo "$NG_PID $(cat "/proc/$NG_PID/task/$NG_PID/children" 2>/dev/null)"
}

# run_wrk LABEL URL CONNS PID... : one wrk run against URL. Sets the W_* figures: wrk's
# counts and latencies; CPU (percent of a core) of the first PID's main thread (W_CPU_MAIN),
# of the PIDs' other threads and processes (W_CPU_OTH), of wrk, of every process this
# script did not start (W_CPU_REST); and how busy the machine was (W_BUSY, percent).
run_wrk() {
    local label=$1 url=$2 conns=$3 t0 t1 sys0 sys1 main0 main1 all0 all1 ours0 ours1
    shift 3
    local pid=$1 pids="$*" ours
    ours="$TB_PID $SIM_PID $(nginx_pids)"
    main0=$(b_ticks "$pid/task/$pid")
    all0=$(proc_ticks $pids)
    ours0=$(proc_ticks $ours)
    sys0=$(b_sys_ticks)
    t0=$(b_now_ms)
    local TIMEFORMAT='%U %S' out=$B_TMP/wrk-$label-$conns.out
    { time BENCH_BODY=$BODY BENCH_TOKEN=$TRACKBRIDGE_TOKEN wrk -t"$THREADS" -c"$conns" \
        -d"${DURATION}s" --timeout 5s --latency -s "$B_HERE/post.lua" "$url/hooks/alertmanager" \
        >"$out" 2>&1; } 2>"$B_TMP/wrk-$label-$conns.time"
    t1=$(b_now_ms)
    sys1=$(b_sys_ticks)
    main1=$(b_ticks "$pid/task/$pid")
    all1=$(proc_ticks $pids)
    ours1=$(proc_ticks $ours)
    grep -q '^wrk_requests ' "$out" || { cat "$out" >&2; b_die "wrk did not run against $label"; }
    W_REQ=$(sed -n 's/^wrk_requests //p' "$out")
    W_DUR=$(sed -n 's/^wrk_duration_us //p' "$out")
    W_BAD=$(sed -n 's/^wrk_errors_status //p' "$out")
    W_SOCK=$(sed -n 's/^wrk_errors_socket //p' "$out")
    W_P50=$(sed -n 's/^wrk_latency_p50_us //p' "$out")
    W_P90=$(sed -n 's/^wrk_latency_p90_us //p' "$out")
    W_P99=$(sed -n 's/^wrk_latency_p99_us //p' "$out")
    W_MAX=$(sed -n 's/^wrk_latency_max_us //p' "$out")
    W_OK=$((W_REQ - W_BAD))
    W_RPS=$(awk -v n="$W_OK" -v us="$W_DUR" 'BEGIN { printf "%.0f", (us > 0 ? n * 1e6 / us : 0) }')
    local ms=$((t1 - t0)) wrk_ticks rest
    wrk_ticks=$(awk -v hz="$B_HZ" '{ printf "%.0f", ($1 + $2) * hz }' "$B_TMP/wrk-$label-$conns.time")
    # CPU time per answered request (microseconds): unlike the rate, it barely moves when
    # other processes compete for the cores.
    W_US_MAIN=$(awk -v t=$((main1 - main0)) -v n="$W_REQ" -v hz="$B_HZ" \
        'BEGIN { printf "%.0f", (n > 0 ? t * 1e6 / hz / n : 0) }')
    W_US_ALL=$(awk -v t=$((all1 - all0)) -v n="$W_REQ" -v hz="$B_HZ" \
        'BEGIN { printf "%.0f", (n > 0 ? t * 1e6 / hz / n : 0) }')
    W_CPU_MAIN=$(b_pct $((main1 - main0)) "$ms")
    W_CPU_OTH=$(b_pct $((all1 - all0 - (main1 - main0))) "$ms")
    W_CPU_WRK=$(b_pct "$wrk_ticks" "$ms")
    set -- $sys0 $sys1
    rest=$(($3 - $1 - (ours1 - ours0) - wrk_ticks))
    [ "$rest" -ge 0 ] || rest=0
    W_CPU_REST=$(b_pct "$rest" "$ms")
    W_BUSY=$(awk -v b="$(($3 - $1))" -v t="$(($4 - $2))" 'BEGIN { printf "%.0f", (t > 0 ? b * 100 / t : 0) }')
}

ms_of() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

# limit_of : which side most likely bounds the last run's rate (from the W_CPU_* figures):
# a saturated process, else the busiest of ours when the cores are saturated, else waiting.
limit_of() {
    awk -v m="$W_CPU_MAIN" -v o="$W_CPU_OTH" -v w="$W_CPU_WRK" -v r="$W_CPU_REST" \
        -v b="$W_BUSY" -v thr="$THREADS" 'BEGIN {
        if (m >= 75) print "server CPU (its event loop " m " % of a core)";
        else if (w >= 85 * thr) print "wrk CPU (" w " % over " thr " threads)";
        else if (b >= 85 && m + o >= w) print "server CPU with the cores shared (" b " % busy: server " m + o " %, wrk " w " %, other processes " r " %)";
        else if (b >= 85) print "wrk CPU with the cores shared (" b " % busy: wrk " w " %, server " m + o " %, other processes " r " %)";
        else print "waits, not CPU (cores " b " % busy, event loop " m " %): commit latency (fsync) or I/O";
    }'
}

b_note "intake benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -sr), $B_NCPU CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
b_note "payload $(basename "$BODY") ($(wc -c <"$BODY") bytes), wrk -t$THREADS, ${DURATION}s per run, nginx workers $NGINX_WORKERS"
b_fig disk_fsync_rate "$(b_fsync_rate "$B_TMP")" "fsync/s"

TB_TOTAL_OK=0
for c in $CONNS; do
    commits0=$(b_metric trackbridge_intake_commits_total)
    run_wrk trackbridge "$TB_URL" "$c" "$TB_PID"
    commits=$(($(b_metric trackbridge_intake_commits_total) - ${commits0:-0}))
    TB_RPS=$W_RPS
    TB_TOTAL_OK=$((TB_TOTAL_OK + W_OK))
    b_fig "trackbridge_c${c}_accepted" "$TB_RPS" "req/s"
    b_fig "trackbridge_c${c}_refused" "$((W_BAD + W_SOCK))" "requests"
    b_fig "trackbridge_c${c}_latency_p50" "$(ms_of "$W_P50")" ms
    b_fig "trackbridge_c${c}_latency_p90" "$(ms_of "$W_P90")" ms
    b_fig "trackbridge_c${c}_latency_p99" "$(ms_of "$W_P99")" ms
    b_fig "trackbridge_c${c}_latency_max" "$(ms_of "$W_MAX")" ms
    # One intake commit is one fsync of the intake file; requests per commit is the batch.
    b_fig "trackbridge_c${c}_intake_commits" \
        "$(awk -v n="$commits" -v us="$W_DUR" 'BEGIN { printf "%.0f", (us > 0 ? n * 1e6 / us : 0) }')" "commits/s"
    b_fig "trackbridge_c${c}_requests_per_commit" \
        "$(awk -v r="$W_REQ" -v n="$commits" 'BEGIN { printf "%.1f", (n > 0 ? r / n : 0) }')" "requests"
    b_fig "trackbridge_c${c}_cpu_event_loop" "$W_CPU_MAIN" "% of a core"
    b_fig "trackbridge_c${c}_cpu_other_threads" "$W_CPU_OTH" "% of a core"
    b_fig "trackbridge_c${c}_loop_cpu_per_request" "$W_US_MAIN" "us"
    b_fig "trackbridge_c${c}_cpu_per_request" "$W_US_ALL" "us"
    b_fig "trackbridge_c${c}_loop_saturates_at" \
        "$(awk -v us="$W_US_MAIN" 'BEGIN { printf "%.0f", (us > 0 ? 1e6 / us : 0) }')" "req/s"
    b_fig "trackbridge_c${c}_cpu_wrk" "$W_CPU_WRK" "% of a core"
    b_fig "trackbridge_c${c}_cpu_other_processes" "$W_CPU_REST" "% of a core"
    b_fig "trackbridge_c${c}_cpu_machine" "$W_BUSY" "% of $B_NCPU cores"
    b_fig "trackbridge_c${c}_limit" "$(limit_of)" ""
    b_fig "trackbridge_c${c}_peak_rss" "$(b_mib "$(b_kib "$TB_PID" VmHWM)")" MiB

    # What was accepted but not yet processed, and how long processing takes to catch up
    # (so the next run starts from an empty queue).
    backlog=$(b_metric trackbridge_requests_pending)
    b_fig "trackbridge_c${c}_backlog_at_end" "${backlog:-?}" requests
    d0=$(b_now_ms)
    while :; do
        pend=$(b_metric trackbridge_requests_pending)
        queue=$(b_metric trackbridge_queue_depth)
        [ "$pend" = 0 ] && [ "$queue" = 0 ] && break
        [ $(($(b_now_ms) - d0)) -ge $((DRAIN_MAX * 1000)) ] && break
        sleep 0.2
    done
    if [ "$pend" = 0 ] && [ "$queue" = 0 ]; then
        b_fig "trackbridge_c${c}_backlog_drain" "$(awk -v ms="$(($(b_now_ms) - d0))" 'BEGIN { printf "%.1f", ms / 1000 }')" s
    else
        b_fig "trackbridge_c${c}_backlog_drain" "over ${DRAIN_MAX}" "s (${pend:-?} requests still pending)"
    fi

    if [ -n "$NGINX_URL" ]; then
        # nginx's work is done by its worker processes, the master's children.
        workers=$(cat "/proc/$NG_PID/task/$NG_PID/children" 2>/dev/null)
        run_wrk nginx "$NGINX_URL" "$c" ${workers:-$NG_PID}
        b_fig "nginx_c${c}_answered" "$W_RPS" "req/s"
        b_fig "nginx_c${c}_latency_p50" "$(ms_of "$W_P50")" ms
        b_fig "nginx_c${c}_latency_p99" "$(ms_of "$W_P99")" ms
        b_fig "nginx_c${c}_cpu_workers" "$((W_CPU_MAIN + W_CPU_OTH))" "% of a core"
        b_fig "nginx_c${c}_cpu_per_request" "$W_US_ALL" "us"
        b_fig "nginx_c${c}_cpu_wrk" "$W_CPU_WRK" "% of a core"
        b_fig "nginx_c${c}_cpu_other_processes" "$W_CPU_REST" "% of a core"
        b_fig "nginx_c${c}_cpu_machine" "$W_BUSY" "% of $B_NCPU cores"
        b_fig "nginx_c${c}_limit" "$(limit_of)" ""
        b_fig "ratio_c${c}_trackbridge_to_nginx" \
            "$(awk -v a="$TB_RPS" -v b="$W_RPS" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" ""
    fi
done

b_fig trackbridge_peak_rss "$(b_mib "$(b_kib "$TB_PID" VmHWM)")" MiB
b_fig trackbridge_rss_at_end "$(b_mib "$(b_kib "$TB_PID" VmRSS)")" MiB
if command -v sqlite3 >/dev/null 2>&1; then
    # wrk does not count the answers still in flight when it stops: stored >= accepted.
    b_fig trackbridge_accepted_total "$((TB_TOTAL_OK + 1))" requests
    b_fig trackbridge_stored_total "$(sqlite3 "$DB.intake" 'SELECT count(*) FROM requests' 2>/dev/null || echo '?')" requests
fi
exit 0
