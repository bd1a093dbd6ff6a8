# lib.sh: shared helpers for the shell integration tests (sourced, not run). Each test starts
# the real binaries on 127.0.0.1 with free ports, and everything it started is stopped on exit.
# Environment from ctest: TB_BIN, SIM_BIN, TB_SRC, TB_BUILD, TB_TESTDATA.
set -u

: "${TB_BIN:?TB_BIN not set}" "${SIM_BIN:?SIM_BIN not set}" "${TB_SRC:?TB_SRC not set}"
T_TMP=$(mktemp -d /tmp/tbit.XXXXXX)
T_PIDS=""
T_PASS=0
T_FAIL=0

t_cleanup() {
    for p in $T_PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $T_PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T_TMP"
}
trap t_cleanup EXIT

# t_start NAME CMD... : starts CMD in the background with stdout to $T_TMP/NAME.out and stderr
# to $T_TMP/NAME.err, waits for "listening on http://..." and sets T_URL to that URL.
t_start() {
    name=$1; shift
    : >"$T_TMP/$name.out"   # a restart must not see the previous instance's line
    "$@" >>"$T_TMP/$name.out" 2>>"$T_TMP/$name.err" &
    pid=$!
    T_PIDS="$T_PIDS $pid"
    eval "T_PID_$name=$pid"
    i=0
    while [ $i -lt 150 ]; do
        T_URL=$(sed -n 's/.*listening on \(http[s]*:\/\/[^ ]*\).*/\1/p' "$T_TMP/$name.out" | head -n 1)
        [ -n "$T_URL" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "t_start: $name did not start:" >&2
    cat "$T_TMP/$name.err" >&2
    exit 1
}

# t_sim [ARGS...] : starts trackplan-sim; sets SIM_URL.
t_sim() {
    t_start sim "$SIM_BIN" --listen 127.0.0.1:0 "$@"
    SIM_URL=$T_URL
}

# t_ok NAME COND... : runs COND; counts and reports a pass or a failure.
t_ok() {
    name=$1; shift
    if "$@"; then
        T_PASS=$((T_PASS + 1)); echo "ok - $name"
    else
        T_FAIL=$((T_FAIL + 1)); echo "FAIL - $name"
    fi
}

# t_eq NAME GOT WANT
t_eq() {
    if [ "$2" = "$3" ]; then
        T_PASS=$((T_PASS + 1)); echo "ok - $1"
    else
        T_FAIL=$((T_FAIL + 1)); echo "FAIL - $1: got [$2] want [$3]"
    fi
}

# t_stop_all : stops everything started (SIGTERM, then waits) so sanitizers get to report.
t_stop_all() {
    for p in $T_PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $T_PIDS; do wait "$p" 2>/dev/null || true; done
    T_PIDS=""
}

# t_done : stops what it started, fails on any sanitizer report in their logs, prints the
# closing line and exits non-zero on any failure or when nothing ran.
t_done() {
    t_stop_all
    for f in "$T_TMP"/*.err; do
        [ -f "$f" ] || continue
        if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$f"; then
            T_FAIL=$((T_FAIL + 1)); echo "FAIL - sanitizer report in $(basename "$f"):"
            grep -A20 "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$f" | head -40
        fi
    done
    echo "$T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ] && [ "$T_PASS" -gt 0 ]
    exit $?
}
