#!/usr/bin/env bash
# sim_state_test: trackplan-sim's command line (help, usage errors, the listening line), seed
# files (records created by the API's rules, users, re-applied on reset) and --state
# persistence across restarts (coalesced saves while running, a final save on SIGTERM).
. "$TB_SRC/tests/integration/lib.sh"

HDR=(-H 'X-API-Key: k')

. "$TB_SRC/tests/integration/sim_lib.sh"
page='page=1&pageSize=50'

# ---- command line --------------------------------------------------------------------------
"$SIM_BIN" --help >"$T_TMP/help.out" 2>&1
t_eq "--help exits 0" "$?" 0
t_ok "--help shows the usage" grep -q -- '--listen ADDR:PORT' "$T_TMP/help.out"
usage_exit() { "$SIM_BIN" "$@" >/dev/null 2>&1; echo $?; }
t_eq "an unknown option exits 2" "$(usage_exit --listen 127.0.0.1:0 --bogus)" 2
t_eq "a missing --listen exits 2" "$(usage_exit --api-key k)" 2
t_eq "a malformed --listen exits 2" "$(usage_exit --listen 127.0.0.1)" 2
t_eq "a port out of range exits 2" "$(usage_exit --listen 127.0.0.1:70000)" 2
t_eq "a zero --token-ttl exits 2" "$(usage_exit --listen 127.0.0.1:0 --token-ttl 0)" 2
t_eq "a malformed --user exits 2" "$(usage_exit --listen 127.0.0.1:0 --user nopassword)" 2
t_eq "a stray argument exits 2" "$(usage_exit --listen 127.0.0.1:0 extra)" 2

# ---- seed ----------------------------------------------------------------------------------
cat >"$T_TMP/seed.json" <<'JSON'
{
  "users": [{"username": "amy", "password": "pw1", "role": "full"},
            {"username": "rob", "password": "pw2", "role": "readonly"}],
  "sites": [{"guid": "11111111-1111-4111-8111-111111111111", "siteId": 7, "name": "HQ"}],
  "assets": [{"description": "Chiller", "siteId": 7}],
  "resources": [{"name": "Bob", "resourceType": "Engineer"}],
  "storageAreas": [{"storageName": "Store", "siteId": 7}],
  "stocks": [{"stockTypeId": 1}],
  "stockLevels": [{"stockId": 1, "storageId": 1, "quantity": 4}],
  "jobs": [{"guid": "22222222-2222-4222-8222-222222222222", "jobDetails": "Seeded job", "jobNumber": 500}],
  "jobRequests": [{"description": "Seeded request"}],
  "jobTasks": [{"jobGuid": "22222222-2222-4222-8222-222222222222", "description": "Seeded task"}],
  "jobCosts": [{"jobGuid": "22222222-2222-4222-8222-222222222222", "costLabour": 10}]
}
JSON
t_sim --api-key k --seed "$T_TMP/seed.json"
t_eq "stdout holds only the listening line" "$(wc -l <"$T_TMP/sim.out")" 1
t_ok "the listening line names the real port" grep -Eq '^listening on http://127\.0\.0\.1:[1-9][0-9]*$' "$T_TMP/sim.out"
call GET /_sim/state
t_eq "a seed fills every collection" \
    "$(j '[len(d[k]) for k in ["sites", "assets", "resources", "storageAreas", "stocks", "stockLevels", "jobs", "jobRequests", "jobTasks", "jobCosts"]]')" \
    '[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]'
call GET /api/sites/11111111-1111-4111-8111-111111111111
t_eq "seeded records keep their given guid and id" "$ST $(j '[d["name"], d["siteId"]]')" '200 ["HQ", 7]'
call POST /api/sites '{"name":"Next"}'
call GET "/api/sites/$(j d)"
t_eq "counters continue after given ids" "$(j 'd["siteId"]')" 8
call GET "/api/jobTasks?$page"
t_eq "seeded tasks belong to seeded jobs" "$(j '[d["data"][0]["jobNumber"], d["data"][0]["status"]]')" '[500, "Open"]'
call GET "/api/jobs/22222222-2222-4222-8222-222222222222"
t_eq "seeded records get the API's system fields" "$(j '[d["status"], "createdDate" in d]')" '["Open", true]'
HDR=()
call POST /api/auth/login '{"username":"amy","password":"pw1"}'
t_eq "seeded users may log in" "$ST" 200
call POST /api/auth/login '{"username":"rob","password":"pw2"}'
HDR=(-H "Authorization: Bearer $(j 'd["token"]')")
call POST /api/sites '{"name":"x"}'
t_eq "seeded read-only users may not write" "$ST" 403
HDR=(-H 'X-API-Key: k')
call POST /_sim/reset
call GET "/api/sites?$page"
t_eq "reset re-applies the seed" "$(j '[r["name"] for r in d["data"]]')" '["HQ"]'
stop_sim

