#!/usr/bin/env bash
# sim_api_test: trackplan-sim answers every operation of the TrackplanFM guide (§2.1–2.11) with
# the documented shapes and the domain rules clients rely on; routes and JSON properties match
# ignoring case; unknown fields are kept; PUT merges; errors carry §3.1 bodies.
. "$TB_SRC/tests/integration/lib.sh"

HDR=(-H 'X-API-Key: key-1')

. "$TB_SRC/tests/integration/sim_lib.sh"
page='page=1&pageSize=50'

t_sim --api-key key-1 --user admin:secret

# ---- 2.1 login ---------------------------------------------------------------------------
call POST /api/auth/login '{"username":"admin","password":"secret"}'
t_eq "login answers 200" "$ST" 200
TOKEN=$(j 'd["token"]')
t_eq "login returns a three-part JWT" "$(tr -cd . <<<"$TOKEN" | wc -c)" 2

# ---- 2.2 job requests ----------------------------------------------------------------------
call POST /api/jobrequests '{"description":"Leak in kitchen","site":"HQ","raisedBy":"Ann","raisedByEmail":"ann@example.com","Extra":{"a":1}}'
t_eq "create job request answers 200" "$ST" 200
JR1=$BODY
t_ok "create job request returns an integer number from 1000 up" test "$JR1" -ge 1000
call POST /api/jobrequests '{"description":"Second"}'
t_eq "job request numbers increase" "$BODY" "$((JR1 + 1))"
call POST /api/jobrequests '{"site":"HQ"}'
t_eq "a job request without description is refused" "$ST" 400
t_eq "the refusal names description" "$(j '"description" in d["errors"]')" true
call GET "/api/jobrequests?$page"
t_eq "list job requests counts both" "$(j 'd["count"]')" 2
t_eq "job request keeps what was sent" "$(j 'd["data"][0]["raisedByEmail"]')" ann@example.com
t_eq "job request keeps unknown fields" "$(j 'd["data"][0]["Extra"]')" '{"a": 1}'
t_eq "job request starts New" "$(j 'd["data"][0]["requestStatus"]')" New
t_eq "job request has its number" "$(j 'd["data"][0]["jobRequestNumber"]')" "$JR1"
t_eq "job request has an id and a created date" \
    "$(j 'isinstance(d["data"][0]["jobRequestId"], int) and "createdDate" in d["data"][0]')" true

# ---- 2.3 jobs ------------------------------------------------------------------------------
call POST /api/jobs '{"siteId":1}'
t_eq "a job without jobDetails is refused" "$ST" 400
t_eq "the refusal names jobDetails" "$(j 'list(d["errors"])')" '["jobDetails"]'
t_eq "validation errors carry the ASP.NET title" "$(j 'd["title"]')" "One or more validation errors occurred."
call POST /api/jobs '{"jobDetails":"Boiler broken","siteId":1,"siteName":"HQ","priority":"High"}'
t_eq "create job answers 200" "$ST" 200
JOB=$(j d)
t_ok "create job returns a lowercase GUID string" is_guid "$JOB"
call POST /api/jobs '{"jobDetails":"Lift stuck"}'
JOB2=$(j d)
call GET "/api/jobs/$JOB"
t_eq "get job answers 200" "$ST" 200
t_eq "get job returns the job" "$(j 'd["jobDetails"], d["guid"], d["status"]')" "[\"Boiler broken\", \"$JOB\", \"Open\"]"
N1=$(j 'd["jobNumber"]')
t_eq "job has integer jobId and jobNumber" "$(j 'isinstance(d["jobId"], int) and isinstance(d["jobNumber"], int)')" true
call GET "/api/jobs/$JOB2"
t_eq "job numbers increase" "$(j 'd["jobNumber"]')" "$((N1 + 1))"
call GET "/api/jobs?$page"
t_eq "list jobs counts both" "$(j 'd["count"]')" 2
call PUT "/api/jobs/complete/$JOB" '{"jobId":1,"completedNote":"Replaced valve","completedByUserId":7}'
t_eq "complete job answers 200" "$ST" 200
t_eq "complete job returns the GUID" "$(j d)" "$JOB"
call GET "/api/jobs/$JOB"
t_eq "a completed job records the completion" \
    "$(j '[d["status"], d["completedNote"], d["completedByUserId"], "completedDate" in d]')" \
    '["Completed", "Replaced valve", 7, true]'
