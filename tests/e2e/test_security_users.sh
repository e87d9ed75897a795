#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Local users against each other, with real uids on the server: nobody can route to a port they do
# not own, take a sid in use, see another user's sessions, or receive another session's traffic
# after its owner is gone; and no session key reaches moshd's log or state file.
. "$(dirname "$0")/lib.sh"

# Trace logging: the most moshd ever writes, for the key check at the end.
E2E_MOSHD_LOG=trace
e2e_mux_lab
alice=$(lab_add_user a)
mallory=$(lab_add_user m)
py=/usr/bin/python3
ctl=$E2E_DIR/tools/ctl.py
sock=$E2E_MOSHD_SOCK
out=$LAB_DIR/sec
mkdir -p "$out"
chmod 0777 "$out"
# A datagram moshd's public port receives, framed for SID (hex).
send_framed() { # SID COUNT
	lab_ns_exec "$LAB_CLIENT_NS" "$py" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d = bytes([0xB1]) + bytes.fromhex(sys.argv[1]) + bytes([0x01]) + bytes(40)
for _ in range(int(sys.argv[2])):
    s.sendto(d, ("203.0.113.10", 60001))
' "$1" "$2"
}
expect_refused() { # WHAT ANSWER REGEX
	grep -q '"result":"refused"' <<<"$2" && grep -Eq "$3" <<<"$2" || e2e_fail "$1: expected a refusal matching /$3/, got: $2"
	echo "refused as expected ($1): $2" >&2
}

e2e_step "alice holds a session (a registered loopback port of hers)"
lab_spawn server alice-hold runuser -u "$alice" -- "$py" "$ctl" "$sock" hold aaaaaaaaaaaaaaaa 120 "$out/alice" >/dev/null
for _ in $(seq 1 50); do [[ -s $out/alice ]] && break; sleep 0.1; done
read -r aport answer <"$out/alice"
grep -q '"result":"registered"' <<<"$answer" || e2e_fail "alice could not register: $answer"
apid=$(pgrep -u "$alice" -f "ctl.py $sock hold aaaaaaaaaaaaaaaa")

e2e_step "mallory cannot register alice's port, root's port, or a port nobody holds"
expect_refused "alice's port" "$(lab_server_as "$mallory" "$py" "$ctl" "$sock" register bbbbbbbbbbbbbbbb "$aport" "$apid")" "not yours"
rootsock=$(lab_spawn server root-bind "$py" "$ctl" "$sock" bind 0 120 "$out/rootport")
sleep 0.5
rport=$(ip netns exec "$LAB_SERVER_NS" ss -Hlunp | grep "pid=$rootsock," | awk '{print $4}' | cut -d: -f2)
[[ -n $rport ]] || e2e_fail "no root port"
expect_refused "root's port" "$(lab_server_as "$mallory" "$py" "$ctl" "$sock" register bbbbbbbbbbbbbbbb "$rport" "$rootsock")" "not yours"
expect_refused "nobody's port" "$(lab_server_as "$mallory" "$py" "$ctl" "$sock" register bbbbbbbbbbbbbbbb 1 "$apid")" "no UDP socket"

e2e_step "mallory cannot take over alice's sid, even with a port of her own"
lab_spawn server mallory-hold runuser -u "$mallory" -- "$py" "$ctl" "$sock" hold aaaaaaaaaaaaaaaa 60 "$out/mallory" >/dev/null
for _ in $(seq 1 50); do [[ -s $out/mallory ]] && break; sleep 0.1; done
expect_refused "alice's sid" "$(cat "$out/mallory")" "already registered"

e2e_step "each user sees only their own sessions"
n=$(e2e_status_json "$mallory" | "$py" -c 'import json,sys; print(len(json.load(sys.stdin)["sessions"]))')
[[ $n == 0 ]] || e2e_fail "mallory sees $n sessions"
seen=$(e2e_status_json "$alice" | "$py" -c 'import json,sys; print(" ".join(s["user"] for s in json.load(sys.stdin)["sessions"]))')
[[ $seen == "$alice" ]] || e2e_fail "alice sees: $seen"

e2e_step "alice's traffic reaches alice; after her process exits and mallory takes the port, nothing does"
send_framed aaaaaaaaaaaaaaaa 5
sleep 0.5
[[ $(cat "$out/alice.count") -ge 5 ]] || e2e_fail "alice's session received $(cat "$out/alice.count") of 5"
kill "$apid"
for _ in $(seq 1 20); do
	e2e_status_json | grep -q '"sid": "aaaaaaaaaaaaaaaa"' || break
	sleep 0.1
done
e2e_status_json | grep -q '"sid": "aaaaaaaaaaaaaaaa"' && e2e_fail "moshd kept alice's ended session"
lab_spawn server mallory-bind runuser -u "$mallory" -- "$py" "$ctl" "$sock" bind "$aport" 60 "$out/mbind" >/dev/null
for _ in $(seq 1 50); do [[ -s $out/mbind ]] && break; sleep 0.1; done
grep -q bound "$out/mbind" || e2e_fail "mallory could not bind alice's old port $aport"
send_framed aaaaaaaaaaaaaaaa 20
sleep 0.5
[[ $(cat "$out/mbind.count") == 0 ]] || e2e_fail "mallory received $(cat "$out/mbind.count") datagrams on alice's old port"
[[ $(cat "$out/rootport.count") == 0 ]] || e2e_fail "root's decoy received datagrams"

e2e_step "no session key in moshd's log or state file (a real mux session, trace logging)"
e2e_marker_cmd "$LAB_ID-k"
e2e_mosh_muxd k root "${E2E_CMD[@]}"
lab_term_wait k "$(e2e_marker "$LAB_ID-k")" 30
cpid=$(e2e_ns_pids "$LAB_CLIENT_NS" mosh-client-mux | head -n1)
key=$(tr '\0' '\n' <"/proc/$cpid/environ" | sed -n 's/^MOSH_KEY=//p')
[[ ${#key} == 22 ]] || e2e_fail "could not read the session key from the client (got '${key}')"
sleep 0.5
for f in "$LAB_DIR/moshd.log" "$LAB_DIR/moshd/state.json"; do
	[[ -s $f ]] || e2e_fail "$f is empty: the check would prove nothing"
	if grep -qF "$key" "$f"; then e2e_fail "the session key appears in $f"; fi
	# The key's bytes in hex would be as bad as the key itself.
	hex=$("$py" -c 'import base64,sys; print(base64.b64decode(sys.argv[1]+"==").hex())' "$key")
	if grep -qiF "$hex" "$f"; then e2e_fail "the session key (hex) appears in $f"; fi
done
echo PASS
