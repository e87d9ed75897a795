#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fault: roaming. The client host of a framed mux session (mosh-client-mux) changes address in
# the middle of the session: the new address is added and the old one removed, so nothing can
# leave from the old address any more. The session must continue: text typed before, during
# (right after the move) and after all appears, in order, once each; moshd's status shows the
# new client address, moshd logged the move, and the server saw datagrams from the new address.
# For comparison, a plain stock mosh session from the same host (its own UDP port, 60002, the
# only other port the firewall admits) roams at the same moment; both recovery times are logged.
. "$(dirname "$0")/lib.sh"

e2e_mux_lab
# moshd's port and one port for the stock comparison session; nothing else.
lab_firewall mux "$E2E_MOSHD_PORT-$((E2E_MOSHD_PORT + 1))"
old=198.51.100.2 new=198.51.100.77

e2e_step "a framed mux session (m) and a stock mosh session (s) from $old"
e2e_marker_cmd "$LAB_ID-m"
e2e_mosh_muxd m root "${E2E_CMD[@]}"
e2e_marker_cmd "$LAB_ID-s"
lab_term_start s mosh --ssh="$LAB_SSH" -p $((E2E_MOSHD_PORT + 1)) "root@$LAB_SERVER_IP" -- "${E2E_CMD[@]}"
lab_term_wait m "$(e2e_marker "$LAB_ID-m")" 30
lab_term_wait s "$(e2e_marker "$LAB_ID-s")" 30
# The mux session really is framed and goes through moshd; the comparison session does not.
relay=$(e2e_find_pid "$(e2e_term_pid m)" mosh-client-mux)
e2e_find_pid "$relay" mosh-client >/dev/null
for t in m s; do e2e_type_marker "$t" "before-$t"; done
for t in m s; do e2e_wait_marker "$t" "before-$t" 15 >/dev/null; done
json=$(e2e_status_json)
python3 - "$json" "$old" <<'PY' || e2e_fail "moshd status before the move: $json"
import json, sys
s = json.loads(sys.argv[1])["sessions"]
assert len(s) == 1, s
assert s[0]["client_kind"] == "framed" and s[0]["client"].startswith(sys.argv[2] + ":"), s[0]
PY
moved0=$(grep -c 'client moved' "$LAB_DIR/moshd.log" || true)

e2e_step "the client host moves from $old to $new (old address removed)"
lab_client_move client "$new"
addrs=$(ip -n "$LAB_CLIENT_NS" -4 -o addr show dev eth0 | awk '{print $4}')
[[ $addrs == "$new/24" ]] || e2e_fail "client addresses after the move: $addrs"
for t in m s; do e2e_type_marker "$t" "during-$t"; done
# mosh-client hops to a new source port (hence, through the relay, a new outer socket with the
# new address) after 10 s without a round trip; allow a few hop intervals.
# Within 8 s: less than mosh-client's 10 s port hop, so recovery must not wait for one (a relay
# whose outer socket kept the old source address would).
ms_m=$(e2e_wait_marker m during-m 8) || { e2e_show_logs; e2e_fail "the mux session did not recover within 8 s of the move"; }
ms_s=$(e2e_wait_marker s during-s 60) || e2e_fail "the stock session did not recover after the move"
echo "text typed right after the move appeared after: mux ${ms_m} ms, stock mosh ${ms_s} ms" >&2
for t in m s; do e2e_type_marker "$t" "after-$t"; done
for t in m s; do e2e_wait_marker "$t" "after-$t" 15 >/dev/null; done
for t in m s; do e2e_assert_markers "$t" "before-$t" "during-$t" "after-$t"; done

e2e_step "moshd shows the new client address and logged the move"
json=$(e2e_status_json)
echo "$json" >&2
client=$(python3 -c '
import json, sys
s = json.loads(sys.argv[1])["sessions"]
assert len(s) == 1, s
assert s[0]["client_kind"] == "framed", s[0]
assert s[0]["client"].startswith(sys.argv[2] + ":"), s[0]["client"]
print(s[0]["client"])' "$json" "$new") || e2e_fail "moshd status after the move: $json"
grep 'client moved' "$LAB_DIR/moshd.log" | tail -n +$((moved0 + 1)) | grep "from=$old:[0-9]* to=$client" >&2 ||
	e2e_fail "moshd logged no move from $old to $client"
lab_server_peers | grep -Fx "$client" >/dev/null || e2e_fail "the server saw no datagram from $client"
echo "roaming: mux recovered in ${ms_m} ms, stock mosh in ${ms_s} ms; moshd shows $client" >&2
echo PASS
