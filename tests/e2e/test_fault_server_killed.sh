#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fault: mosh-server killed. A framed mux session's mosh-server (its pid from moshd status) is
# killed with SIGKILL. moshd must forget the session within 2 s (measured, pidfd watch), drop the
# client's later datagrams as an unknown sid, and the client must show what stock mosh shows when
# its server vanishes. That is established here rather than assumed: a plain stock mosh session
# (its own UDP port, 60002, the only other port the firewall admits) has its mosh-server killed at
# the same moment. mosh 1.4 shows, in both:
#     mosh: Last contact N seconds ago. [To quit: Ctrl-^ .]
# and on Ctrl-^ . it exits with status 1 saying
#     mosh did not shut down cleanly. Please note that the
#     mosh-server process may still be running on the server.
. "$(dirname "$0")/lib.sh"

e2e_mux_lab
stock_port=$((E2E_MOSHD_PORT + 1))
lab_firewall mux "$E2E_MOSHD_PORT-$stock_port"

e2e_step "a framed mux session (m) and a plain stock mosh session (s, UDP $stock_port)"
e2e_marker_cmd "$LAB_ID-m"
e2e_mosh_muxd m root "${E2E_CMD[@]}"
e2e_marker_cmd "$LAB_ID-s"
lab_term_start s mosh --ssh="$LAB_SSH" -p "$stock_port" "root@$LAB_SERVER_IP" -- "${E2E_CMD[@]}"
lab_term_wait m "$(e2e_marker "$LAB_ID-m")" 30
lab_term_wait s "$(e2e_marker "$LAB_ID-s")" 30
relay=$(e2e_find_pid "$(e2e_term_pid m)" mosh-client-mux)
for t in m s; do e2e_type_marker "$t" "before-$t"; done
for t in m s; do e2e_wait_marker "$t" "before-$t" 15 >/dev/null; done
mux_pid=$(e2e_status_json | python3 -c 'import json,sys; s=json.load(sys.stdin)["sessions"]; assert len(s)==1; print(s[0]["server_pid"])')
sid=$(e2e_status_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["sid"])')
[[ $(cat "/proc/$mux_pid/comm") == mosh-server ]] || e2e_fail "moshd's server_pid $mux_pid is not a mosh-server"
stock_pid=$(ip netns exec "$LAB_SERVER_NS" ss -Hlunp "sport = :$stock_port" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
[[ $stock_pid =~ ^[0-9]+$ && $(cat "/proc/$stock_pid/comm") == mosh-server ]] ||
	e2e_fail "no mosh-server found on UDP $stock_port: '$stock_pid'"

e2e_step "both mosh-servers are killed (SIGKILL)"
unknown0=$(e2e_counter unknown_sid)
t0=$(date +%s%N)
kill -9 "$mux_pid" "$stock_pid"
ms=
for i in $(seq 1 200); do
	if [[ $(e2e_session_count) == 0 ]]; then
		ms=$((($(date +%s%N) - t0) / 1000000))
		break
	fi
	sleep 0.01
done
[[ -n $ms ]] || e2e_fail "moshd still lists the session $(((($(date +%s%N) - t0) / 1000000))) ms after its mosh-server was killed"
echo "moshd forgot the session ${ms} ms after its mosh-server was killed" >&2
((ms <= 2000)) || e2e_fail "moshd took ${ms} ms (more than 2 s) to forget the session"
ended=$(grep -m1 "session ended sid=$sid" "$LAB_DIR/moshd.log") || e2e_fail "moshd did not log the end of session $sid"
# The log's timestamp gives the reaction time without the status polling's own cost.
log_ms=$(python3 -c '
import datetime, sys
ts = datetime.datetime.strptime(sys.argv[1].split()[0][:26], "%Y-%m-%dT%H:%M:%S.%f")
ts = ts.replace(tzinfo=datetime.timezone.utc).timestamp()
print(round((ts - int(sys.argv[2]) / 1e9) * 1000))' "$ended" "$t0")
echo "moshd logged the end of the session ${log_ms} ms after the kill (status polling saw it gone after ${ms} ms)" >&2
((log_ms <= 2000)) || e2e_fail "moshd logged the end ${log_ms} ms after the kill"

e2e_step "both clients show mosh's usual message for a vanished server"
for t in m s; do e2e_type_marker "$t" "lost-$t"; done
last='^mosh: Last contact [0-9]+ seconds ago\. \[To quit: Ctrl-\^ \.\] *$'
for t in m s; do
	lab_term_wait "$t" "$last" 30 || e2e_fail "session $t does not show mosh's 'Last contact' message"
	echo "session $t shows 'Last contact' $((($(date +%s%N) - t0) / 1000000)) ms after the kill" >&2
done
# moshd drops what the framed client keeps sending: an unknown sid, forwarded nowhere.
for i in $(seq 1 50); do
	(($(e2e_counter unknown_sid) > unknown0)) && break
	sleep 0.2
done
(($(e2e_counter unknown_sid) > unknown0)) || e2e_fail "moshd counted no unknown-sid drops after the session ended"
for t in m s; do
	! lab_term_screen "$t" | grep -x "lost-$t-42" >/dev/null || e2e_fail "session $t answered without its server"
done
lab_term_screen m | grep -E "$last" >&2

e2e_step "Ctrl-^ . quits both, with mosh's message for a server that did not answer the shutdown"
for t in m s; do lab_term_send "$t" C-^ .; done
for t in m s; do
	st=$(lab_term_wait_exit "$t" 15) || e2e_fail "session $t did not exit on Ctrl-^ ."
	[[ $st == 1 ]] || e2e_fail "session $t exited with status $st, stock mosh exits with 1"
	lab_term_output "$t" | grep -q 'mosh did not shut down cleanly' ||
		e2e_fail "session $t did not say 'mosh did not shut down cleanly'"
done
[[ $(e2e_pid_state "$relay") =~ ^(gone|Z)$ ]] || e2e_fail "the relay $relay outlived its session"
echo PASS
