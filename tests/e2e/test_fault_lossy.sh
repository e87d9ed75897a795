#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fault: a lossy, slow link. The router drops 20% of forwarded UDP in each direction (nftables,
# lab_router_loss) and delays the UDP it forwards towards the server by 300 ms (lab_delay). A
# framed mux session and, for comparison, a plain stock mosh session on the same link at the same
# time must both stay usable: every command typed produces its output within a bounded time, in
# order, once. The firewall admits TCP 22, moshd's port and one more UDP port (60002) for the
# stock session; nothing else.
#
# Delay: 300 ms one way, on the router's server-facing link (eth1, towards the server; replies are
# not delayed), so every round trip grows by 300 ms. That is the direction this test always
# documented (for netem), kept: one delayed direction lengthens every round trip by the full
# 300 ms, which is what the issue asks of the path. Where tc netem works, lab_delay uses it; where
# it does not (as on the 6.18 kernel this was written on: no sch_netem), an NFQUEUE rule and the
# nfdelay program (tests/bench) hold the packets instead, which delays forwarded UDP only (not
# ssh). The test measures the delay before relying on it: the median of 10 UDP round trips
# between the client and server namespaces must grow by at least 300 ms (and by less than 600).
# At the end it checks that nfdelay served the queue throughout and dropped nothing.
#
# Timings: for each typed command, the time from the Enter key to its output on the screen,
# polled every 20 ms, with the delay alone and with delay and loss, mux and stock alternating.
# Written to $LAB_DIR/lossy-timings.txt, printed to the log (lines prefixed "lossy-timings: ")
# and, when E2E_TIMINGS_OUT names a file, copied there (scripts/bench --full renders it in
# docs/BENCHMARKS.md).
. "$(dirname "$0")/lib.sh"

rounds0=${E2E_LOSSY_ROUNDS0:-10} # commands per client without loss
rounds=${E2E_LOSSY_ROUNDS:-40}   # commands per client with loss
loss=20

e2e_mux_lab
stock_port=$((E2E_MOSHD_PORT + 1))
lab_firewall mux "$E2E_MOSHD_PORT-$stock_port"

