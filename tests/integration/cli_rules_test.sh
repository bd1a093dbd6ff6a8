# cli_rules_test: `trackbridge check` and `trackbridge test` as a user runs them — the shipped
# configuration, broken rule files (bad regex with PCRE2's text, bad template, unknown op)
# with their file:line:col and exit codes, and dry runs of firing + resolved sequences.
. "$(dirname "$0")/lib.sh"

export TRACKBRIDGE_TOKEN=cli-token TRACKPLAN_API_KEY=cli-key
CFG="$TB_SRC/deploy/trackbridge.yaml"

# -- check: the shipped configuration -----------------------------------------------------
out=$("$TB_BIN" check -c "$CFG"); rc=$?
t_eq "check passes on the shipped configuration" "$rc" 0
t_ok "check prints a one-line summary with counts" \
    sh -c "printf '%s\n' \"\$1\" | grep -Eq '^.*trackbridge.yaml: ok: 6 sources, [0-9]+ rules, [0-9]+ templates$'" _ "$out"

out=$(env -u TRACKPLAN_API_KEY "$TB_BIN" check -c "$CFG"); rc=$?
t_eq "check fails when a referenced variable is unset" "$rc" 1
t_ok "the unset variable is named at its file:line:col" \
    sh -c "printf '%s\n' \"\$1\" | grep -q 'trackbridge.yaml:[0-9]*:[0-9]*: environment variable TRACKPLAN_API_KEY is not set'" _ "$out"

"$TB_BIN" check -c "$CFG" --bogus >/dev/null 2>&1; rc=$?
t_eq "check exits 2 on a usage error" "$rc" 2

out=$("$TB_BIN" check -c "$CFG" --set trackplan.timeout=soon); rc=$?
t_eq "check fails on a bad --set value" "$rc" 1
t_ok "the problem names the --set option" \
    sh -c "printf '%s\n' \"\$1\" | grep -q '^--set trackplan.timeout: trackplan.timeout: expected a duration'" _ "$out"

# -- check: broken rule files ---------------------------------------------------------------
mkdir -p "$T_TMP/rules" "$T_TMP/templates"
printf 'Hello {{#name}}\n' > "$T_TMP/templates/broken.mustache"
printf 'Job for {{title}}' > "$T_TMP/templates/fine.mustache"
cat > "$T_TMP/rules/10-broken.yaml" <<'EOF'
rules:
  - name: bad-regex
    when: {field: title, regex: 'disk (full'}
    actions:
      - op: create_job
        body: {jobDetails: "{{title}}"}
  - name: bad-template
    actions:
      - op: create_job
        body:
          jobDetails: "{{#open}} never closed"
  - name: bad-op
    actions:
      - op: create_jobb
EOF
out=$("$TB_BIN" check -c "$CFG" --set rules="$T_TMP/rules" --set templates="$T_TMP/templates"); rc=$?
t_eq "check exits 1 on broken rules" "$rc" 1
printf '%s\n' "$out" > "$T_TMP/check.out"
t_ok "a bad regex is reported with PCRE2's text at the offending column" \
    grep -q "10-broken.yaml:3:44: rule 'bad-regex': regex: missing closing parenthesis" "$T_TMP/check.out"
t_ok "a bad template is reported at its line:col in the YAML file" \
    grep -q "10-broken.yaml:11:24: rule 'bad-template' actions: template:" "$T_TMP/check.out"
t_ok "an unknown op is reported at the op" \
    grep -q "10-broken.yaml:14:13: rule 'bad-op' actions: unknown operation 'create_jobb'" "$T_TMP/check.out"
t_ok "a bad template file is reported at its own line:col" \
    grep -q "templates/broken.mustache:1:[0-9]*: " "$T_TMP/check.out"
t_ok "the closing line counts every problem" grep -q ": 4 problems found" "$T_TMP/check.out"

# Warnings do not fail the check.
rm -f "$T_TMP/templates/broken.mustache" "$T_TMP/rules/10-broken.yaml"
cat > "$T_TMP/rules/10-warn.yaml" <<'EOF'
- name: warned
  sources: [alertmanager]
  actions:
    - op: create_job
      body: {jobDetails: "{{titel}}"}
