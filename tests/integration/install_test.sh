#!/usr/bin/env bash
# install_test: `cmake --install` lays trackbridge out in its FHS places (configuration,
# rules, templates and seed under /etc/trackbridge with a /usr prefix, units rewritten for
# other prefixes), the man pages render without groff warnings and document every command
# and option the programs print, and `cpack -G DEB` builds a package whose contents, Depends
# and conffiles are right, which installs into a scratch root with dpkg, runs from there,
# keeps an edited conffile across a reinstall and is removed and purged cleanly.
# Needs: cmake (cpack), dpkg (dpkg-deb, dpkg), dpkg-dev (dpkg-shlibdeps), groff-base (groff).
. "$TB_SRC/tests/integration/lib.sh"

: "${TB_BUILD:?TB_BUILD not set}"

need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "install_test: '$1' is missing: install the Debian package $2 (deploy/bootstrap.sh)" >&2
    exit 1
}
need cpack cmake
need dpkg-deb dpkg
need dpkg dpkg
need dpkg-shlibdeps dpkg-dev
need groff groff-base

LIBS="libevent-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7 libcurl4 libjansson4
libpcre2-8-0 libsqlite3-0 libyaml-0-2 libgmime-3.0-0 libesmtp6 libssl3 libsystemd0"

# ---- cmake --install with a /usr prefix -------------------------------------------------

S=$T_TMP/stage
DESTDIR=$S cmake --install "$TB_BUILD" --prefix /usr >"$T_TMP/install.log" 2>&1
t_eq "cmake --install into a DESTDIR with prefix /usr succeeds" "$?" 0

for f in usr/bin/trackbridge usr/bin/trackplan-sim; do
    t_ok "$f is installed and executable" test -x "$S/$f"
done
for f in usr/share/man/man8/trackbridge.8 usr/share/man/man5/trackbridge.yaml.5 \
    usr/share/man/man5/trackbridge-rules.5 usr/share/man/man1/trackplan-sim.1 \
    etc/trackbridge/trackbridge.yaml etc/trackbridge/sim-seed.json \
    usr/lib/systemd/system/trackbridge.service usr/lib/systemd/system/trackplan-sim.service \
    usr/share/doc/trackbridge/README.md usr/share/doc/trackbridge/sender-contract.md \
    usr/share/doc/trackbridge/operations.md usr/share/doc/trackbridge/trackbridge.env.example; do
    t_ok "$f is installed" test -s "$S/$f"
done
t_ok "the sender guides are installed under the documentation folder" \
    bash -c "ls '$S/usr/share/doc/trackbridge/guides/'*.md >/dev/null"
t_ok "nothing is installed under /usr/etc" test ! -e "$S/usr/etc"

same_files() { # SRC_DIR DEST_DIR GLOB: every SRC_DIR/GLOB file is in DEST_DIR, byte for byte
    local f n=0
    for f in "$1"/$3; do
        [ -f "$f" ] || continue
        cmp -s "$f" "$2/$(basename "$f")" || return 1
        n=$((n + 1))
    done
    [ "$n" -gt 0 ]
}
t_ok "every shipped rule file is installed unchanged in /etc/trackbridge/rules" \
    same_files "$TB_SRC/rules" "$S/etc/trackbridge/rules" '*.yaml'
t_ok "every template is installed unchanged in /etc/trackbridge/templates" \
    same_files "$TB_SRC/templates" "$S/etc/trackbridge/templates" '*'

CONF=$S/etc/trackbridge/trackbridge.yaml
t_eq "the installed configuration takes its rules from the folder beside it" \
    "$(sed -n 's/^rules: *//p' "$CONF")" "rules"
t_eq "the installed configuration takes its templates from the folder beside it" \
    "$(sed -n 's/^templates: *//p' "$CONF")" "templates"
t_ok "the installed configuration keeps the store in the unit's StateDirectory" \
    grep -q '^  path: .*/var/lib/trackbridge/store.db' "$CONF"
TRACKPLAN_API_KEY=install-test-key TRACKBRIDGE_TOKEN=install-test-token \
    "$TB_BIN" check -c "$CONF" >"$T_TMP/check.out" 2>&1
