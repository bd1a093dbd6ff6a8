# sim_lib.sh: helpers shared by the trackplan-sim shell tests (sim_*_test.sh); sourced after
# lib.sh, not run. The sourcing test sets HDR (curl header arguments sent with every call).

# call METHOD PATH [BODY] : sends a request; sets ST (status), BODY and HEADERS.
call() {
    local m=$1 p=$2 out
    local args=(-sS -D "$T_TMP/headers" -w '\n%{http_code}' -X "$m" "${HDR[@]}")
    if [ $# -ge 3 ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$3")
    fi
    out=$(curl "${args[@]}" "$SIM_URL$p")
    ST=${out##*$'\n'}
    BODY=${out%$'\n'*}
    [ "$BODY" = "$out" ] && BODY=""
    HEADERS=$(tr -d '\r' <"$T_TMP/headers")
}

# j EXPR : a Python expression over the last body (as d); strings print raw, others as JSON.
# One python3 process serves every call: it reads the body's byte length, the body, the
# expression, and answers one line.
coproc PYJ {
    exec python3 -u -c '
import json, sys
inp = sys.stdin.buffer
while True:
    head = inp.readline()
    if not head:
        break
    body = inp.read(int(head))
    expr = inp.readline().decode().rstrip("\n")
    try:
        d = json.loads(body) if body else None
        v = eval(expr)
        out = v if isinstance(v, str) else json.dumps(v)
    except Exception as e:
        out = "EXCEPTION: %r" % e
    sys.stdout.write(out.replace("\n", "\\n") + "\n")
'
}
j() {
    local LC_ALL=C line
    printf '%s\n%s%s\n' "${#BODY}" "$BODY" "$1" >&"${PYJ[1]}"
    IFS= read -r line <&"${PYJ[0]}"
    printf '%s\n' "$line"
}

# stop_sim : stops the simulator with SIGTERM and checks it exits 0 without sanitizer reports.
stop_sim() {
    kill -TERM "$T_PID_sim"
    wait "$T_PID_sim"
    t_eq "the simulator stops cleanly on SIGTERM" "$?" 0
    t_ok "the simulator reported no memory error or leak" \
        bash -c "! grep -q 'Sanitizer' '$T_TMP/sim.err'"
    : >"$T_TMP/sim.out"   # so a restart cannot read the old listening line
}

is_guid() { [[ $1 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]; }