# udp_rtt : median round trip in ms (to 0.01) of 10 UDP pings from the client namespace to a
# short-lived echo on $LAB_SERVER_IP:$stock_port in the server namespace (the firewall admits that
# port; the stock session takes it later).
udp_rtt() {
	local echo_pid i out
	echo_pid=$(lab_spawn server udp-echo python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(30)
try:
    while True:
        d, a = s.recvfrom(2048)
        if d == b"quit":
            break
        s.sendto(d, a)
except socket.timeout:
    pass
' "$LAB_SERVER_IP" "$stock_port")
	for ((i = 0; i < 50; i++)); do
		[[ -z $(ip netns exec "$LAB_SERVER_NS" ss -Hlun "sport = :$stock_port") ]] || break
		sleep 0.1
	done
	out=$(ip netns exec "$LAB_CLIENT_NS" python3 -c '
import socket, statistics, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
rtts = []
for i in range(10):
    p = b"rtt-%d" % i
    t0 = time.monotonic()
    s.sendto(p, (sys.argv[1], int(sys.argv[2])))
    try:
        while s.recv(2048) != p:
            pass
    except socket.timeout:
        continue
    rtts.append((time.monotonic() - t0) * 1000)
    time.sleep(0.02)
s.sendto(b"quit", (sys.argv[1], int(sys.argv[2])))
print("%.2f" % statistics.median(rtts) if len(rtts) >= 8 else "lost")
' "$LAB_SERVER_IP" "$stock_port")
	for ((i = 0; i < 50; i++)); do
		[[ -n $(_lab_live "$echo_pid") ]] || break
		sleep 0.1
	done
	[[ -z $(_lab_live "$echo_pid") ]] || e2e_fail "the UDP echo on port $stock_port did not stop"
	[[ $out != lost ]] || e2e_fail "UDP round trips to $LAB_SERVER_IP:$stock_port: more than 2 of 10 lost"
	echo "$out"
}

e2e_step "300 ms of delay towards the server, measured"
rtt0=$(udp_rtt)
# nfdelay (if used) ends by itself a minute after the test's time limit would.
LAB_DELAY_MAX_S=$((${E2E_TIMEOUT:-300} + 60)) lab_delay router eth1 300
rtt1=$(udp_rtt)
added=$(python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$rtt0" "$rtt1")
echo "UDP round trip client<->server: ${rtt0} ms without the delay, ${rtt1} ms with it (+${added} ms)" >&2
python3 -c "import sys; a = float(sys.argv[1]); sys.exit(not 300 <= a < 600)" "$added" ||
	e2e_fail "the delay added ${added} ms to a round trip, not 300 (up to 600)"
case $LAB_DELAY_VIA in
netem) delay="300 ms (tc netem on router eth1, towards the server; measured +${added} ms a round trip)" ;;
*) delay="300 ms (UDP forwarded out of router eth1, towards the server, held by nfdelay via NFQUEUE; measured +${added} ms a round trip)" ;;
esac
echo "link: ${loss}% UDP loss each way; delay: $delay" >&2

# UDP datagram counters: the mosh traffic sent by the client namespace to the server and received
# by the server from outside (for the log), and probe datagrams to port 9 in each direction,
# counted where they arrive (before any firewall), which show the loss is real.
ip netns exec "$LAB_CLIENT_NS" nft -f - <<EOF
table inet ${LAB_ID}_cnt {
  counter sent {}
  counter probes {}
  chain out { type filter hook output priority 0; ip daddr $LAB_SERVER_IP udp dport $E2E_MOSHD_PORT-$stock_port counter name sent; }
  chain in { type filter hook input priority -10; udp dport 9 counter name probes; }
}
EOF
ip netns exec "$LAB_SERVER_NS" nft -f - <<EOF
table inet ${LAB_ID}_cnt {
  counter received {}
  counter probes {}
  chain in { type filter hook input priority -10; iif != lo udp dport $E2E_MOSHD_PORT-$stock_port counter name received; iif != lo udp dport 9 counter name probes; }
}
EOF
udp_count() { # NS COUNTER
	ip netns exec "$1" nft list counter inet "${LAB_ID}_cnt" "$2" | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}
# probe_loss FROM_NS TO_NS TO_IP : send 1000 datagrams to TO_IP:9, print how many arrived.
probe_loss() {
	local n0
	n0=$(udp_count "$2" probes)
	ip netns exec "$1" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(1000):
    s.sendto(b"probe", (sys.argv[1], 9))
    if i % 100 == 99:
        time.sleep(0.01)
' "$3"
	sleep 1 # the delay (0.3 s) and then some
	echo $(($(udp_count "$2" probes) - n0))
}

e2e_step "a framed mux session (m) and a stock mosh session (s, UDP $stock_port) on the same link"
e2e_marker_cmd "$LAB_ID-m"
e2e_mosh_muxd m root "${E2E_CMD[@]}"
e2e_marker_cmd "$LAB_ID-s"
lab_term_start s mosh --ssh="$LAB_SSH" -p "$stock_port" "root@$LAB_SERVER_IP" -- "${E2E_CMD[@]}"
lab_term_wait m "$(e2e_marker "$LAB_ID-m")" 30
lab_term_wait s "$(e2e_marker "$LAB_ID-s")" 30
relay=$(e2e_find_pid "$(e2e_term_pid m)" mosh-client-mux)
e2e_find_pid "$relay" mosh-client >/dev/null
[[ $(e2e_session_count) == 1 ]] || e2e_fail "moshd should carry exactly the mux session"
ip netns exec "$LAB_SERVER_NS" ss -Hlunp | grep -F "$LAB_SERVER_IP:$stock_port" | grep -q mosh-server ||
	e2e_fail "the stock session's mosh-server is not on UDP $stock_port"

timings=$LAB_DIR/lossy-timings.txt
raw=$LAB_DIR/lossy-raw.txt
: >"$raw"
# phase NAME N TIMEOUT : N commands in each session, alternating, each timed. Every 15 commands
# (what fits on the 40-row screen) the order is checked and the screen cleared.
phase() {
	local name=$1 n=$2 timeout=$3 i t tag ms
	local tags_m=() tags_s=()
	for ((i = 1; i <= n; i++)); do
		for t in m s; do
			tag="$name-$t-$i"
			e2e_type_marker "$t" "$tag"
			ms=$(e2e_wait_marker "$t" "$tag" "$timeout") ||
				e2e_fail "session $t: '$tag' did not appear within ${timeout}s (${name})"
			echo "$name $([[ $t == m ]] && echo mux || echo stock) $tag $ms" >>"$raw"
			if [[ $t == m ]]; then tags_m+=("$tag"); else tags_s+=("$tag"); fi
		done
		if ((i % 15 == 0 || i == n)); then
			e2e_assert_markers m "${tags_m[@]}"
			e2e_assert_markers s "${tags_s[@]}"
			tags_m=() tags_s=()
			clear_screens "$name-m-$i" "$name-s-$i"
		fi
	done
}
# clear_screens TAG_M TAG_S : run clear in both sessions; wait (bounded) until the last outputs
# are gone from the screens.
clear_screens() {
	local t i tag
	for t in m s; do lab_term_type "$t" clear; done
	for t in m s; do
		tag=$1
		[[ $t == m ]] || tag=$2
		for ((i = 0; i < 100; i++)); do
			lab_term_screen "$t" | grep -Ex -- "$tag-42" >/dev/null || break
			sleep 0.2
		done
		((i < 100)) || e2e_fail "session $t: 'clear' did not clear the screen within 20 s"
	done
}

e2e_step "delay, no loss: $rounds0 commands in each session"
phase loss0 "$rounds0" 10

e2e_step "delay and ${loss}% loss each way: $rounds commands in each session"
sent0=$(udp_count "$LAB_CLIENT_NS" sent)
recv0=$(udp_count "$LAB_SERVER_NS" received)
lab_router_loss "$loss"
phase "loss$loss" "$rounds" 30
sent=$(($(udp_count "$LAB_CLIENT_NS" sent) - sent0))
recv=$(($(udp_count "$LAB_SERVER_NS" received) - recv0))
# The loss is real, both ways: of 1000 datagrams about 800 arrive; 700..900 is over 7 standard
# deviations (sqrt(1000 * 0.8 * 0.2) = 12.6) either side.
up=$(probe_loss "$LAB_CLIENT_NS" "$LAB_SERVER_NS" "$LAB_SERVER_IP")
down=$(probe_loss "$LAB_SERVER_NS" "$LAB_CLIENT_NS" 198.51.100.2)
# Loss off by emptying lab_router_loss's chain, not with "lab_router_loss 0": that deletes the
# chain, and the kernel drops every packet held in an NFQUEUE queue (the delay's) whenever a
# netfilter hook of the namespace goes away.
ip netns exec "$LAB_ROUTER_NS" nft flush chain inet "${LAB_ID}_loss" forwarding
echo "during loss: mosh traffic client->server $recv of $sent arrived; probes: $up/1000 up, $down/1000 down" >&2
((up >= 700 && up <= 900 && down >= 700 && down <= 900)) ||
	e2e_fail "probes: $up/1000 up, $down/1000 down arrived: not a ${loss}% loss each way"

e2e_step "after the loss: both sessions still answer"
for t in m s; do e2e_type_marker "$t" "after-$t"; done
for t in m s; do e2e_wait_marker "$t" "after-$t" 10 >/dev/null; done

# Summary: per condition and client, count, median, 90th percentile and maximum in ms.
python3 - "$raw" "$loss" "$delay" "$sent" "$recv" "$up" "$down" >"$timings" <<'PY'
import sys
raw, loss, delay, sent, recv, up, down = sys.argv[1:8]
rows = [l.split() for l in open(raw) if l.strip()]
print("# mosh-mux e2e lossy link: ms from Enter to the command's output on screen (20 ms polling)")
print(f"# link: {loss}% UDP loss each way (nftables in the router namespace); delay: {delay}")
print(f"# during loss: mosh datagrams client->server: {sent} sent, {recv} arrived; probes: {up}/1000 up, {down}/1000 down arrived")
print("# condition client n median_ms p90_ms max_ms")
for cond in dict.fromkeys(r[0] for r in rows):
    for client in ("mux", "stock"):
        v = sorted(int(r[3]) for r in rows if r[0] == cond and r[1] == client)
        if not v:
            continue
        med = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) // 2
        p90 = v[min(len(v) - 1, (len(v) * 9 + 9) // 10 - 1)]
        print(f"{cond} {client} {len(v)} {med} {p90} {v[-1]}")
print("# raw: condition client marker ms")
for r in rows:
    print(" ".join(r))
PY
sed 's/^/lossy-timings: /' "$timings" >&2

# The delay held for the whole test: nfdelay (if used) served the queue until told to stop, and
# dropped nothing (no datagram was lost to the emulator rather than to the emulated loss).
e2e_step "delay off"
lab_delay router eth1 off
if [[ $LAB_DELAY_VIA == nfqueue ]]; then
	stats=$(grep 'nfdelay: exit' "$LAB_DIR/nfdelay-eth1.log" | tail -n 1) || stats='(no exit line)'
	[[ $stats == *'reason="signal 15"'* && $stats == *' dropped_over_bound=0 '* &&
		$stats == *' kernel_overruns=0 '* && $stats == *' flushed=0 '* && $stats == *' verdict_errors=0'* ]] ||
		e2e_fail "nfdelay did not run cleanly to the end: $stats"
	if ip netns exec "$LAB_ROUTER_NS" iptables-nft -S FORWARD | grep NFQUEUE >/dev/null; then
		e2e_fail "lab_delay off left the NFQUEUE rule behind"
	fi
fi
[[ -z ${E2E_TIMINGS_OUT:-} ]] || cp "$timings" "$E2E_TIMINGS_OUT"
echo PASS
