#!/usr/bin/env bash
# sim_hooks_test: trackplan-sim's test hooks — injected faults (status with a §3.1-like body and
# Retry-After, count, method and path matching, delay, dropped connection), the request log
# (fields, masking, --max-log, since), reset, and the state dump.
. "$TB_SRC/tests/integration/lib.sh"

HDR=(-H 'X-API-Key: k')

. "$TB_SRC/tests/integration/sim_lib.sh"
page='page=1&pageSize=50'

t_sim --api-key k

# ---- status faults -------------------------------------------------------------------------
call POST /_sim/faults '{"status":503,"count":2,"retryAfter":7,"path":"^/api/jobs$","method":"post"}'
t_eq "adding a fault answers 200 with the stored fault" \
    "$ST $(j '[d[0]["status"], d[0]["count"], d[0]["retryAfter"], isinstance(d[0]["id"], int)]')" \
    "200 [503, 2, 7, true]"
call GET /_sim/faults
t_eq "pending faults are listed" "$(j '[(f["status"], f["count"]) for f in d]')" '[[503, 2]]'
call POST /api/jobs '{"jobDetails":"a"}'
t_eq "a matching call gets the fault's status" "$ST" 503
t_eq "with a §3.1-like body" "$(j '[d["status"], d["title"], "type" in d, "detail" in d]')" \
    '[503, "Service Unavailable", true, true]'
t_ok "and a Retry-After header" grep -q '^Retry-After: 7$' <<<"$HEADERS"
call GET "/api/jobs?$page"
t_eq "a call with another method is not affected" "$ST" 200
call POST /api/jobs '{"jobDetails":"b"}'
t_eq "the fault lasts count calls" "$ST" 503
call POST /api/jobs '{"jobDetails":"c"}'
t_eq "then calls succeed again" "$ST" 200
call GET /_sim/faults
t_eq "a spent fault leaves the list" "$BODY" "[]"
call GET "/api/jobs?$page"
t_eq "faulted calls stored nothing" "$(j '[r["jobDetails"] for r in d["data"]]')" '["c"]'
call POST /_sim/faults '[{"status":429,"retryAfter":1,"path":"sites"},{"status":500,"path":"assets"}]'
t_eq "several faults may be added at once" "$ST $(j 'len(d)')" "200 2"
call GET "/api/sites?$page"
t_eq "429 can be injected" "$ST" 429
t_ok "with its Retry-After" grep -q '^Retry-After: 1$' <<<"$HEADERS"
call GET "/api/assets?$page"
t_eq "500 can be injected" "$ST" 500
t_ok "without Retry-After unless asked" bash -c "! grep -qi '^Retry-After' <<<'$HEADERS'"
call POST /_sim/faults '{"status":502,"count":5}'
call DELETE /_sim/faults
t_eq "DELETE clears pending faults" "$ST $BODY" "200 []"
call GET "/api/sites?$page"
t_eq "cleared faults no longer fire" "$ST" 200

# ---- bad faults ----------------------------------------------------------------------------
call POST /_sim/faults '{"status":"503"}'
t_eq "a fault with a non-integer status is refused" "$ST" 400
call POST /_sim/faults '{"count":2}'
t_eq "a fault without status, delay or drop is refused" "$ST" 400
call POST /_sim/faults '{"status":503,"path":"("}'
t_eq "a fault with a bad path regex is refused" "$ST" 400
call POST /_sim/faults '{"status":503,"paht":"x"}'
t_eq "a fault with an unknown field is refused" "$ST" 400
call POST /_sim/faults '{"status":503'
t_eq "a fault that is not JSON is refused" "$ST" 400
call GET /_sim/faults
t_eq "refused faults are not stored" "$BODY" "[]"

# ---- delays --------------------------------------------------------------------------------
call POST /_sim/faults '{"delayMs":400,"path":"resources"}'
T=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "${HDR[@]}" "$SIM_URL/api/resources?$page")
t_eq "a delayed call is answered normally" "${T% *}" 200
t_ok "after at least the delay" python3 -c "import sys; sys.exit(float('${T#* }') < 0.4)"
call POST /_sim/faults '{"delayMs":300,"status":503,"path":"resources"}'
T=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "${HDR[@]}" "$SIM_URL/api/resources?$page")
t_eq "a delay may precede a status" "${T% *}" 503
t_ok "which comes after the delay" python3 -c "import sys; sys.exit(float('${T#* }') < 0.3)"
call POST /_sim/faults '{"delayMs":1500,"path":"stocks"}'
curl -s -m 0.3 -o /dev/null "${HDR[@]}" -H 'Content-Type: application/json' \
    --data-binary '{"stockTypeId":1}' "$SIM_URL/api/stocks"