DONE_AT=$(j 'd["completedDate"]')
call PUT "/api/jobs/complete/$JOB" '{"completedNote":"again"}'
t_eq "completing twice answers 200 with the GUID" "$ST $(j d)" "200 $JOB"
call GET "/api/jobs/$JOB"
t_eq "completing twice changes nothing" "$(j '[d["completedNote"], d["completedDate"]]')" "[\"Replaced valve\", \"$DONE_AT\"]"
call PUT "/api/jobs/complete/00000000-0000-0000-0000-000000000001" '{"completedNote":"x"}'
t_eq "completing an unknown job answers 404" "$ST" 404
t_eq "404 has the §3.1 shape" "$(j '[d["type"], d["title"], d["status"], "detail" in d]')" \
    '["https://tools.ietf.org/html/rfc7231#section-6.5.4", "Not Found", 404, true]'

# ---- 2.4 job costs -------------------------------------------------------------------------
call POST "/api/jobCosts/$JOB" '{"costMaterials":30,"costLabour":34,"budget":100,"costDescription":"Valve"}'
t_eq "create job cost answers 200" "$ST" 200
COST=$(j d)
t_ok "create job cost returns a GUID" is_guid "$COST"
call POST "/api/jobcosts/$JOB2" '{"costMaterials":1}'
call POST "/api/jobcosts/00000000-0000-0000-0000-000000000001" '{"costMaterials":1}'
t_eq "a cost for an unknown job is refused" "$ST $(j 'list(d["errors"])')" '400 ["jobGuid"]'
call GET "/api/jobcosts/$JOB?$page"
t_eq "list job costs answers only that job's costs" "$(j 'd["count"]')" 1
t_eq "a cost belongs to its job" "$(j '[d["data"][0]["jobGuid"], d["data"][0]["jobNumber"]]')" "[\"$JOB\", $N1]"
call GET "/api/jobcosts/00000000-0000-0000-0000-000000000001?$page"
t_eq "listing costs of an unknown job answers 404" "$ST" 404
call PUT "/api/jobcosts/update/$COST" '{"costLabour":40}'
t_eq "update job cost returns the GUID" "$ST $(j d)" "200 $COST"
call GET "/api/jobcosts/$JOB?$page"
t_eq "update job cost merges" "$(j '[d["data"][0]["costLabour"], d["data"][0]["costMaterials"]]')" '[40, 30]'

# ---- 2.5 job tasks -------------------------------------------------------------------------
call POST /api/jobTasks '{"description":"Inspect"}'
t_eq "a task without jobGuid is refused" "$ST $(j 'list(d["errors"])')" '400 ["jobGuid"]'
call POST /api/jobTasks '{"jobGuid":"00000000-0000-0000-0000-000000000001"}'
t_eq "a task for an unknown job is refused" "$ST" 400
call POST /api/jobTasks "{\"jobGuid\":\"$JOB2\",\"description\":\"Inspect\",\"assignedToUserId\":3,\"durationInHours\":2}"
t_eq "create job task answers 200" "$ST" 200
TASK=$(j d)
t_ok "create job task returns a GUID" is_guid "$TASK"
call GET "/api/jobTasks/$TASK"
t_eq "get job task returns the task" \
    "$(j '[d["guid"], d["jobGuid"], d["status"], d["taskNumber"].startswith("T-"), isinstance(d["taskId"], int)]')" \
    "[\"$TASK\", \"$JOB2\", \"Open\", true, true]"
