#!/bin/sh
# Installs every build and test dependency of trackbridge on Debian 12 (run as root).
# Idempotent: when everything is present it only checks and returns.
set -eu

PKGS="build-essential cmake pkg-config git ca-certificates curl
libevent-dev libcurl4-openssl-dev libjansson-dev libpcre2-dev libsqlite3-dev sqlite3
libyaml-dev libgmime-3.0-dev libesmtp-dev libssl-dev libsystemd-dev libcriterion-dev
python3 python3-aiosmtpd openssl prometheus-alertmanager swaks dpkg-dev systemd man-db groff-base dovecot-imapd wrk nginx-light"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "bootstrap: missing packages:$missing (run as root to install)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
    # Services pulled in by packages are started by the tests themselves, never at boot.
    for s in dovecot nginx prometheus-alertmanager; do
        systemctl disable --now "$s" >/dev/null 2>&1 || true
        service "$s" stop >/dev/null 2>&1 || true
    done
fi
echo "bootstrap: all dependencies present"
