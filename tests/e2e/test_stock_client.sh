#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Only the server has mosh-mux: stock mosh-client sends raw mosh datagrams to moshd's port, and
# moshd maps each source to its session by probing the sessions whose sshd saw that client IP.
# Three stock sessions from two client hosts (two from one address) next to a framed one; a
# third host that never ran ssh reaches no mosh-server; spoofed floods stay within the probe caps;
# with the roaming probe off (the default), a stock client that changes address waits.
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

e2e_step "a flood of raw datagrams from spoofed sources stays within the probe caps"
# 20,000 datagrams from 50 spoofed sources in 198.51.100.0/24, among them the two real client
# addresses (random ports): only those two IPs match any session, and each has a budget of
# burst 8 + 2/s probes of at most 8 sessions.
srcs=(198.51.100.2 198.51.100.3)
for i in $(seq 100 147); do srcs+=("198.51.100.$i"); done
t0=$(date +%s)
sent=$(lab_ns_exec "$c3" python3 "$E2E_DIR/tools/rawflood.py" 203.0.113.10 "$E2E_MOSHD_PORT" 20000 10 "${srcs[@]}")
secs=$(($(date +%s) - t0 + 1))
sleep 1
probes=$(($(e2e_counter probes) - probes0))
bound=$((2 * (8 + 2 * secs) * 8))
echo "flood: sent $sent in ~${secs}s; probes sent: $probes (bound $bound); source-rate drops: $(e2e_counter probe_source_rate)" >&2
((sent >= 10000)) || e2e_fail "the flood sent only $sent datagrams"
((probes <= bound)) || e2e_fail "probes $probes exceed the cap $bound"
((probes > 0)) || e2e_fail "no probes at all: the flood did not reach moshd as expected"
for d in decoy1 decoy2; do
	n=$(cat "$LAB_DIR/$d.count")
	((n <= (8 + 2 * secs))) || e2e_fail "$d received $n datagrams, more than one source's probe budget"
done
for t in k1 k2 k3 f1; do
	# shellcheck disable=SC2016
	lab_term_type "$t" "echo after-\$((6*7))-$t"
done
for t in k1 k2 k3 f1; do lab_term_wait "$t" "^after-42-$t\$" 15; done

e2e_step "roaming probe off (default): a stock client that changes address waits, with mosh's message"
lab_client_move "$c2" 198.51.100.77
# shellcheck disable=SC2016
lab_term_type k3 'echo roamed-$((6*7))'
lab_term_wait k3 'Last contact' 30
if lab_term_screen k3 | grep -q '^roamed-42$'; then e2e_fail "the roamed stock client got through with the roaming probe off"; fi
lab_term_wait k1 "^after-42-k1\$" 1
echo PASS