t_eq "a task carries its job's number" "$(j 'd["jobNumber"]')" "$((N1 + 1))"
call GET "/api/JobTasks?$page"
t_eq "list job tasks counts it" "$(j 'd["count"]')" 1
call PUT "/api/jobTasks/StartTask/$TASK" '{"startDate":"2025-04-08T12:00:00Z"}'
t_eq "start job task answers 200" "$ST" 200
call GET "/api/jobTasks/$TASK"
t_eq "a started task records its start" "$(j '[d["status"], d["startDate"]]')" '["Started", "2025-04-08T12:00:00Z"]'
call PUT "/api/jobTasks/CompleteTask/$TASK" '{"completeDate":"2025-04-09T12:00:00Z","completNote":"All good"}'
t_eq "complete job task answers 200" "$ST" 200
call GET "/api/jobTasks/$TASK"
t_eq "a completed task records the guide's completNote" \
    "$(j '[d["status"], d["completeDate"], d["completNote"]]')" '["Completed", "2025-04-09T12:00:00Z", "All good"]'
call PUT "/api/jobTasks/StartTask/$TASK" '{}'
call GET "/api/jobTasks/$TASK"
t_eq "starting a completed task changes nothing" "$(j 'd["status"]')" Completed
call PUT "/api/JobTasks/Update/$TASK" '{"description":"Inspect boiler","priorityName":"High","status":"Open"}'
t_eq "update job task answers 200" "$ST" 200
call GET "/api/jobTasks/$TASK"
t_eq "update job task merges and keeps the status" \
    "$(j '[d["description"], d["priorityName"], d["durationInHours"], d["status"]]')" \
    '["Inspect boiler", "High", 2, "Completed"]'
call POST /api/jobTasks "{\"jobGuid\":\"$JOB2\"}"
TASK2=$(j d)
call PUT "/api/jobTasks/CompleteTask/$TASK2" '{"completeNote":"alt spelling"}'
call GET "/api/jobTasks/$TASK2"
t_eq "completing with completeNote stores it as sent, with a date" \
    "$(j '[d["completeNote"], "completeDate" in d]')" '["alt spelling", true]'

# ---- 2.6 assets ----------------------------------------------------------------------------
call POST /api/assets '{"description":"Pump","assetClassId":10,"assetClass":"Pumps"}'
t_eq "create asset answers 200" "$ST" 200
ASSET=$(j d)
t_ok "create asset returns a GUID" is_guid "$ASSET"
call GET "/api/assets/$ASSET"
t_eq "get asset returns it with an id" "$(j '[d["description"], d["assetId"]]')" '["Pump", 1]'
call GET "/api/assets?$page"
t_eq "list assets counts it" "$(j 'd["count"]')" 1
call PUT "/api/assets/$ASSET" '{"description":"Pump 2"}'
t_eq "update asset returns the GUID" "$ST $(j d)" "200 $ASSET"
call GET "/api/assets/$ASSET"
t_eq "update asset merges" "$(j '[d["description"], d["assetClass"]]')" '["Pump 2", "Pumps"]'
call DELETE "/api/assets/$ASSET"
t_eq "delete asset answers 200" "$ST" 200
call GET "/api/assets/$ASSET"
t_eq "a deleted asset is gone" "$ST" 404
call DELETE "/api/assets/$ASSET"
t_eq "deleting it again answers 404" "$ST" 404
call GET "/api/assets?$page"
t_eq "a deleted asset leaves the list" "$(j 'd["count"]')" 0

# ---- 2.7 sites -----------------------------------------------------------------------------
call POST /api/sites '{"name":"HQ","code":10,"region":"North"}'
t_eq "create site answers 200" "$ST" 200
SITE=$(j d)
t_ok "create site returns a GUID" is_guid "$SITE"
call GET "/api/sites/$SITE"
t_eq "get site returns it with an id" "$(j '[d["name"], d["code"], d["siteId"]]')" '["HQ", 10, 1]'
call GET "/api/sites?$page"
t_eq "list sites counts it" "$(j 'd["count"]')" 1
call PUT "/api/sites/$SITE" '{"region":"South"}'
t_eq "update site returns the updated site" "$ST $(j '[d["guid"], d["name"], d["region"]]')" "200 [\"$SITE\", \"HQ\", \"South\"]"

