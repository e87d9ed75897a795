#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fault: NAT rebinding. The client sits behind the router's masquerade; mid-session the router
# moves UDP to a fresh conntrack zone and port range (lab_router_rebind), so the outside address
# of the relay's socket changes and replies to the old mapping die. The framed session must
# continue: text typed before, right after each rebind, during and after two blackouts, all
# appears in order, once each.
#
# Then the relay must mirror mosh-client's port hops one to one (design rule 8). Two blackouts
# (all forwarded UDP dropped) last until mosh-client hops to a new source port (it does after
# 10 s without a round trip). Meanwhile the client namespace's UDP sockets are sampled (ss) every
# 0.25 s. Checked:
#  - mosh-client used 3 source ports (the first and two hops); otherwise the check is vacuous;
#  - the relay had exactly as many outer sockets (connected to moshd), each first seen within
#    4 s of its mosh-client port (a hop makes the socket; its first datagram may follow on the
#    next 3 s heartbeat): one outer socket per mosh-client socket, opened at the hop;
#  - the server saw, from the NAT address, exactly (outer sockets + rebinds) UDP sources: each
#    outer socket got one NAT mapping per conntrack zone it sent in, so the relay opened no
#    socket the sampler missed and sent from no stale one; hop mappings are in the rebind range;
#  - moshd logged a "client moved" to each of those sources but the first.
. "$(dirname "$0")/lib.sh"

e2e_mux_lab
lab_router_masquerade on
nat=203.0.113.1

# Socket sampler (root namespace; bounded: at most 720 samples, 0.25 s apart; killed at exit).
samples=$LAB_DIR/udp-samples.txt
(
	for ((i = 0; i < 720; i++)); do
		echo "# $i $(date +%s%N)"
		ip netns exec "$LAB_CLIENT_NS" ss -Huanp 2>/dev/null || true
		sleep 0.25
	done
) >"$samples" 2>/dev/null &
sampler=$!
lab_defer kill "$sampler"

e2e_step "a framed mux session behind the router's masquerade"
e2e_marker_cmd "$LAB_ID-n"
e2e_mosh_muxd n root "${E2E_CMD[@]}"
lab_term_wait n "$(e2e_marker "$LAB_ID-n")" 30
relay=$(e2e_find_pid "$(e2e_term_pid n)" mosh-client-mux)
client=$(e2e_find_pid "$relay" mosh-client)
e2e_type_marker n before
e2e_wait_marker n before 15 >/dev/null
sid=$(e2e_status_json | python3 -c 'import json,sys; s=json.load(sys.stdin)["sessions"]; assert len(s)==1; print(s[0]["sid"])')
first=$(e2e_status_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["client"])')
[[ $first == "$nat:"* ]] || e2e_fail "the client is not behind the NAT: moshd sees $first"

e2e_step "rebind 1: new conntrack zone, UDP mapped into 20000-29999"
lab_router_rebind
e2e_type_marker n rebind1
ms=$(e2e_wait_marker n rebind1 30) || e2e_fail "the session did not survive NAT rebinding"
echo "text typed after rebind 1 appeared after ${ms} ms" >&2

# blackout N : drop all forwarded UDP until mosh-client has a source port it did not have before
# (a hop; bounded: 30 s), typing during it; then lift it and wait for the typed text.
client_ports() {
	ip netns exec "$LAB_CLIENT_NS" ss -Huanp | grep "pid=$client," | awk '{print $4}' | sort
}
hopped() { [[ -n $(comm -13 <(echo "$1") <(client_ports)) ]]; }
blackout() {
	local n=$1 before i t0
	before=$(client_ports)
	[[ -n $before ]] || e2e_fail "mosh-client $client has no UDP socket"
	t0=$SECONDS
	lab_router_blackout on
	e2e_type_marker n "blackout$n"
	for ((i = 0; i < 150; i++)); do
		! hopped "$before" || break
		sleep 0.2
	done
	lab_router_blackout off
	hopped "$before" || e2e_fail "mosh-client did not hop during blackout $n ($((SECONDS - t0)) s)"
	echo "blackout $n: mosh-client hopped after $((SECONDS - t0)) s" >&2
	ms=$(e2e_wait_marker n "blackout$n" 30) || e2e_fail "the session did not recover after blackout $n"
	echo "text typed during blackout $n appeared ${ms} ms after it ended" >&2
}
e2e_step "blackout 1 until mosh-client hops"
blackout 1
e2e_step "blackout 2 until mosh-client hops again"
blackout 2

e2e_step "rebind 2: new conntrack zone, UDP mapped into 30000-39999"
lab_router_rebind
e2e_type_marker n rebind2
ms=$(e2e_wait_marker n rebind2 30) || e2e_fail "the session did not survive the second rebind"
echo "text typed after rebind 2 appeared after ${ms} ms" >&2
e2e_type_marker n after
e2e_wait_marker n after 15 >/dev/null
e2e_assert_markers n before rebind1 blackout1 blackout2 rebind2 after
sleep 0.5 # one more socket sample
kill "$sampler" 2>/dev/null || true

e2e_step "the relay mirrored mosh-client's port hops one to one"
hops=$(python3 "$E2E_DIR/tools/udp_hops.py" "$samples" "$relay" "$client")
peers=$(lab_server_peers | grep "^$nat:" | tr '\n' ' ')
moves=$(grep "client moved sid=$sid " "$LAB_DIR/moshd.log" | sed -n 's/.* to=\([0-9.:]*\).*/\1/p' | tr '\n' ' ')
echo "sockets: $hops" >&2
echo "server saw from $nat: $peers" >&2
echo "moshd moved the client to: $moves" >&2
python3 - "$hops" "$peers" "$moves" "$first" 2 <<'PY' || e2e_fail "the relay's outer sockets do not mirror mosh-client's hops"
import json, sys
h = json.loads(sys.argv[1])
peers = set(sys.argv[2].split())
moves = sys.argv[3].split()
first, rebinds = sys.argv[4], int(sys.argv[5])
c, o = h["client_ports"], h["outer_ports"]
print(f"mosh-client ports {[x['port'] for x in c]}, relay outer ports {[x['port'] for x in o]}, "
      f"{h['samples']} samples", file=sys.stderr)
assert len(c) == 3, f"mosh-client used {len(c)} source ports, expected 3 (two hops)"
assert len(o) == len(c), f"{len(o)} outer sockets for {len(c)} mosh-client sockets"
for a, b in zip(c, o):
    gap = abs(a["first_ns"] - b["first_ns"]) / 1e9
    assert gap <= 4.0, f"outer port {b['port']} first seen {gap:.2f} s from mosh-client port {a['port']}"
assert len(h["inner_ports"]) == 1, f"relay inner sockets: {h['inner_ports']}"
assert len(peers) == len(o) + rebinds, \
    f"server saw {len(peers)} sources from the NAT, expected {len(o)} outer sockets + {rebinds} rebinds"
assert first in peers, (first, peers)
ports = sorted(int(p.rsplit(":", 1)[1]) for p in peers)
assert sum(20000 <= p < 30000 for p in ports) == 3, f"mappings in 20000-29999: {ports}"
assert sum(30000 <= p < 40000 for p in ports) >= 1, f"no mapping in 30000-39999: {ports}"
assert sorted(set(moves)) == sorted(peers - {first}) and len(moves) == len(peers) - 1, \
    f"moshd moves {moves} do not match the new sources {sorted(peers - {first})}"
PY
echo PASS
