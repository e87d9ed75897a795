#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The core promise: three mosh sessions, two users, one UDP port. The server's firewall admits only
# TCP 22 and moshd's port; stock mosh on both ends with the mux wrappers. Plain mosh in the same lab
# must fail (the firewall is real); moshd status lists the sessions; an ended session is forgotten.
. "$(dirname "$0")/lib.sh"

e2e_mux_lab
alice=$(lab_add_user a)

e2e_step "three sessions through one port: root, root, and $alice"
for s in s1 s2 s3; do
	user=root
	[[ $s != s3 ]] || user=$alice
	e2e_marker_cmd "$LAB_ID-$s"
	e2e_mosh_muxd "$s" "$user" "${E2E_CMD[@]}"
done
for s in s1 s2 s3; do
	lab_term_wait "$s" "$(e2e_marker "$LAB_ID-$s")" 30
done
lab_term_wait s3 "^user=$alice\$" 5
# Each shell runs a command typed now, through the relay and moshd.
for s in s1 s2 s3; do
	# shellcheck disable=SC2016 # expanded by the remote shell
	lab_term_type "$s" "echo typed-\$((7*6))-$s"
done
for s in s1 s2 s3; do
	lab_term_wait "$s" "^typed-42-$s\$" 15
done

e2e_step "moshd status --json lists the three sessions with their users and client addresses"
json=$(e2e_status_json)
echo "$json" >&2
python3 - "$alice" <<PY "$json" || e2e_fail "status JSON does not list the three sessions"
import json, pwd, sys
alice = sys.argv[1]
st = json.loads(sys.argv[2])
s = st["sessions"]
assert len(s) == 3, len(s)
assert sorted(x["user"] for x in s) == sorted(["root", "root", alice]), [x["user"] for x in s]
for x in s:
    assert x["client"] and x["client"].startswith("198.51.100.2:"), x["client"]
    assert x["client_kind"] == "framed"
    assert x["to_server_packets"] > 0 and x["to_client_packets"] > 0
    assert x["to_server_bytes"] > 0 and x["to_client_bytes"] > 0
    assert x["server_pid"] > 1 and x["last_heard_ms"] is not None
    assert x["uid"] == pwd.getpwnam(x["user"]).pw_uid, (x["user"], x["uid"])
PY
# A non-root user sees only their own session.
n=$(e2e_status_json "$alice" | python3 -c 'import json,sys; s=json.load(sys.stdin)["sessions"]; print(len(s), s[0]["user"])')
[[ $n == "1 $alice" ]] || e2e_fail "$alice sees: $n"
# The inner mosh-servers listen on loopback only.
if ip netns exec "$LAB_SERVER_NS" ss -Hlunp | grep mosh-server | grep -v ' 127.0.0.1:' >&2; then
	e2e_fail "a mosh-server listens beyond loopback"
fi

e2e_step "plain mosh in the same lab cannot connect (only moshd's port is open)"
e2e_marker_cmd "$LAB_ID-plain"
e2e_mosh_plain plain root "${E2E_CMD[@]}"
lab_term_wait plain 'Nothing received from server on UDP port' 20
! lab_term_wait plain "$(e2e_marker "$LAB_ID-plain")" 8 2>/dev/null ||
	e2e_fail "plain mosh got through the one-port firewall"
lab_term_send plain C-^ .
lab_term_wait_exit plain 10 >/dev/null || true
if lab_term_screen s1 | grep 'Nothing received\|Last contact' >&2; then e2e_fail "s1 lost contact"; fi

e2e_step "exit in one shell: moshd forgets that session within 2 s of its mosh-server exiting"
pid2=$(e2e_status_json | python3 -c '
import json,sys
print([x["server_pid"] for x in json.load(sys.stdin)["sessions"] if x["user"] == "root"][1])')
# Which terminal owns pid2 does not matter: end root's sessions one at a time until pid2 is gone.
lab_term_type s2 exit
for _ in $(seq 1 100); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid2" 2>/dev/null; then
	lab_term_type s1 exit
	for _ in $(seq 1 100); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.1; done
fi
kill -0 "$pid2" 2>/dev/null && e2e_fail "mosh-server $pid2 did not exit"
# The clock starts when this test sees the pid gone (up to 0.1 s after it went).
t0=$(date +%s%N)
listed=1
for _ in $(seq 1 100); do
	e2e_status_json | grep -q "\"server_pid\": $pid2," || { listed=0; break; }
	(($(date +%s%N) - t0 > 2000000000)) && break
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
((listed == 0)) || e2e_fail "moshd still lists the ended session after ${ms} ms"
((ms <= 2000)) || e2e_fail "moshd forgot the ended session only after ${ms} ms (more than 2 s)"
echo "moshd forgot the session ${ms} ms after its mosh-server exited" >&2
# The other sessions still work.
# shellcheck disable=SC2016
lab_term_type s3 'echo still-$((2*21))'
lab_term_wait s3 '^still-42$' 15
echo PASS
