#!/bin/bash
# Helpdesk mail end to end with real parts: swaks delivers a mail over SMTP to a sink that
# pipes it into `trackbridge mail` (as Postfix's pipe transport would); trackbridge raises a
# job request in trackplan-sim and acknowledges it through a real SMTP server; a reply to the
# acknowledgement threads back to the same request; an out-of-office answer to it is
# recorded but neither raises a request nor gets an answer.
. "$(dirname "$0")/lib.sh"

for tool in swaks /usr/bin/python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL - $tool is not installed (deploy/bootstrap.sh installs it)"; echo "0 passed, 1 failed"; exit 1
    fi
done
export TRACKBRIDGE_TOKEN=mail-hook-token-3e TRACKPLAN_API_KEY=mail-sim-key
t_sim --api-key "$TRACKPLAN_API_KEY" --seed "$TB_SRC/deploy/sim-seed.json"

start_sink() { # NAME DIR [ARGS...] -> sets SINK_PORT
    name=$1 dir=$2; shift 2
    mkdir -p "$dir"
    /usr/bin/python3 "$TB_SRC/tests/integration/smtp_sink.py" --dir "$dir" "$@" \
        >"$T_TMP/$name.out" 2>"$T_TMP/$name.log" &
    T_PIDS="$T_PIDS $!"
    for _ in $(seq 100); do
        SINK_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$T_TMP/$name.out")
        [ -n "$SINK_PORT" ] && return 0
        sleep 0.1
    done
    echo "FAIL - $name did not start"; cat "$T_TMP/$name.log"; exit 1
}
start_sink relay "$T_TMP/outbox"
RELAY_PORT=$SINK_PORT
t_start tb "$TB_BIN" serve -c "$TB_SRC/deploy/trackbridge.yaml" --set listen=127.0.0.1:0 \
    --set "trackplan.url=$SIM_URL" --set "store.path=$T_TMP/tb.db" \
    --set smtp.host=127.0.0.1 --set "smtp.port=$RELAY_PORT" --set smtp.starttls=disabled \
    --set "smtp.from=Facilities Helpdesk <helpdesk@fm.example.com>"
TB_URL=$T_URL
# The MX: an SMTP server whose delivery is `trackbridge mail`, the MTA pipe.
start_sink mx "$T_TMP/mx" --pipe "'$TB_BIN' mail --url '$TB_URL' --source email"
MX_PORT=$SINK_PORT

requests() {
    curl -s -H "X-API-Key: $TRACKPLAN_API_KEY" "$SIM_URL/api/jobrequests?page=1&pageSize=100" |
        python3 -c 'import json,sys
for r in json.load(sys.stdin)["data"]: print(r["jobRequestNumber"], r.get("raisedByEmail",""), r["description"].splitlines()[0])'
}
wait_for() { for _ in $(seq 200); do "$@" && return 0; sleep 0.1; done; return 1; }
has_request() { requests | grep -q "$1"; }

swaks --server 127.0.0.1 --port "$MX_PORT" --from k.osei@tenant.example --to helpdesk@fm.example.com \
    --header 'Subject: Light out in the 2nd floor stairwell' \
    --header 'Message-Id: <first-7c1@tenant.example>' \
    --body $'Hello,\n\nThe ceiling light on stair B has been out since Friday.\n\nKwame' \
    >"$T_TMP/swaks1.log" 2>&1
t_ok "swaks delivered the mail through the pipe" grep -q '250 2.0.0' "$T_TMP/swaks1.log"
t_ok "the mail raised a job request from its sender" wait_for has_request 'k.osei@tenant.example Light out'
JR=$(requests | awk '/Light out/ {print $1; exit}')