EOF
out=$("$TB_BIN" check -c "$CFG" --set rules="$T_TMP/rules" --set templates="$T_TMP/templates"); rc=$?
t_eq "check passes with only warnings" "$rc" 0
t_ok "the warning names the unknown variable" \
    sh -c "printf '%s\n' \"\$1\" | grep -q \"10-warn.yaml:5:27: warning: rule 'warned': 'titel'\"" _ "$out"

# -- test: dry runs -----------------------------------------------------------------------------
cat > "$T_TMP/firing.json" <<'EOF'
{"version": "4", "status": "firing", "receiver": "trackbridge", "groupKey": "{}:{}",
 "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
 "alerts": [{"status": "firing", "fingerprint": "0123456789abcdef",
   "labels": {"alertname": "PumpFailed", "severity": "critical", "site": "Depot",
              "x": "\", \"siteId\": 99, \"y\": \""},
   "annotations": {"summary": "Pump 3 failed"},
   "startsAt": "2025-04-08T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": ""}]}
EOF
sed -e 's/"status": "firing"/"status": "resolved"/g' \
    -e 's/"endsAt": "0001-01-01T00:00:00Z"/"endsAt": "2025-04-08T09:30:00Z"/' \
    "$T_TMP/firing.json" > "$T_TMP/resolved.json"

"$TB_BIN" test -c "$CFG" --source alertmanager "$T_TMP/firing.json" "$T_TMP/resolved.json" \
    > "$T_TMP/dry.json"; rc=$?
t_eq "test exits 0 when every payload was processed" "$rc" 0
py_check() {
    python3 - "$T_TMP/dry.json" <<EOF
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["events"]
$1
EOF
}
t_ok "the firing creates a job and the resolve completes that same job" py_check '
create = [a for a in ev[0]["actions"] if a["op"] == "create_job"][0]
complete = ev[1]["actions"][0]
assert ev[0]["phase"] == "open" and ev[1]["phase"] == "resolve"
assert complete["op"] == "complete_job"
assert complete["path"] == "/api/jobs/complete/00000000-0000-4000-8000-000000000001", complete
assert ev[0]["key"] == ev[1]["key"] == "alert:alertmanager:0123456789abcdef"
'
t_ok "a label full of JSON syntax stays inside one string" py_check '
body = [a for a in ev[0]["actions"] if a["op"] == "create_job"][0]["body"]
assert body["siteId"] == 1, body
assert "y" not in body
'

echo '{"alerts": [' > "$T_TMP/bad.json"
"$TB_BIN" test -c "$CFG" --source alertmanager "$T_TMP/bad.json" >/dev/null 2>"$T_TMP/bad.err"; rc=$?
t_eq "test exits 1 when a payload is rejected" "$rc" 1
t_ok "the reason is on stderr" grep -q "bad.json: rejected: .*line" "$T_TMP/bad.err"

head -c 4096 /dev/zero | tr '\0' 'x' > "$T_TMP/big.json"
"$TB_BIN" test -c "$CFG" --set limits.body=1KiB --source json "$T_TMP/big.json" \
    >/dev/null 2>"$T_TMP/big.err"; rc=$?
t_eq "a payload over the body limit is rejected" "$rc" 1
t_ok "too large is the reason" grep -q "payload too large" "$T_TMP/big.err"

out=$("$TB_BIN" test -c "$CFG" --source alertmanager - < "$T_TMP/firing.json"); rc=$?
t_eq "test reads a payload from standard input" "$rc" 0
t_ok "the stdin payload matched the monitoring rule" \
    sh -c "printf '%s\n' \"\$1\" | grep -q '\"rule\": \"monitoring-alert\"'" _ "$out"

"$TB_BIN" test -c "$CFG" "$T_TMP/firing.json" >/dev/null 2>&1; rc=$?
t_eq "test without --source is a usage error" "$rc" 2
"$TB_BIN" test -c "$CFG" --source nowhere "$T_TMP/firing.json" >/dev/null 2>&1; rc=$?
t_eq "test with an unknown source is a usage error" "$rc" 2

t_done