t_eq "trackbridge check accepts the installed configuration with its installed rules" "$?" 0
n_rules=$(cat "$TB_SRC"/rules/*.yaml | grep -c '^  - name:')
t_ok "check loaded every shipped rule from the installed folder ($n_rules)" \
    grep -q " $n_rules rules" "$T_TMP/check.out"

UNIT=$S/usr/lib/systemd/system/trackbridge.service
t_ok "the installed bridge unit runs /usr/bin/trackbridge on /etc/trackbridge/trackbridge.yaml" \
    grep -q '^ExecStart=/usr/bin/trackbridge serve -c /etc/trackbridge/trackbridge.yaml$' "$UNIT"
t_ok "the installed simulator unit seeds from /etc/trackbridge/sim-seed.json" \
    grep -q '^ExecStart=/usr/bin/trackplan-sim .*--seed /etc/trackbridge/sim-seed.json' \
    "$S/usr/lib/systemd/system/trackplan-sim.service"

# ---- other prefixes ----------------------------------------------------------------------

L=$T_TMP/local
DESTDIR=$L cmake --install "$TB_BUILD" --prefix /usr/local >>"$T_TMP/install.log" 2>&1
t_ok "with prefix /usr/local the configuration goes to /usr/local/etc/trackbridge" \
    test -s "$L/usr/local/etc/trackbridge/trackbridge.yaml"
t_ok "with prefix /usr/local nothing is written to /etc" test ! -e "$L/etc"
t_ok "with prefix /usr/local the unit runs the binary and configuration installed there" \
    grep -q '^ExecStart=/usr/local/bin/trackbridge serve -c /usr/local/etc/trackbridge/trackbridge.yaml$' \
    "$L/usr/local/lib/systemd/system/trackbridge.service"
O=$T_TMP/opt
DESTDIR=$O cmake --install "$TB_BUILD" --prefix /opt/trackbridge >>"$T_TMP/install.log" 2>&1
t_ok "with prefix /opt/trackbridge the configuration goes to /etc/opt/trackbridge (FHS)" \
    test -s "$O/etc/opt/trackbridge/trackbridge/trackbridge.yaml"

# ---- man pages ---------------------------------------------------------------------------

for m in "$TB_SRC"/man/*.[158]; do
    groff -man -Tutf8 -ww -z "$m" >"$T_TMP/groff.err" 2>&1
    t_eq "$(basename "$m") renders with groff -ww without a warning" "$(cat "$T_TMP/groff.err")" ""
done
# render() FILE : the page as plain text on long lines, unhyphenated, spaces squeezed.
render() { groff -man -Tutf8 -rLL=400n -rHY=0 -P-cbou "$1" 2>/dev/null | tr -s ' \t' '  '; }
MAN8=$(render "$TB_SRC/man/trackbridge.8")
COMMANDS=$("$TB_BIN" --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
t_ok "trackbridge --help lists commands" test -n "$COMMANDS"
for c in $COMMANDS; do
    t_ok "trackbridge(8) documents the '$c' command" grep -q "trackbridge $c" <<<"$MAN8"
done
for c in $COMMANDS; do
    for o in $("$TB_BIN" "$c" --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        [ "$o" = --help ] && continue
        t_ok "trackbridge(8) documents the option $o of '$c'" grep -q -- "$o" <<<"$MAN8"
    done
done
MAN1=$(render "$TB_SRC/man/trackplan-sim.1")
for o in $("$SIM_BIN" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    t_ok "trackplan-sim(1) documents '$o'" grep -q -- "$o" <<<"$MAN1"
done

# ---- the .deb ----------------------------------------------------------------------------

# The suite has built the tree already: CPACK_CMAKE_GENERATOR=Ninja only skips cpack's
# "preinstall" step (make preinstall, i.e. build everything again) inside a tree other tests
# are running from; everything else comes from the build's CPackConfig.cmake.
printf 'include("%s/CPackConfig.cmake")\nset(CPACK_CMAKE_GENERATOR "Ninja")\n' "$TB_BUILD" \
    >"$T_TMP/cpack.cmake"
(cd "$T_TMP" && cpack --config "$T_TMP/cpack.cmake" -G DEB -B "$T_TMP/pkg") \
    >"$T_TMP/cpack.log" 2>&1
t_eq "cpack -G DEB builds the package" "$?" 0
DEB=$(ls "$T_TMP"/pkg/trackbridge_*.deb 2>/dev/null | head -n 1)
if [ -z "$DEB" ]; then
    cat "$T_TMP/cpack.log"
    t_done
fi
t_ok "the package file is named trackbridge_<version>-1_<arch>.deb" \
    bash -c "basename '$DEB' | grep -Eq '^trackbridge_[0-9.]+-1_[a-z0-9]+\.deb$'"

dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' >"$T_TMP/contents"
for f in /usr/bin/trackbridge /usr/bin/trackplan-sim /usr/share/man/man8/trackbridge.8 \
    /usr/share/man/man5/trackbridge.yaml.5 /usr/share/man/man5/trackbridge-rules.5 \
    /usr/share/man/man1/trackplan-sim.1 /etc/trackbridge/trackbridge.yaml \
    /etc/trackbridge/sim-seed.json /usr/lib/systemd/system/trackbridge.service \
    /usr/lib/systemd/system/trackplan-sim.service /usr/share/doc/trackbridge/operations.md; do
    t_ok "the package holds $f" grep -qx "$f" "$T_TMP/contents"
done
t_ok "the package installs nothing under /usr/local" bash -c "! grep -q '^/usr/local' '$T_TMP/contents'"

DEPENDS=$(dpkg-deb -f "$DEB" Depends)
for l in $LIBS; do
    t_ok "Depends names $l" bash -c "tr ',' '\n' <<<'$DEPENDS' | sed 's/^ *//;s/ .*//' | grep -qx '$l'"
done
t_eq "the package is in section net" "$(dpkg-deb -f "$DEB" Section)" "net"

mkdir -p "$T_TMP/ctl"
dpkg-deb -e "$DEB" "$T_TMP/ctl"
t_ok "every file under /etc in the package is a conffile" \
    bash -c "diff <(grep '^/etc/.*[^/]$' '$T_TMP/contents' | sort) <(sort '$T_TMP/ctl/conffiles')"
for s in postinst prerm postrm; do
    t_ok "the $s script is executable and parses" \
        bash -c "test -x '$T_TMP/ctl/$s' && sh -n '$T_TMP/ctl/$s'"
done
t_ok "no maintainer script creates users or groups (DynamicUser does)" \
    bash -c "! grep -Eq 'useradd|adduser|groupadd|addgroup' '$T_TMP/ctl/postinst' '$T_TMP/ctl/prerm' '$T_TMP/ctl/postrm'"

# ---- install, reinstall, remove and purge in a scratch root ------------------------------

R=$T_TMP/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/log"
: >"$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
# The libraries are the host's; the scratch root's database knows none, hence force-depends.
# --path-include undoes a host's path-exclude (container images drop man pages and docs).
rdpkg() {
    dpkg --root="$R" --log="$R/var/log/dpkg.log" --force-depends --force-script-chrootless \
        --force-confdef --force-confold --path-include='*' "$@" </dev/null
}
rdpkg -i "$DEB" >"$T_TMP/dpkg-i.log" 2>&1
t_eq "dpkg --root installs the package" "$?" 0
t_eq "dpkg records the package as installed" \
    "$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f '${Status}' trackbridge 2>/dev/null)" \
    "install ok installed"
t_ok "dpkg registered /etc/trackbridge/trackbridge.yaml as a conffile" \
    bash -c "dpkg-query --admindir='$R/var/lib/dpkg' -W -f '\${Conffiles}' trackbridge | grep -q '/etc/trackbridge/trackbridge.yaml '"
t_ok "the first install says how to configure and start the service" \
    grep -q '/etc/trackbridge/env' "$T_TMP/dpkg-i.log"
t_eq "trackbridge --version runs from the scratch root" \
    "$("$R/usr/bin/trackbridge" --version 2>&1)" "$("$TB_BIN" --version)"
t_eq "trackplan-sim --version runs from the scratch root" \
    "$("$R/usr/bin/trackplan-sim" --version 2>&1)" "$("$SIM_BIN" --version)"
TRACKPLAN_API_KEY=install-test-key TRACKBRIDGE_TOKEN=install-test-token \
    "$R/usr/bin/trackbridge" check -c "$R/etc/trackbridge/trackbridge.yaml" >/dev/null 2>&1
t_eq "the packaged trackbridge accepts the packaged configuration" "$?" 0
t_ok "the packaged man page is found by man" \
    bash -c "MANPATH='$R/usr/share/man' man -w trackbridge.yaml 2>/dev/null | grep -q '$R/usr/share/man/man5/trackbridge.yaml.5'"

echo "# edited by the operator" >>"$R/etc/trackbridge/trackbridge.yaml"
rdpkg -i "$DEB" >"$T_TMP/dpkg-re.log" 2>&1
t_eq "reinstalling the package over itself succeeds" "$?" 0
t_ok "an operator's edit of the configuration survives a reinstall" \
    grep -q '^# edited by the operator$' "$R/etc/trackbridge/trackbridge.yaml"
t_ok "a reinstall (an upgrade) does not repeat the first-install instructions" \
    bash -c "! grep -q 'installed but not started' '$T_TMP/dpkg-re.log'"

rdpkg -r trackbridge >"$T_TMP/dpkg-r.log" 2>&1
t_eq "dpkg -r removes the package" "$?" 0
t_ok "removal deletes the programs" test ! -e "$R/usr/bin/trackbridge"
t_ok "removal keeps the configuration" test -f "$R/etc/trackbridge/trackbridge.yaml"
rdpkg -P trackbridge >"$T_TMP/dpkg-p.log" 2>&1
t_eq "dpkg -P purges the package" "$?" 0
t_ok "purge deletes the configuration" test ! -e "$R/etc/trackbridge/trackbridge.yaml"

t_done