ack() { ls "$T_TMP/outbox"/*.eml >/dev/null 2>&1; }
t_ok "an acknowledgement reached the SMTP relay" wait_for ack
ACK=$(ls "$T_TMP/outbox"/*.eml | head -n 1)
hdr() { python3 -c 'import email,sys; m=email.message_from_binary_file(open(sys.argv[1],"rb")); print(m.get(sys.argv[2],""))' "$ACK" "$1"; }
t_ok "the acknowledgement goes to the requester" sh -c "grep -q 'k.osei@tenant.example' '${ACK%.eml}.env'"
t_ok "its subject carries the request number" sh -c "python3 -c 'import email,sys,email.header; m=email.message_from_binary_file(open(sys.argv[1],\"rb\")); s=str(email.header.make_header(email.header.decode_header(m[\"Subject\"]))); sys.exit(0 if \"[JR-$JR]\" in s else 1)' '$ACK'"
t_eq "it is marked as an automatic reply" "$(hdr Auto-Submitted)" "auto-replied"
t_eq "it asks for no automatic answers" "$(hdr X-Auto-Response-Suppress)" "All"
t_ok "it answers the request mail" sh -c "python3 -c 'import email,sys; m=email.message_from_binary_file(open(sys.argv[1],\"rb\")); sys.exit(0 if \"first-7c1@tenant.example\" in m.get(\"In-Reply-To\",\"\") else 1)' '$ACK'"
ACK_ID=$(hdr Message-ID)
t_ok "our Message-ID names the request" sh -c "echo '$ACK_ID' | grep -q 'tb.job_request.$JR.'"

# A reply to the acknowledgement, its subject rewritten by the mail client: threads back.
swaks --server 127.0.0.1 --port "$MX_PORT" --from k.osei@tenant.example --to helpdesk@fm.example.com \
    --header 'Subject: RE: stair light' --header "In-Reply-To: $ACK_ID" \
    --header "References: <first-7c1@tenant.example> $ACK_ID" \
    --header 'Message-Id: <second-9d2@tenant.example>' \
    --body $'It is still out this morning.\n\nOn Mon, Helpdesk wrote:\n> logged' >"$T_TMP/swaks2.log" 2>&1
t_ok "the reply is threaded to the same request" wait_for has_request "Follow-up to job request $JR"
t_ok "the quoted history is not copied into the follow-up" sh -c "! curl -s -H 'X-API-Key: $TRACKPLAN_API_KEY' '$SIM_URL/api/jobrequests?page=1&pageSize=100' | grep -q 'Helpdesk wrote'"

# An out-of-office answer to the acknowledgement: recorded, never raised, never answered.
before_mails=$(ls "$T_TMP/outbox"/*.eml | wc -l)
before_jrs=$(requests | wc -l)
swaks --server 127.0.0.1 --port "$MX_PORT" --from k.osei@tenant.example --to helpdesk@fm.example.com \
    --header 'Subject: Automatic reply: [JR-'"$JR"'] Light out' --header 'Auto-Submitted: auto-replied' \
    --header "In-Reply-To: $ACK_ID" --header 'Message-Id: <ooo-1@tenant.example>' \
    --body 'I am out of the office until Monday.' >"$T_TMP/swaks3.log" 2>&1
t_ok "the auto-reply was accepted by the pipe" grep -q '250 2.0.0' "$T_TMP/swaks3.log"
sleep 2
t_eq "an auto-reply raises no request" "$(requests | wc -l)" "$before_jrs"
t_eq "an auto-reply is never answered" "$(ls "$T_TMP/outbox"/*.eml | wc -l)" "$before_mails"
# A sender that mails without pause (an auto-responder loop): the per-sender breaker stops
# raising requests after 20 within ten minutes.
for i in $(seq 24); do
    printf 'From: Looping Robot <robot@tenant.example>\r\nTo: helpdesk@fm.example.com\r\nSubject: Status %s\r\nMessage-ID: <loop-%s@tenant.example>\r\n\r\nStatus report %s\r\n' "$i" "$i" "$i" |
        curl -s -o /dev/null -H "Authorization: Bearer $TRACKBRIDGE_TOKEN" -H 'Content-Type: message/rfc822' \
            --data-binary @- "$TB_URL/hooks/email"
done
robot() { [ "$(requests | grep -c 'robot@tenant.example')" -ge 20 ]; }
t_ok "the first 20 mails of a sender raise requests" wait_for robot
sleep 1
t_eq "the breaker stops the rest" "$(requests | grep -c 'robot@tenant.example')" 20

# A reload that points trackbridge at another relay: acknowledgements go there from then on.
start_sink relay2 "$T_TMP/outbox2"
RELAY2_PORT=$SINK_PORT
smtp_conf() { # PORT -> a configuration file naming that relay
    { cat "$TB_SRC/deploy/trackbridge.yaml"
      printf 'smtp:\n  host: 127.0.0.1\n  port: %s\n  starttls: disabled\n' "$1"
      printf '  from: "Facilities Helpdesk <helpdesk@fm.example.com>"\n'
    } >"$T_TMP/reload.yaml"
}
smtp_conf "$RELAY_PORT"
t_start tbr "$TB_BIN" serve -c "$T_TMP/reload.yaml" --set listen=127.0.0.1:0 \
    --set "trackplan.url=$SIM_URL" --set "store.path=$T_TMP/tbr.db" \
    --set "rules=$TB_SRC/rules" --set "templates=$TB_SRC/templates"
TBR_URL=$T_URL
mail_to_tbr() { # SUBJECT MESSAGE-ID
    printf 'From: Ama Boateng <a.boateng@tenant.example>\r\nTo: helpdesk@fm.example.com\r\nSubject: %s\r\nMessage-ID: <%s@tenant.example>\r\n\r\nPlease have a look.\r\n' "$1" "$2" |
        curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TRACKBRIDGE_TOKEN" \
            -H 'Content-Type: message/rfc822' --data-binary @- "$TBR_URL/hooks/email"
}
in_outbox() { grep -lq "$2" "$1"/*.eml 2>/dev/null; }
t_eq "a mail before the reload is accepted" "$(mail_to_tbr 'Door 3 sticks' before-reload)" 202
t_ok "its acknowledgement reaches the first relay" wait_for in_outbox "$T_TMP/outbox" 'Door 3 sticks'
smtp_conf "$RELAY2_PORT"
kill -HUP "$T_PID_tbr"
reloaded() { grep -q 'mail settings reloaded' "$T_TMP/tbr.err"; }
t_ok "the reload restarts the mail sender" wait_for reloaded
t_eq "a mail after the reload is accepted" "$(mail_to_tbr 'Window 5 cracked' after-reload)" 202
t_ok "its acknowledgement reaches the new relay" wait_for in_outbox "$T_TMP/outbox2" 'Window 5 cracked'
t_ok "and not the old one" sh -c "! grep -lq 'Window 5 cracked' '$T_TMP/outbox'/*.eml"
t_done