seed_exit() {
    printf '%s' "$1" >"$T_TMP/bad.json"
    "$SIM_BIN" --listen 127.0.0.1:0 --seed "$T_TMP/bad.json" >/dev/null 2>"$T_TMP/bad.err"
    echo $?
}
t_eq "a seed that is not JSON exits 1" "$(seed_exit '{"sites": [')" 1
t_ok "and says where" grep -q 'bad.json:1:' "$T_TMP/bad.err"
t_eq "a seed with an unknown key exits 1" "$(seed_exit '{"site": []}')" 1
t_eq "a seed record the API would refuse exits 1" "$(seed_exit '{"jobs": [{"siteId": 1}]}')" 1
t_ok "and names the record and field" grep -q 'jobs\[0\]: jobDetails' "$T_TMP/bad.err"
t_eq "a seed user without password exits 1" "$(seed_exit '{"users": [{"username": "x"}]}')" 1
t_eq "a missing seed file exits 1" \
    "$("$SIM_BIN" --listen 127.0.0.1:0 --seed "$T_TMP/none.json" >/dev/null 2>&1; echo $?)" 1

# ---- --state -------------------------------------------------------------------------------
STATE=$T_TMP/state.json
t_sim --api-key k --state "$STATE" --seed "$T_TMP/seed.json"
call POST /api/jobs '{"jobDetails":"Persisted","Custom":{"x":[1,2]}}'
JOB=$(j d)
call PUT "/api/jobs/complete/$JOB" '{"completedNote":"done"}'
for _ in $(seq 50); do   # saves are coalesced; wait for the one after the last change
    grep -q '"completedNote":"done"' "$STATE" 2>/dev/null && break
    sleep 0.1
done
t_ok "changes are saved while running" grep -q '"completedNote":"done"' "$STATE"
kill -KILL "$T_PID_sim"
wait "$T_PID_sim" 2>/dev/null
: >"$T_TMP/sim.out"
t_sim --api-key k --state "$STATE" --seed "$T_TMP/seed.json"
call GET "/api/jobs/$JOB"
t_eq "records survive a crash" "$ST $(j '[d["jobDetails"], d["status"], d["Custom"]]')" \
    '200 ["Persisted", "Completed", {"x": [1, 2]}]'
call GET "/api/jobs?$page"
t_eq "a state file wins over the seed's records" "$(j 'd["count"]')" 2
call POST /api/jobs '{"jobDetails":"After restart"}'
call GET "/api/jobs/$(j d)"
t_eq "counters survive a restart" "$(j 'd["jobNumber"]')" 502
HDR=()
call POST /api/auth/login '{"username":"amy","password":"pw1"}'
t_eq "seed users still apply with a state file" "$ST" 200
HDR=(-H 'X-API-Key: k')
call DELETE "/api/assets/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["assets"][0]["guid"])' "$STATE")"
t_eq "an asset can be deleted" "$ST" 200
stop_sim
t_ok "SIGTERM saves the last change" python3 -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1]))["assets"]) != 0)' "$STATE"
t_sim --api-key k --state "$STATE"
call GET "/api/assets?$page"
t_eq "deletions survive a restart" "$(j 'd["count"]')" 0
stop_sim
printf '{"jobs": [{"jobDetails": "no guid"}]}' >"$T_TMP/broken.json"
t_eq "a state file that cannot be loaded exits 1" \
    "$("$SIM_BIN" --listen 127.0.0.1:0 --state "$T_TMP/broken.json" >/dev/null 2>&1; echo $?)" 1
t_done