# ---- 2.8 resources -------------------------------------------------------------------------
call POST /api/resources '{"name":"Bob","resourceType":"Engineer","emailAddress":"bob@example.com"}'
RES=$(j d)
t_ok "create resource returns a GUID" is_guid "$RES"
call GET "/api/resources/$RES"
t_eq "get resource returns it with an id" "$(j '[d["name"], d["resourceId"]]')" '["Bob", 1]'
call GET "/api/resources?$page"
t_eq "list resources counts it" "$(j 'd["count"]')" 1
call PUT "/api/resources/$RES" '{"resourceType":"Supervisor"}'
t_eq "update resource returns the GUID" "$ST $(j d)" "200 $RES"
call GET "/api/resources/$RES"
t_eq "update resource merges" "$(j '[d["name"], d["resourceType"]]')" '["Bob", "Supervisor"]'

# ---- 2.9 storage areas ---------------------------------------------------------------------
call POST /api/storageArea '{"storageName":"Store A","code":"SA","siteId":1}'
AREA=$(j d)
t_ok "create storage area returns a GUID" is_guid "$AREA"
call GET "/api/storageArea/$AREA"
t_eq "get storage area returns it with ids" "$(j '[d["storageName"], d["storageAreaId"], d["storageId"]]')" '["Store A", 1, 1]'
call GET "/api/storageArea?$page"
t_eq "list storage areas counts it" "$(j 'd["count"]')" 1
call PUT "/api/storageArea/$AREA" '{"code":"SA-1"}'
t_eq "update storage area returns the GUID" "$ST $(j d)" "200 $AREA"
call GET "/api/storageArea/$AREA"
t_eq "update storage area merges" "$(j '[d["storageName"], d["code"]]')" '["Store A", "SA-1"]'

# ---- 2.10 stocks ---------------------------------------------------------------------------
call POST /api/Stocks '{"stockTypeId":3,"description":"Filter"}'
STOCK=$(j d)
t_ok "create stock returns a GUID" is_guid "$STOCK"
call GET "/api/stocks/$STOCK"
t_eq "get stock returns it with an id" "$(j '[d["stockTypeId"], d["stockId"]]')" '[3, 1]'
call GET "/api/stocks?$page"
t_eq "list stocks counts it" "$(j 'd["count"]')" 1
call PUT "/api/stocks/$STOCK" '{"description":"Air filter"}'
t_eq "update stock returns the GUID" "$ST $(j d)" "200 $STOCK"
call GET "/api/stocks/$STOCK"
t_eq "update stock merges" "$(j '[d["description"], d["stockTypeId"]]')" '["Air filter", 3]'

# ---- 2.11 stock levels ---------------------------------------------------------------------
call POST /api/stocklevel '{"stockId":1,"storageId":1,"quantity":5}'
t_eq "upsert stock level answers 200" "$ST" 200
LEVEL=$(j d)
t_ok "upsert stock level returns a GUID" is_guid "$LEVEL"
call POST /api/stockLevel '{"StockId":1,"storageId":1,"quantity":9}'
t_eq "upserting the same pair returns the same GUID" "$(j d)" "$LEVEL"
call GET "/api/stocklevel/$LEVEL"
t_eq "get stock level shows the update" "$(j '[d["quantity"], d["stockId"], d["storageId"]]')" '[9, 1, 1]'
call POST /api/stocklevel '{"stockId":1,"storageId":2,"quantity":1}'
t_ok "another pair gets another GUID" test "$(j d)" != "$LEVEL"
call GET "/api/stockLevel?$page"
t_eq "list stock levels counts one per pair" "$(j 'd["count"]')" 2
call POST /api/stocklevel '{"stockId":1}'
t_eq "a stock level needs storageId" "$ST $(j 'list(d["errors"])')" '400 ["storageId"]'
call POST /api/stocklevel '{"stockId":"1","storageId":{"a":1}}'
t_eq "stock level ids must be integers" "$ST $(j 'sorted(d["errors"])')" '400 ["stockId", "storageId"]'

