#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fault: the server host loses its route. Two sessions through moshd, one framed (mosh-client-mux)
# and one stock mosh-client. Twice the server is cut off for 30 s and then reconnected:
#   1. its default route is deleted: client datagrams still arrive, but nothing moshd sends can
#      leave (ENETUNREACH), so no reply reaches a client; then the route comes back;
#   2. its link goes down: nothing arrives or leaves; then the link and its route come back.
# During each outage both mosh-clients hop to new source ports (after 10 s without a round trip),
# so moshd meets new sources mid-outage. Text typed during an outage must not appear during it
# (the outage is real) and must appear after it, with no action from the user; text typed
# before, during and after all appears, in order, once each.
. "$(dirname "$0")/lib.sh"

secs=${E2E_ROUTE_LOSS_SECS:-30}

e2e_mux_lab
e2e_framed_and_stock

# outage NAME CUT RESTORE : run CUT, type NAME-f / NAME-k, keep the server cut off for $secs s
# (checking the text does not get through), run RESTORE; the text must then appear.
outage() {
	local name=$1 cut=$2 restore=$3 t ms t0 left
	t0=$(date +%s%N)
	$cut
	! lab_ns_exec server ip route get 198.51.100.2 >/dev/null 2>&1 ||
		e2e_fail "$name: the server still has a route to the client"
	for t in f k; do e2e_type_marker "$t" "$name-$t"; done
	sleep 12 # past mosh-client's 10 s port-hop interval
	for t in f k; do
		! lab_term_screen "$t" | grep -x "$name-$t-42" >/dev/null ||
			e2e_fail "session $t: '$name-$t' got through during the outage"
	done
	left=$((secs * 1000 - ($(date +%s%N) - t0) / 1000000))
	((left <= 0)) || sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
	for t in f k; do
		! lab_term_screen "$t" | grep -x "$name-$t-42" >/dev/null ||
			e2e_fail "session $t: '$name-$t' got through during the outage"
	done
	lab_term_screen f | grep -E '^mosh: Last contact' >/dev/null ||
		e2e_fail "session f does not show 'Last contact' after $secs s without its server"
	$restore
	echo "$name: server cut off for $((($(date +%s%N) - t0) / 1000000)) ms" >&2
	lab_ns_exec server ip route get 198.51.100.2 >/dev/null || e2e_fail "$name: the server has no route back"
	for t in f k; do
		ms=$(e2e_wait_marker "$t" "$name-$t" 40) ||
			{ e2e_show_logs; e2e_fail "session $t did not resume after the outage ($name)"; }
		echo "$name: session $t: text typed during the outage appeared ${ms} ms after it ended" >&2
	done
	[[ $(e2e_session_count) == 2 ]] || e2e_fail "$name: moshd lost a session"
}

e2e_step "1. the server's default route is deleted for $secs s"
outage route "lab_server_route off" "lab_server_route on"
e2e_step "2. the server's link is down for $secs s"
outage link "lab_server_link down" "lab_server_link up"

e2e_step "after the outages"
for t in f k; do e2e_type_marker "$t" "after-$t"; done
for t in f k; do e2e_wait_marker "$t" "after-$t" 15 >/dev/null; done
for t in f k; do e2e_assert_markers "$t" "before-$t" "route-$t" "link-$t" "after-$t"; done
e2e_status_json | python3 -c '
import json, sys
s = json.load(sys.stdin)["sessions"]
print("moshd now shows:", sorted((x["client_kind"], x["client"]) for x in s), file=sys.stderr)
assert sorted(x["client_kind"] for x in s) == ["framed", "stock"], s' || e2e_fail "moshd status after the outages"
grep -E 'client (moved|confirmed)' "$LAB_DIR/moshd.log" >&2 || true
echo PASS
