#!/usr/bin/env bash
# systemd_test: `systemd-analyze verify` is clean — exit 0 and not one line of output — on
# deploy/systemd/trackbridge.service and trackplan-sim.service. The units name
# /usr/bin/trackbridge and /usr/bin/trackplan-sim, which are not installed here, so each is
# verified as a temporary copy whose ExecStart runs the build tree's binary; the man pages
# of their Documentation= lines are resolved from the repository's man/ folder. A unit with
# a misspelt key must fail the same check, so a silent verifier cannot pass the test.
# Needs: systemd (systemd-analyze), man-db (man).
. "$TB_SRC/tests/integration/lib.sh"

need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "systemd_test: '$1' is missing: install the Debian package $2 (deploy/bootstrap.sh)" >&2
    exit 1
}
need systemd-analyze systemd
need man man-db

# The Documentation= pages, laid out as man expects (manN/NAME.N).
for m in "$TB_SRC"/man/*.[158]; do
    sec=${m##*.}
    mkdir -p "$T_TMP/man/man$sec"
    cp "$m" "$T_TMP/man/man$sec/"
done

# verify FILE : runs systemd-analyze verify; sets V_RC and V_OUT (stdout and stderr).
verify() {
    V_OUT=$(cd "$(dirname "$1")" && MANPATH="$T_TMP/man" SYSTEMD_LOG_COLOR=0 \
        systemd-analyze verify "./$(basename "$1")" 2>&1)
    V_RC=$?
}

mkdir -p "$T_TMP/units"
for pair in "trackbridge.service:/usr/bin/trackbridge:$TB_BIN" \
    "trackplan-sim.service:/usr/bin/trackplan-sim:$SIM_BIN"; do
    IFS=: read -r unit installed built <<<"$pair"
    src=$TB_SRC/deploy/systemd/$unit
    copy=$T_TMP/units/$unit
    t_ok "$unit starts $installed" grep -q "^ExecStart=$installed " "$src"
    sed "s|^ExecStart=$installed |ExecStart=$built |" "$src" >"$copy"
    t_ok "$unit's copy starts the build tree's binary" grep -q "^ExecStart=$built " "$copy"
    verify "$copy"
    t_eq "systemd-analyze verify $unit exits 0" "$V_RC" 0
    t_eq "systemd-analyze verify $unit prints no warning" "$V_OUT" ""
    doc=$(sed -n 's/^Documentation=//p' "$src")
    t_ok "$unit names its man pages in Documentation=" grep -q 'man:' <<<"$doc"
done

# The same check must catch a broken unit.
sed 's/^Restart=/Restartt=/' "$T_TMP/units/trackbridge.service" >"$T_TMP/units/broken.service"
t_ok "the broken copy really differs" grep -q '^Restartt=' "$T_TMP/units/broken.service"
verify "$T_TMP/units/broken.service"
t_ok "systemd-analyze verify reports a misspelt key" \
    bash -c "[ '$V_RC' != 0 ] || [ -n \"\$1\" ]" _ "$V_OUT"
t_ok "the report names the misspelt key" grep -q 'Restartt' <<<"$V_OUT"

# What the units refer to is what the package installs.
t_ok "the simulator unit's seed is the one deploy/ ships" \
    bash -c "grep -q -- '--seed /etc/trackbridge/sim-seed.json' '$TB_SRC/deploy/systemd/trackplan-sim.service' && test -s '$TB_SRC/deploy/sim-seed.json'"
t_ok "the bridge unit reads the installed configuration" \
    grep -q '^ExecStart=/usr/bin/trackbridge serve -c /etc/trackbridge/trackbridge.yaml$' \
    "$TB_SRC/deploy/systemd/trackbridge.service"

t_done