t_eq "a stalled call keeps the client waiting" "$?" 28
call GET "/api/sites?$page"
t_eq "other calls are answered while one is stalled" "$ST" 200

# ---- dropped connections -------------------------------------------------------------------
call POST /_sim/faults '{"drop":true,"path":"^/api/assets$","method":"POST"}'
curl -s -o /dev/null "${HDR[@]}" -H 'Content-Type: application/json' \
    --data-binary '{"description":"x"}' "$SIM_URL/api/assets"
t_eq "a dropped call gets no reply at all" "$?" 52
call POST /api/assets '{"description":"y"}'
t_eq "the next call is answered" "$ST" 200
call GET "/api/assets?$page"
t_eq "a dropped call stored nothing" "$(j '[r["description"] for r in d["data"]]')" '["y"]'

# ---- request log ---------------------------------------------------------------------------
for _ in $(seq 50); do   # until the stalled stocks call has been handled
    call GET /_sim/requests
    [ "$(j '[e for e in d if e["op"] == "create_stock"]')" != "[]" ] && break
    sleep 0.1
done
t_eq "the log shows the dropped call" \
    "$(j '[(e["status"], e.get("dropped")) for e in d if e["op"] == "create_asset"]')" \
    '[[0, true], [200, null]]'
t_eq "the log shows the stalled call, handled after its client left" \
    "$(j '[e["status"] for e in d if e["op"] == "create_stock"]')" '[200]'
t_eq "the log shows faulted calls with their status" \
    "$(j '[e["status"] for e in d if e["op"] == "create_job"]')" '[503, 503, 200]'
t_eq "entries carry method, path, query and parsed body" \
    "$(j '[(e["method"], e["path"], e["query"], e["body"]) for e in d if e["op"] == "create_job"][2]')" \
    '["POST", "/api/jobs", "", {"jobDetails": "c"}]'
t_eq "entries carry the query string" "$(j '[e["query"] for e in d if e["op"] == "list_jobs"][0]')" "$page"
t_eq "entries carry an ISO 8601 time" \
    "$(j 'all(__import__("re").match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["time"]) for e in d)')" true
t_eq "test hooks are not logged" "$(j '[e for e in d if e["path"].startswith("/_sim")]')" '[]'
t_eq "entries are numbered in order" "$(j '[e["seq"] for e in d] == list(range(1, len(d) + 1))')" true
LAST=$(j 'd[-1]["seq"]')
call POST /api/sites 'not json at all'
call GET "/_sim/requests?since=$LAST"
t_eq "since= returns only newer entries" "$(j 'len(d)')" 1
t_eq "a body that is not JSON is logged as text" "$(j '[d[0]["status"], d[0]["body"]]')" '[400, "not json at all"]'

# ---- reset and state -----------------------------------------------------------------------
call POST /_sim/faults '{"status":500,"count":9}'
call GET /_sim/state
t_eq "the state dump lists every collection" \
    "$(j 'sorted(k for k in d if isinstance(d[k], list))')" \
    '["assets", "jobCosts", "jobRequests", "jobTasks", "jobs", "resources", "sites", "stockLevels", "stocks", "storageAreas"]'
t_eq "the state dump holds the records and counters" \
    "$(j '[len(d["jobs"]), d["counters"]["jobs"]["jobNumber"]]')" '[1, 2]'
call POST /_sim/reset
t_eq "reset answers 200" "$ST" 200
call GET /_sim/faults
t_eq "reset clears faults" "$BODY" "[]"
call GET /_sim/requests
t_eq "reset clears the log" "$BODY" "[]"
call GET "/api/jobs?$page"
t_eq "reset clears records" "$(j 'd["count"]')" 0
call POST /api/jobs '{"jobDetails":"after reset"}'
call GET "/api/jobs/$(j d)"
t_eq "reset restarts the counters" "$(j 'd["jobNumber"]')" 1
call GET /_sim/nothing
t_eq "an unknown hook answers 404" "$ST" 404
call PUT /_sim/reset
t_eq "a hook with the wrong method answers 405" "$ST" 405
stop_sim

# ---- --max-log -----------------------------------------------------------------------------
t_sim --max-log 3
for i in 1 2 3 4 5; do call GET "/api/sites?page=$i&pageSize=1"; done
call GET /_sim/requests
t_eq "--max-log keeps the newest entries" "$(j '[(e["seq"], e["query"]) for e in d]')" \
    '[[3, "page=3&pageSize=1"], [4, "page=4&pageSize=1"], [5, "page=5&pageSize=1"]]'
stop_sim
t_done
