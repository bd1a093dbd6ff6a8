#!/usr/bin/env bash
# sim_query_test: trackplan-sim's list endpoints page, filter and order as the guide's §4 and
# Gridify do — required page/pageSize with ASP.NET validation bodies, the pageSize cap, every
# filter operator, ',' and '|', parentheses, '/i', escapes, numbers, dates, empty values, and
# orderBy with directions and several fields; bad fields and syntax answer 400.
. "$TB_SRC/tests/integration/lib.sh"

HDR=(-H 'X-API-Key: k')

. "$TB_SRC/tests/integration/sim_lib.sh"

# list PATH CURL_ARGS... : GET with URL-encoded query arguments; sets ST, BODY, HEADERS.
list() {
    local p=$1 out
    shift
    out=$(curl -sS -G -D "$T_TMP/headers" -w '\n%{http_code}' "${HDR[@]}" "$@" "$SIM_URL$p")
    ST=${out##*$'\n'}
    BODY=${out%$'\n'*}
    HEADERS=$(tr -d '\r' <"$T_TMP/headers")
}

# names FILTER [ORDER] : the names of the sites a filter (and order) lists, comma-separated.
names() {
    local args=(--data-urlencode 'page=1' --data-urlencode 'pageSize=100' --data-urlencode "filter=$1")
    [ $# -ge 2 ] && args+=(--data-urlencode "orderBy=$2")
    list /api/sites "${args[@]}"
    if [ "$ST" = 200 ]; then j '",".join(r["name"] for r in d["data"])'; else echo "HTTP $ST"; fi
}

# error_of PARAM : the first validation message for PARAM in the last body.
error_of() { j "d['errors']['$1'][0]"; }

t_sim --api-key k
for s in '{"name":"Alpha","code":10,"region":"North","note":"a,b"}' \
         '{"name":"beta","code":2,"region":"South"}' \
         '{"name":"Gamma (old)","code":30,"region":"north"}' \
         '{"name":"Delta|x","code":2,"region":"East","opened":"2025-04-08T12:00:00Z"}' \
         '{"name":"Epsilon","code":100,"region":null,"score":1.5}'; do
    call POST /api/sites "$s"
done

# ---- paging --------------------------------------------------------------------------------
call GET /api/sites
t_eq "a list without paging answers 400" "$ST" 400
t_eq "page is required" "$(error_of page)" "The page field is required."
t_eq "pageSize is required" "$(error_of pageSize)" "The pageSize field is required."
t_eq "the body is ASP.NET's validation problem" "$(j '[d["title"], d["status"]]')" \
    '["One or more validation errors occurred.", 400]'
call GET "/api/sites?page=abc&pageSize=10"
t_eq "a page that is not a number is refused" "$(error_of page)" "The value 'abc' is not valid for page."
call GET "/api/sites?page=0&pageSize=10"
t_eq "page 0 is refused" "$(error_of page)" "The field page must be between 1 and 2147483647."
call GET "/api/sites?page=1&pageSize=-5"
t_eq "a negative pageSize is refused" "$ST $(j 'list(d["errors"])')" '400 ["pageSize"]'
call GET "/api/sites?page=1&pageSize=2"
t_eq "a page holds pageSize records and the total count" "$(j '[d["count"], [r["name"] for r in d["data"]]]')" \
    '[5, ["Alpha", "beta"]]'
call GET "/api/sites?page=3&pageSize=2"
t_eq "the last page holds the rest" "$(j '[r["name"] for r in d["data"]]')" '["Epsilon"]'
call GET "/api/sites?page=9&pageSize=2"
t_eq "a page past the end is empty but counted" "$(j '[d["count"], d["data"]]')" '[5, []]'

# ---- filter operators ----------------------------------------------------------------------
t_eq "= equals" "$(names 'name=Alpha')" Alpha
t_eq "== equals too" "$(names 'name==Alpha')" Alpha
t_eq "!= excludes" "$(names 'name!=Alpha')" "beta,Gamma (old),Delta|x,Epsilon"
t_eq "< compares numbers" "$(names 'code<10')" "beta,Delta|x"
t_eq "> compares numbers, not text" "$(names 'code>9')" "Alpha,Gamma (old),Epsilon"
t_eq ">= includes the bound" "$(names 'code>=30')" "Gamma (old),Epsilon"
t_eq "<= includes the bound" "$(names 'code<=10')" "Alpha,beta,Delta|x"
t_eq "=* contains" "$(names 'name=*lph')" Alpha
t_eq "!* does not contain" "$(names 'name!*a')" Epsilon
t_eq "^ starts with" "$(names 'name^G')" "Gamma (old)"
t_eq "!^ does not start with" "$(names 'name!^G')" "Alpha,beta,Delta|x,Epsilon"
t_eq "\$ ends with" "$(names 'name$a')" "Alpha,beta"
t_eq "!\$ does not end with" "$(names 'name!$a')" "Gamma (old),Delta|x,Epsilon"
t_eq "numbers with decimals compare numerically" "$(names 'score>1.25')" Epsilon
t_eq "values are case-sensitive" "$(names 'region=north')" "Gamma (old)"
t_eq "/i makes them case-insensitive" "$(names 'region=north/i')" "Alpha,Gamma (old)"
t_eq "/i works with contains" "$(names 'name=*ALPH/i')" Alpha
t_eq ", is AND" "$(names 'region=north/i,code>10')" "Gamma (old)"
t_eq "| is OR" "$(names 'region=South|region=East')" "beta,Delta|x"
t_eq "parentheses group" "$(names '(region=South|region=East),code=2')" "beta,Delta|x"
t_eq "parentheses change the grouping" "$(names 'region=North|(code=2,name^D)')" "Alpha,Delta|x"
t_eq "escaped parentheses are literal" "$(names 'name=Gamma \(old\)')" "Gamma (old)"
t_eq "an escaped pipe is literal" "$(names 'name=Delta\|x')" "Delta|x"
t_eq "an escaped comma is literal" "$(names 'note=a\,b')" Alpha
t_eq "an empty value matches null" "$(names 'region=')" Epsilon
t_eq "!= with an empty value matches the rest" "$(names 'region!=')" "Alpha,beta,Gamma (old),Delta|x"
t_eq "spaces around operators are optional" "$(names 'code > 10 , region = north')" "Gamma (old)"
t_eq "dates compare as instants" "$(names 'opened>2025-01-01')" "Delta|x"
t_eq "field names ignore case" "$(names 'NAME=Alpha')" Alpha
names 'colour=red' >/dev/null
t_eq "an unknown field answers 400" "$ST" 400
t_eq "the refusal names the field under filter" "$(error_of filter)" "Mapping 'colour' not found"
names 'name=Alpha)' >/dev/null
t_eq "bad syntax answers 400 under filter" "$ST $(j 'list(d["errors"])')" '400 ["filter"]'
names '(name=Alpha' >/dev/null
t_eq "an unclosed parenthesis answers 400" "$ST" 400

# ---- orderBy -------------------------------------------------------------------------------
t_eq "orderBy sorts ascending, stably, numbers numerically" "$(names '' 'code')" \
    "beta,Delta|x,Alpha,Gamma (old),Epsilon"
t_eq "desc sorts descending" "$(names '' 'code desc')" "Epsilon,Gamma (old),Alpha,beta,Delta|x"
t_eq "directions ignore case" "$(names '' 'code DESC')" "Epsilon,Gamma (old),Alpha,beta,Delta|x"
t_eq "asc may be written" "$(names '' 'name ASC')" "Alpha,beta,Delta|x,Epsilon,Gamma (old)"
t_eq "several fields sort in turn" "$(names '' 'code,name desc')" "Delta|x,beta,Alpha,Gamma (old),Epsilon"
t_eq "missing values sort first, then text ignoring case (lowercase first on ties)" \
    "$(names 'code>=10' 'region')" "Epsilon,Gamma (old),Alpha"
names '' 'colour' >/dev/null
t_eq "an unknown orderBy field answers 400 under orderBy" "$ST $(error_of orderBy)" "400 Mapping 'colour' not found"
names '' 'code sideways' >/dev/null
t_eq "a bad direction answers 400" "$ST" 400
list /api/sites --data-urlencode 'page=2' --data-urlencode 'pageSize=2' \
    --data-urlencode 'filter=code>=2' --data-urlencode 'orderBy=code desc'
t_eq "filter, order and paging combine" "$(j '[d["count"], [r["name"] for r in d["data"]]]')" \
    '[5, ["Alpha", "beta"]]'
stop_sim

# ---- the pageSize cap ----------------------------------------------------------------------
python3 -c 'import json; print(json.dumps({"stocks": [{"stockTypeId": i % 7} for i in range(1005)]}))' \
    >"$T_TMP/seed.json"
t_sim --api-key k --seed "$T_TMP/seed.json"
call GET "/api/stocks?page=1&pageSize=5000"
t_eq "pageSize is capped at 1000" "$(j '[d["count"], len(d["data"])]')" '[1005, 1000]'
call GET "/api/stocks?page=2&pageSize=1000"
t_eq "the next page holds the rest" "$(j '[len(d["data"]), d["data"][0]["stockId"]]')" '[5, 1001]'
list /api/stocks --data-urlencode 'page=1' --data-urlencode 'pageSize=1000' --data-urlencode 'filter=stockTypeId=3'
t_eq "filters scan every record" "$(j 'd["count"]')" 144
stop_sim
t_done
