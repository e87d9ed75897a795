#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fault: moshd restarts. Two sessions through moshd, one framed (mosh-client-mux) and one stock
# mosh-client (only the server has mosh-mux). moshd goes down three times and comes back with the
# same state file and control socket:
#   1. SIGKILL (a crash: nothing saved at exit), then started again;
#   2. SIGTERM (a clean stop), then started again;
#   3. an upgrade: SIGTERM, then a "newly built" binary (a copy at a new path) is started.
# Each time text is typed in both sessions while moshd is down (15 s for the crash, long enough
# for both mosh-clients to hop to new source ports; 4 s for the others); it must not appear during the
# outage (the outage is real) and must appear once moshd is back, with no action from the user.
# moshd must restore both sessions from its state file each time (log: "session restored") and
# show them again with their client kinds.
. "$(dirname "$0")/lib.sh"


e2e_mux_lab
e2e_framed_and_stock

# kinds : the sessions' client kinds, sorted, e.g. "framed stock".
kinds() {
	e2e_status_json | python3 -c '
import json, sys
print(" ".join(sorted(str(s["client_kind"]) for s in json.load(sys.stdin)["sessions"])))'
}
[[ $(kinds) == "framed stock" ]] || e2e_fail "moshd shows client kinds: $(kinds)"
server_pids=$(e2e_status_json | python3 -c 'import json,sys; print(" ".join(sorted(str(s["server_pid"]) for s in json.load(sys.stdin)["sessions"])))')
# The state file is written at most 100 ms after a change; wait (bounded) for both sessions.
for i in $(seq 1 50); do
	[[ $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["sessions"]))' \
		"$LAB_DIR/moshd/state.json" 2>/dev/null) == 2 ]] && break
	sleep 0.1
done
((i < 50)) || e2e_fail "the state file does not hold the two sessions"

# outage NAME SIGNAL SECS [BIN] : stop moshd with SIGNAL, type NAME-f / NAME-k in both sessions,
# wait SECS (the text must not get through), start moshd (BIN) again; the text must appear.
outage() {
	local name=$1 sig=$2 secs=$3 bin=${4:-$LAB_BIN/moshd} t ms restored0
	restored0=$(grep -c 'session restored' "$LAB_DIR/moshd.log" || true)
	e2e_moshd_stop "$sig"
	for t in f k; do e2e_type_marker "$t" "$name-$t"; done
	sleep "$secs"
	for t in f k; do
		! lab_term_screen "$t" | grep -x "$name-$t-42" >/dev/null ||
			e2e_fail "session $t: '$name-$t' got through while moshd was down"
	done
	e2e_moshd_start_again "$bin"
	[[ $(readlink "/proc/$E2E_MOSHD_PID/exe") == "$bin" ]] ||
		e2e_fail "moshd runs $(readlink "/proc/$E2E_MOSHD_PID/exe"), not $bin"
	for t in f k; do
		ms=$(e2e_wait_marker "$t" "$name-$t" 40) ||
			{ e2e_show_logs; e2e_fail "session $t did not resume after moshd's $name restart"; }
		echo "$name: session $t: text typed during the outage appeared ${ms} ms after moshd restarted" >&2
	done
	local restored
	restored=$(($(grep -c 'session restored' "$LAB_DIR/moshd.log") - restored0))
	((restored == 2)) || e2e_fail "$name: moshd restored $restored sessions, expected 2"
	[[ $(e2e_status_json | python3 -c 'import json,sys; print(" ".join(sorted(str(s["server_pid"]) for s in json.load(sys.stdin)["sessions"])))') == "$server_pids" ]] ||
		e2e_fail "$name: moshd does not list the two original sessions"
	for i in $(seq 1 50); do
		[[ $(kinds) == "framed stock" ]] && break
		sleep 0.1
	done
	[[ $(kinds) == "framed stock" ]] || e2e_fail "$name: moshd shows client kinds: $(kinds)"
}

# 15 s: both mosh-clients hop to a new source port meanwhile (after 10 s without a round trip),
# so the restarted moshd meets sources it never saw, as after a long crash.
e2e_step "1. moshd killed with SIGKILL, started again 15 s later"
outage kill KILL 15
e2e_step "2. moshd stopped with SIGTERM, started again"
outage term TERM 4
grep -q 'SIGTERM: stopping' "$LAB_DIR/moshd.log" || e2e_fail "moshd did not log its clean stop"
e2e_step "3. upgrade: SIGTERM, then a newly built binary at a new path"
install -m 0755 "$LAB_BIN/moshd" "$LAB_BIN/moshd.new"
outage upgrade TERM 4 "$LAB_BIN/moshd.new"

e2e_step "after the restarts"
for t in f k; do e2e_type_marker "$t" "after-$t"; done
for t in f k; do e2e_wait_marker "$t" "after-$t" 15 >/dev/null; done
for t in f k; do e2e_assert_markers "$t" "before-$t" "kill-$t" "term-$t" "upgrade-$t" "after-$t"; done
echo PASS
