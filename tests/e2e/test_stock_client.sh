#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Only the server has mosh-mux: stock mosh-client sends raw mosh datagrams to moshd's port, and
# moshd maps each source to its session by probing the sessions whose sshd saw that client IP.
# Three stock sessions from two client hosts (two from one address) next to a framed one; a
# third host that never ran ssh reaches no mosh-server; with the roaming probe off (the default),
# a stock client that changes address waits (nothing is probed, mosh says "Last contact"), and
# resumes when it returns to the address its sshd saw. Spoofed floods against the probe caps:
# test_security_probecaps.sh.
. "$(dirname "$0")/lib.sh"

e2e_mux_lab
c2=$(lab_add_client c2 198.51.100.3)
c3=$(lab_add_client c3 198.51.100.4)

e2e_step "three stock-client sessions (two from 198.51.100.2, one from .3) and one framed"
e2e_marker_cmd "$LAB_ID-k1"; e2e_mosh_stock_in "$LAB_CLIENT_NS" k1 root "${E2E_CMD[@]}"
e2e_marker_cmd "$LAB_ID-k2"; e2e_mosh_stock_in "$LAB_CLIENT_NS" k2 root "${E2E_CMD[@]}"
e2e_marker_cmd "$LAB_ID-k3"; e2e_mosh_stock_in "$c2" k3 root "${E2E_CMD[@]}"
e2e_marker_cmd "$LAB_ID-f1"; e2e_mosh_muxd f1 root "${E2E_CMD[@]}"
for t in k1 k2 k3 f1; do lab_term_wait "$t" "$(e2e_marker "$LAB_ID-$t")" 30; done
for t in k1 k2 k3 f1; do
	# shellcheck disable=SC2016 # expanded by the remote shell
	lab_term_type "$t" "echo typed-\$((6*7))-$t"
done
for t in k1 k2 k3 f1; do lab_term_wait "$t" "^typed-42-$t\$" 15; done
# The stock clients really are stock: no relay process on the client hosts for them.
relays=$(e2e_ns_pids "$LAB_CLIENT_NS" mosh-client-mux | wc -l)
stock=$(( $(e2e_ns_pids "$LAB_CLIENT_NS" mosh-client | wc -l) + $(e2e_ns_pids "$c2" mosh-client | wc -l) - relays ))
[[ $relays == 1 ]] || e2e_fail "expected one relay (the framed session), found $relays"
[[ $stock == 3 ]] || e2e_fail "expected three stock mosh-client processes, found $stock"

e2e_step "moshd status: three stock clients, one framed"
json=$(e2e_status_json)
python3 - "$json" <<'PY' || e2e_fail "status does not show 3 stock + 1 framed clients: $json"
import json, sys
s = json.loads(sys.argv[1])["sessions"]
kinds = sorted((x["client_kind"], x["client"].rsplit(":", 1)[0]) for x in s)
assert kinds == [("framed", "198.51.100.2"), ("stock", "198.51.100.2"), ("stock", "198.51.100.2"),
                 ("stock", "198.51.100.3")], kinds
PY
probes0=$(e2e_counter probes)
echo "probes so far: $probes0" >&2

e2e_step "a host that never ran ssh reaches no mosh-server"
# Decoys claim the real client's sshd address: the worst case for leaks.
e2e_decoy 198.51.100.2 decoy1
e2e_decoy 198.51.100.3 decoy2
unknown0=$(e2e_counter unknown_source)
lab_ns_exec "$c3" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(300):
    s.sendto(bytes([0x01]) + bytes(47), ("203.0.113.10", 60001))
'
sleep 1
unknown1=$(e2e_counter unknown_source)
((unknown1 - unknown0 >= 300)) || e2e_fail "moshd counted $((unknown1 - unknown0)) unknown-source drops, expected 300"
[[ $(e2e_counter probes) == "$probes0" ]] || e2e_fail "datagrams from a stranger were probed"
for d in decoy1 decoy2; do
	[[ $(cat "$LAB_DIR/$d.count") == 0 ]] || e2e_fail "$d received $(cat "$LAB_DIR/$d.count") datagrams"
done

e2e_step "roaming probe off (default): a stock client that changes address waits, with mosh's message"
# Nothing from the new address is probed (no session's sshd saw it): every datagram is dropped as
# an unknown source, and no session, not even the decoy claiming k3's old address, receives one.
probes0=$(e2e_counter probes) unknown0=$(e2e_counter unknown_source)
decoy20=$(cat "$LAB_DIR/decoy2.count")
lab_client_move "$c2" 198.51.100.77
# shellcheck disable=SC2016
lab_term_type k3 'echo roamed-$((6*7))'
lab_term_wait k3 'Last contact|^roamed-42$' 30 || e2e_fail "mosh did not say 'Last contact' on k3"
if lab_term_screen k3 | grep '^roamed-42$' >/dev/null; then e2e_fail "the roamed stock client got through with the roaming probe off"; fi
probes1=$(e2e_counter probes) unknown1=$(e2e_counter unknown_source)
echo "while k3 sits at 198.51.100.77: probes $probes0 -> $probes1, unknown_source $unknown0 -> $unknown1" >&2
[[ $probes1 == "$probes0" ]] || e2e_fail "moshd probed sessions with the roamed client's datagrams ($probes0 -> $probes1)"
((unknown1 > unknown0)) || e2e_fail "no datagram from 198.51.100.77 was counted as an unknown source"
[[ $(cat "$LAB_DIR/decoy2.count") == "$decoy20" ]] || e2e_fail "decoy2 received the roamed client's datagrams"
client=$(e2e_status_json | python3 -c '
import json, sys
s = [x for x in json.load(sys.stdin)["sessions"] if x["client_kind"] == "stock" and x["client"].startswith("198.51.100.3:")]
print(len(s))')
[[ $client == 1 ]] || e2e_fail "moshd no longer shows k3 at its old address 198.51.100.3"
# The other sessions are not affected.
e2e_type_marker k1 still-k1
e2e_wait_marker k1 still-k1 10 >/dev/null || e2e_fail "k1 stalled while k3 was away"

e2e_step "back at an address its sshd saw (198.51.100.3), the session resumes: what was typed arrives"
t0=$(date +%s%N)
lab_client_move "$c2" 198.51.100.3
lab_term_wait k3 '^roamed-42$' 30 || e2e_fail "k3 did not resume after returning to 198.51.100.3"
echo "k3 resumed $((($(date +%s%N) - t0) / 1000000)) ms after returning; probes $(e2e_counter probes)" >&2
# shellcheck disable=SC2016
lab_term_type k3 'echo back-$((6*7))'
lab_term_wait k3 '^back-42$' 10
e2e_status_json | python3 -c '
import json, sys
s = [x for x in json.load(sys.stdin)["sessions"] if x["client_kind"] == "stock" and x["client"].startswith("198.51.100.3:")]
assert len(s) == 1, s' || e2e_fail "moshd does not show k3 at 198.51.100.3"
echo PASS
