# bench_lib.sh: helpers shared by the server benchmarks (sourced, not run). They find the
# binaries, start trackplan-sim and trackbridge on 127.0.0.1 with free ports in a temporary
# folder, read CPU and memory figures from /proc, and stop everything they started on exit.
# Figures are printed as "name: value unit"; nothing here asserts a timing.

set -u
B_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
B_ROOT=$(cd "$B_HERE/../.." && pwd)
B_PIDS=""
B_TMP=""
B_HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
B_NCPU=$(nproc 2>/dev/null || echo 1)

b_die() { echo "$B_NAME: cannot run: $*" >&2; exit 2; }
b_note() { echo "# $*"; }
b_fig() { printf '%s: %s %s\n' "$1" "$2" "$3"; } # b_fig NAME VALUE UNIT

b_cleanup() {
    for p in $B_PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $B_PIDS; do wait "$p" 2>/dev/null || true; done
    if [ -n "$B_TMP" ] && [ -d "$B_TMP" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
            echo "# kept $B_TMP" >&2
        else
            rm -rf "$B_TMP"
        fi
    fi
}

# b_init NAME : checks the tools, finds the binaries (TB_BIN / SIM_BIN, or TB_BUILD, or the
# first of build-bench and build under the repository), makes the temporary folder.
b_init() {
    B_NAME=$1
    for tool in curl python3; do
        command -v "$tool" >/dev/null 2>&1 || b_die "$tool is not installed"
    done
    if [ -z "${TB_BIN:-}" ] || [ -z "${SIM_BIN:-}" ]; then
        local d
        for d in ${TB_BUILD:-} "$B_ROOT/build-bench" "$B_ROOT/build"; do
            if [ -x "$d/trackbridge" ] && [ -x "$d/trackplan-sim" ]; then
                TB_BIN=${TB_BIN:-$d/trackbridge}
                SIM_BIN=${SIM_BIN:-$d/trackplan-sim}
                break
            fi
        done
    fi
    [ -n "${TB_BIN:-}" ] && [ -x "$TB_BIN" ] || b_die "no trackbridge binary (set TB_BUILD)"
    [ -n "${SIM_BIN:-}" ] && [ -x "$SIM_BIN" ] || b_die "no trackplan-sim binary (set TB_BUILD)"
    if grep -q __asan_init "$TB_BIN" 2>/dev/null; then
        echo "# warning: $TB_BIN is a sanitizer build; its figures are not representative" >&2
    fi
    B_TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/tbbench.XXXXXX") || b_die "mktemp failed"
    trap b_cleanup EXIT
    trap 'exit 130' INT TERM
    export TRACKBRIDGE_TOKEN=bench-hook-token-7d41c0
    export TRACKPLAN_API_KEY=bench-sim-key-52e9aa
}

# b_start NAME SECONDS CMD... : runs CMD in the background (stdout NAME.out, stderr NAME.err),
# waits up to SECONDS for "listening on http://..." and sets B_URL and B_PID_NAME.
b_start() {
    local name=$1 secs=$2 pid i
    shift 2
    : >"$B_TMP/$name.out"
    "$@" >>"$B_TMP/$name.out" 2>"$B_TMP/$name.err" &
    pid=$!
    B_PIDS="$B_PIDS $pid"
    printf -v "B_PID_$name" %s "$pid"
    for ((i = 0; i < secs * 10; i++)); do
        B_URL=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$B_TMP/$name.out" | head -n 1)
        [ -n "$B_URL" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$B_TMP/$name.err" >&2
    b_die "$name did not start"
}

# b_sim : starts trackplan-sim with the shipped seed; sets SIM_URL.
b_sim() {
    b_start sim 15 "$SIM_BIN" --listen 127.0.0.1:0 --api-key "$TRACKPLAN_API_KEY" \
        --seed "$B_ROOT/deploy/sim-seed.json" --log-level warn "$@"
    SIM_URL=$B_URL
}

# b_serve DB [--set k=v]... : starts trackbridge serve with the shipped configuration and
# sample rules against SIM_URL, the alertmanager rate limit removed; sets TB_URL.
b_serve() {
    local db=$1
    shift
    b_start tb 30 "$TB_BIN" serve -c "$B_ROOT/deploy/trackbridge.yaml" \
        --set listen=127.0.0.1:0 --set "trackplan.url=$SIM_URL" --set "store.path=$db" \
        --set sources.alertmanager.rate_limit=null "$@"
    TB_URL=$B_URL
}

# b_free_port : prints a free TCP port on 127.0.0.1.
b_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# b_ticks PID : CPU time (user + system, clock ticks) of a process or of one thread
# (/proc/PID/task/TID); prints 0 when it is gone.
b_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }   # the name may hold blanks and parentheses
    set -- $stat
    echo $((${12} + ${13}))
}

# b_threads PID : prints "TID NAME" for each thread of PID.
b_threads() {
    local t
    for t in /proc/"$1"/task/*; do
        [ -r "$t/comm" ] && echo "${t##*/} $(cat "$t/comm")"
    done
}

# b_sys_ticks : prints "BUSY TOTAL" clock ticks of the whole machine (all CPUs) from /proc/stat.
b_sys_ticks() {
    local cpu user nice sys idle iowait irq softirq steal rest
    read -r cpu user nice sys idle iowait irq softirq steal rest </proc/stat
    echo "$((user + nice + sys + irq + softirq + steal)) $((user + nice + sys + idle + iowait + irq + softirq + steal))"
}

# b_pct TICKS MS : percent of one core that TICKS clock ticks are over MS milliseconds.
b_pct() {
    awk -v t="$1" -v ms="$2" -v hz="$B_HZ" 'BEGIN { printf "%.0f", (ms > 0 ? t * 100000 / hz / ms : 0) }'
}

# b_kib PID FIELD : a /proc/PID/status field in KiB (VmHWM, VmRSS).
b_kib() {
    sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null
}

# b_mib KIB : KiB as MiB with one decimal.
b_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# b_now_ms : wall clock in milliseconds.
b_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# b_metric NAME : a gauge or counter (first sample without labels) from trackbridge's /metrics.
b_metric() {
    curl -s --max-time 5 "$TB_URL/metrics" | sed -n "s/^$1 \([0-9.e+]*\).*/\1/p" | head -n 1
}

# b_fsync_rate DIR : 4 KiB write + fsync pairs per second on DIR's file system over one second.
b_fsync_rate() {
    python3 - "$1" <<'EOF'
import os, sys, time
p = os.path.join(sys.argv[1], "fsync.probe")
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
n, t0, blk = 0, time.monotonic(), b"x" * 4096
while time.monotonic() - t0 < 1.0:
    os.pwrite(fd, blk, (n % 256) * 4096)
    os.fsync(fd)
    n += 1
os.close(fd)
os.unlink(p)
print(int(n / (time.monotonic() - t0)))
EOF
}
