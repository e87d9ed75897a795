#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# No hijack: a real client datagram captured on the path and replayed from another host, and a
# forged datagram carrying the session's valid sid from that host, do not move the return path:
# the real client keeps its session and the other host receives nothing.
. "$(dirname "$0")/lib.sh"

e2e_mux_lab
c3=$(lab_add_client c3 198.51.100.4)
py=/usr/bin/python3

e2e_marker_cmd "$LAB_ID-h"
e2e_mosh_muxd h root "${E2E_CMD[@]}"
lab_term_wait h "$(e2e_marker "$LAB_ID-h")" 30
client0=$(e2e_status_json | $py -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["client"])')
[[ $client0 == 198.51.100.2:* ]] || e2e_fail "unexpected client $client0"

e2e_step "capture one of the client's framed datagrams on the router"
lab_spawn router sniff "$py" "$E2E_DIR/tools/sniff.py" 203.0.113.10 "$E2E_MOSHD_PORT" b1 15 "$LAB_DIR/captured" >/dev/null
sleep 0.3
# shellcheck disable=SC2016 # expanded by the remote shell
lab_term_type h 'echo one-$((6*7))'
lab_term_wait h '^one-42$' 10
for _ in $(seq 1 50); do [[ -s $LAB_DIR/captured ]] && break; sleep 0.1; done
[[ -s $LAB_DIR/captured ]] || e2e_fail "captured nothing"
hex=$(cat "$LAB_DIR/captured")
echo "captured ${#hex} hex digits, sid ${hex:2:16}" >&2

e2e_step "replay it, and forge datagrams with its sid, from 198.51.100.4; listen there for answers"
got=$(lab_ns_exec "$c3" "$py" -c '
import os, socket, sys, time
d = bytes.fromhex(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
for i in range(20):
    s.sendto(d, ("203.0.113.10", 60001))                                   # replay
    s.sendto(d[:9] + bytes([d[9] & 0x7f]) + os.urandom(len(d) - 10), ("203.0.113.10", 60001))  # forged
    s.sendto(d[:9] + bytes([0x7f]) + b"\xff" * 7 + os.urandom(40), ("203.0.113.10", 60001))  # forged, huge seq
    time.sleep(0.05)
s.settimeout(0.5)
n, end = 0, time.monotonic() + 3
while time.monotonic() < end:
    try:
        s.recv(4096); n += 1
    except socket.timeout:
        pass
print(n)
' "$hex")
[[ $got == 0 ]] || e2e_fail "the attacking host received $got datagrams"

e2e_step "the return path did not move; the real client still has its session"
client1=$(e2e_status_json | $py -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["client"])')
[[ $client1 == "$client0" ]] || e2e_fail "the confirmed client moved from $client0 to $client1"
if grep -q 'client moved' "$LAB_DIR/moshd.log"; then e2e_fail "moshd logged a client move"; fi
cands=$(e2e_status_json | $py -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["candidates"])')
echo "candidates after the attack: $cands (the attacker's address got one, unconfirmed)" >&2
# shellcheck disable=SC2016
lab_term_type h 'echo two-$((6*7))'
lab_term_wait h '^two-42$' 10
echo PASS
