#!/usr/bin/env python3
"""gen_alerts.py: writes Alertmanager webhook payloads (version 4) for e2e_bench.sh.

Each payload is one notification group of up to PER firing alerts; every alert has its own
label set and fingerprint, so every alert is a new correlation key and becomes one job. The
sites cycle through the codes seeded into trackplan-sim (deploy/sim-seed.json), so site
look-ups hit TrackplanFM a few times and the cache afterwards, as they would in production.

usage: gen_alerts.py --alerts N --per P --out DIR [--salt HEX]
Prints the number of files written."""

import argparse
import json
import os
import sys

SITES = ["HQ", "LDS-HQ", "MAN-01", "RIV", "DUB-WH"]
RULES = [
    ("ChillerSupplyTempHigh", "critical", "Chiller {n} supply temperature high",
     "Supply water at 11.2 C for 10 minutes (threshold 9 C)."),
    ("AHUFilterDifferentialHigh", "warning", "AHU {n} filter differential pressure high",
     "Filter differential at 310 Pa for 15 minutes (threshold 250 Pa)."),
    ("UPSOnBattery", "critical", "UPS {n} on battery",
     "Mains input lost; 42 minutes of runtime left."),
    ("NodeDiskFull", "warning", "Disk almost full on node {n}",
     "Root filesystem at 93 % (threshold 90 %)."),
]


def alert(i, salt):
    name, severity, summary, description = RULES[i % len(RULES)]
    site = SITES[i % len(SITES)]
    minute = i % 60
    return {
        "status": "firing",
        "labels": {"alertname": name, "severity": severity, "instance": "node-%06d:9100" % i,
                   "job": "bench-exporter", "site": site},
        "annotations": {"summary": summary.format(n=i), "description": description},
        "startsAt": "2026-11-28T08:%02d:00.000Z" % minute,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=up%3D%3D0",
        "fingerprint": "%s%08x" % (salt, i),
    }


def payload(alerts):
    first = alerts[0]["labels"]
    return {
        "version": "4",
        "groupKey": '{}:{alertname="%s"}' % first["alertname"],
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "trackbridge",
        "groupLabels": {"alertname": first["alertname"]},
        "commonLabels": {"job": "bench-exporter"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.net:9093",
        "alerts": alerts,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, required=True)
    ap.add_argument("--per", type=int, default=50)
    ap.add_argument("--out", required=True)
    ap.add_argument("--salt", default="b0b0b0b0")
    a = ap.parse_args()
    if not 1 <= a.alerts <= 10_000_000 or not 1 <= a.per <= 1000:
        sys.exit("gen_alerts.py: --alerts must be 1..10000000 and --per 1..1000")
    if len(a.salt) != 8 or any(c not in "0123456789abcdef" for c in a.salt):
        sys.exit("gen_alerts.py: --salt must be 8 lower-case hex digits")
    os.makedirs(a.out, exist_ok=True)
    files = 0
    for start in range(0, a.alerts, a.per):
        group = [alert(i, a.salt) for i in range(start, min(start + a.per, a.alerts))]
        path = os.path.join(a.out, "am_%06d.json" % files)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(payload(group), f, separators=(",", ":"))
        files += 1
    print(files)


if __name__ == "__main__":
    main()