# ---- case-insensitive routes and properties ------------------------------------------------
call GET "/API/JOBS?PAGE=1&PAGESIZE=10"
t_eq "routes and query names ignore case" "$ST $(j 'd["count"]')" "200 2"
call GET "/api/jobs/?$page"
t_eq "a trailing slash is tolerated" "$ST" 200
call GET "/api/jobs/$(tr a-f A-F <<<"$JOB")"
t_eq "GUIDs in paths ignore case" "$ST $(j 'd["guid"]')" "200 $JOB"
call POST /api/sites '{"Name":"Depot","REGION":"East","FloorCount":3}'
DEPOT=$(j d)
call GET "/api/sites/$DEPOT"
t_eq "documented properties are stored in camelCase" "$(j '[d.get("name"), d.get("region"), "Name" in d]')" '["Depot", "East", false]'
t_eq "unknown properties keep their first casing" "$(j 'd.get("FloorCount")')" 3
call PUT "/api/sites/$DEPOT" '{"NAME":"Depot 2","floorcount":4}'
t_eq "a PUT binds properties ignoring case" "$(j '[d["name"], d["FloorCount"], "NAME" in d, "floorcount" in d]')" \
    '["Depot 2", 4, false, false]'
call POST /api/sites '{"floorCOUNT":1,"name":"Annex"}'
call GET "/api/sites/$(j d)"
t_eq "later records use the collection's casing" "$(j 'd.get("FloorCount")')" 1

# ---- errors --------------------------------------------------------------------------------
call GET "/api/nothing?$page"
t_eq "an unknown route answers 404" "$ST $(j 'd["status"]')" "404 404"
call DELETE "/api/sites/$SITE"
t_eq "a wrong method answers 405" "$ST" 405
t_ok "405 lists the allowed methods" grep -q '^Allow: GET, PUT$' <<<"$HEADERS"
call POST /api/jobs '{"jobDetails": '
t_eq "invalid JSON answers 400 with errors" "$ST $(j '"errors" in d')" "400 true"
call POST /api/jobs '["jobDetails"]'
t_eq "a JSON array body answers 400" "$ST" 400
call POST /api/jobs
t_eq "an empty body answers 400" "$ST" 400
call GET "/api/sites/not-a-guid"
t_eq "a path id that is no GUID answers 400 naming it" "$ST $(j 'list(d["errors"])')" '400 ["siteGuid"]'
t_ok "errors are problem+json" grep -qi '^Content-Type: application/problem+json' <<<"$HEADERS"
python3 -c 'import sys; sys.stdout.write("{\"jobDetails\":\"" + "x" * (1100 * 1024) + "\"}")' >"$T_TMP/big.json"
ST=$(curl -s -o /dev/null -w '%{http_code}' "${HDR[@]}" -H 'Content-Type: application/json' \
    --data-binary "@$T_TMP/big.json" "$SIM_URL/api/jobs")
t_eq "a body over 1 MiB answers 413" "$ST" 413
call GET "/api/jobs?$page"
t_eq "nothing was stored by the refused calls" "$(j 'd["count"]')" 2
call POST /api/sites '{"guid":"not-a-guid","name":"x"}'
t_eq "a malformed guid in a body answers 400" "$ST" 400
call POST /api/sites "{\"guid\":\"$DEPOT\",\"name\":\"x\"}"
t_eq "a guid already in use answers 400" "$ST" 400
call POST /api/sites '{"guid":"3F2504E0-4F89-11D3-9A0C-0305E82C3301","name":"Given"}'
t_eq "a new guid in a body is kept, in lowercase" "$(j d)" 3f2504e0-4f89-11d3-9a0c-0305e82c3301

call GET /_sim/requests
t_eq "every one of the guide's 40 operations was exercised" \
    "$(j 'len(set(e["op"] for e in d if e["op"] and e["status"] == 200))')" 40
stop_sim
t_done
