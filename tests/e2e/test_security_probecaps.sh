#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Security: the caps on probing (how moshd maps a stock mosh-client's raw datagrams to a session)
# hold under floods of raw datagrams with spoofed sources, each cap in a phase where it is the
# binding limit, with every datagram accounted for by moshd's counters. Then: what a spoofed
# flood claiming a real client's address does to a NEW stock session from that address (a denial
# of service documented in docs/SECURITY.md), and that the session connects once it stops.
#
# The caps' values are set per phase in moshd's configuration file and applied by SIGHUP; the
# bounds are computed from the values moshd's log says it now runs with. Decoy sessions
# (tools/decoys.py) claim the spoofed addresses as their sshd address, so that the flood's
# datagrams match sessions (a source matching none is dropped before any budget is spent), and
# count what moshd delivers to them. The flood (tools/rawflood.py, from a host that never ran ssh)
# is bounded in count and time, goes only to TEST-NET addresses, and marks its datagrams (DSCP
# CS1) so that the server host counts how many arrived; a phase fails if the kernel dropped any
# for want of socket buffer, since then moshd's counters could not be checked against arrivals.
. "$(dirname "$0")/lib.sh"
# Name the command that failed, if one does outside e2e_fail.
set -o errtrace
trap 'echo "test_security_probecaps.sh: line $LINENO: failed: $BASH_COMMAND (moshd: $(e2e_pid_state "${E2E_MOSHD_PID:-0}"))" >&2' ERR

e2e_mux_lab_config
attacker=$(lab_add_client c9 198.51.100.9)
e2e_marked_count_start cs1
flood_log=$LAB_DIR/floods.log

# py EXPR [JSON...] : print a Python expression's value; the JSON arguments are j[0], j[1], ...
py() {
	python3 -c 'import json, math, sys; j = [json.loads(a) for a in sys.argv[2:]]; print(eval(sys.argv[1]))' "$@"
}

# configure PHASE LIMITS_TOML : write moshd's [limits], reload, and check that moshd's log reports
# every value set; LIMITS (JSON) then holds the limits moshd runs with.
configure() {
	printf '# phase %s\n[limits]\n%s\n' "$1" "$2" >"$E2E_MOSHD_CONFIG"
	e2e_moshd_reload
	LIMITS=$(e2e_moshd_limits)
	python3 - "$E2E_MOSHD_CONFIG" "$LIMITS" <<'PY' || e2e_fail "moshd does not run with the limits of phase $1"
import json, sys, tomllib
want = tomllib.load(open(sys.argv[1], "rb")).get("limits", {})
have = json.loads(sys.argv[2])
for key, v in want.items():
    got = have.get(key)
    v = {"per_second": float(v["per_second"]), "burst": float(v["burst"])} if isinstance(v, dict) else v
    assert got == v, f"{key}: configured {v}, moshd reports {got}"
PY
	echo "phase $1: moshd runs with $LIMITS" >&2
}
# shellcheck disable=SC2016 # a Python expression
lim() { py "j[0]['$1']${2:+['$2']}" "$LIMITS"; }

# snapshot : moshd's counters, the marked arrivals and the kernel's receive-buffer drops, now.
snapshot() { printf '{"c": %s, "arrived": %s, "rcvbuf": %s}' "$(e2e_counters)" "$(e2e_marked_arrivals)" "$(e2e_udp_rcvbuf_errors)"; }
# delta KEY : how much counter KEY grew between snapshots S0 and S1 ("arrived", "rcvbuf" too).
delta() { py "(j[1]['c'].get('$1', 0) - j[0]['c'].get('$1', 0)) if '$1' in j[1]['c'] else j[1]['$1'] - j[0]['$1']" "$S0" "$S1"; }
# flood ARGS... : rawflood.py from the attacker's host at moshd, marked; prints its JSON report.
flood() {
	lab_ns_exec "$attacker" python3 "$E2E_DIR/tools/rawflood.py" --tos 0x20 --json "$@" | tee -a "$flood_log"
}
# settle : let moshd and the decoys finish with what is in flight.
settle() { sleep 0.5; }
# decoys NAME : the decoys' counts (JSON list).
decoys() { cat "$LAB_DIR/$1.json"; }
# assert_zero KEY... : these counters did not move between S0 and S1.
assert_zero() {
	local k n
	for k in "$@"; do
		n=$(delta "$k")
		[[ $n == 0 ]] || e2e_fail "counter $k rose by $n; it should not move in this phase"
	done
}
# assert_arrived SENT : every datagram sent arrived, and the kernel dropped none before moshd.
assert_arrived() {
	local arrived rcvbuf
	arrived=$(delta arrived) rcvbuf=$(delta rcvbuf)
	[[ $rcvbuf == 0 ]] || e2e_fail "the server's kernel dropped $rcvbuf datagrams for want of buffer: moshd's counters cannot be checked"
	[[ $arrived == "$1" ]] || e2e_fail "$1 datagrams sent, $arrived arrived at the server"
}

# The base limits of the cap phases: candidates are plentiful (the flood reuses a few source
# ports per address, fewer than max_candidates), so only the probe caps can bind. Each value
# differs from its default, so that moshd's log names it.
base() { # [MAX_PROBE_SOURCES [GLOBAL_RATE [GLOBAL_BURST]]]
	cat <<EOF
probe_fanout = 3
probe_source_rate = { per_second = 3, burst = 5 }
probe_global_rate = { per_second = ${2:-2000}, burst = ${3:-2000} }
max_probe_sources = ${1:-1000}
session_candidate_rate = { per_second = 4, burst = 16 }
global_candidate_rate = { per_second = 3000, burst = 6000 }
max_candidates = 6
EOF
}
CAND_DROPS=(session_candidate_rate global_candidate_rate unknown_source)

# Decoy sessions, by phase: the source-table phase (16 addresses), the per-source phase (1), the
# fan-out phase (5 sessions claiming one address), the global phase (20 addresses).
d_ips=() c_ips=()
for i in $(seq 120 135); do d_ips+=("198.51.100.$i"); done
for i in $(seq 100 119); do c_ips+=("198.51.100.$i"); done
e2e_decoys dD "${d_ips[@]}"
e2e_decoys dA 198.51.100.20
e2e_decoys dB 198.51.100.21 198.51.100.21 198.51.100.21 198.51.100.21 198.51.100.21
e2e_decoys dC "${c_ips[@]}"

e2e_step "max_probe_sources: 16 spoofed addresses, each matching a session; only the first max_probe_sources are probed"
# Runs first: moshd has probed nothing yet, so its table of probed sources is empty.
configure sources "$(base 6)"
max_src=$(lim max_probe_sources)
S0=$(snapshot)
# 3 datagrams from each address, in turn (one port each): within every per-source budget.
report=$(flood --ports 1 "$LAB_SERVER_IP" "$E2E_MOSHD_PORT" $((3 * ${#d_ips[@]})) 10 "${d_ips[@]}")
settle
S1=$(snapshot)
sent=$(py "j[0]['sent']" "$report")
assert_arrived "$sent"
probes=$(delta probes) full=$(delta probe_sources_full)
echo "sources: sent $sent from ${#d_ips[@]} addresses; probes $probes; probe_sources_full +$full; decoys $(py "[d['received'] for d in j[0]]" "$(decoys dD)")" >&2
# Exactly the first max_probe_sources addresses (in sending order) were probed, each 3 times.
py "[d['received'] for d in j[0]] == [3] * $max_src + [0] * (${#d_ips[@]} - $max_src)" "$(decoys dD)" | grep -qx True ||
	e2e_fail "other than the first $max_src addresses were probed: $(decoys dD)"
[[ $probes == $((3 * max_src)) ]] || e2e_fail "probes rose by $probes, expected $((3 * max_src))"
[[ $full == $((sent - 3 * max_src)) ]] || e2e_fail "probe_sources_full rose by $full, expected $((sent - 3 * max_src))"
assert_zero probe_source_rate probe_global_rate "${CAND_DROPS[@]}"

e2e_step "a full table of probed sources frees itself once the flood stops"
# An address is forgotten once its budget would be full again (burst / rate after its last probe),
# at moshd's next expiry pass (every 10 s). Until then a 7th address is refused.
full_after=$(py "round(j[0]['probe_source_rate']['burst'] / j[0]['probe_source_rate']['per_second'], 2)" "$LIMITS")
t0=$(date +%s%N) freed=
for _ in $(seq 1 40); do
	flood --ports 1 "$LAB_SERVER_IP" "$E2E_MOSHD_PORT" 1 1 "${d_ips[$max_src]}" >/dev/null
	sleep 0.5
	if [[ $(py "j[0][$max_src]['received']" "$(decoys dD)") != 0 ]]; then
		freed=$(py "round(($(date +%s%N) - $t0) / 1e9, 1)")
		break
	fi
done
[[ -n $freed ]] || e2e_fail "address $((max_src + 1)) was still refused 40 tries (about 30 s) after the flood"
echo "sources: a new address was probed again ${freed}s after the flood (entries expire ${full_after}s after their last probe, checked every 10 s)" >&2
py "$freed <= $full_after + 10 + 1.5" | grep -qx True || e2e_fail "the table freed only after ${freed}s"

e2e_step "probe_source_rate: one spoofed address, 4 source ports, 250 datagrams a second for 4 s"
configure per-source "$(base)"
burst=$(lim probe_source_rate burst) rate=$(lim probe_source_rate per_second)
S0=$(snapshot)
report=$(flood --ports 4 --rate 250 "$LAB_SERVER_IP" "$E2E_MOSHD_PORT" 1000 8 198.51.100.20)
settle
S1=$(snapshot)
sent=$(py "j[0]['sent']" "$report") secs=$(py "j[0]['elapsed']" "$report")
assert_arrived "$sent"
probes=$(delta probes) drops=$(delta probe_source_rate) got=$(py "j[0][0]['received']" "$(decoys dA)")
hi=$(py "math.floor($burst + $rate * ($secs + 0.5))") lo=$(py "math.floor($burst + $rate * max($secs - 0.5, 0)) - 1")
echo "per-source: sent $sent in ${secs}s; admitted (probes) $probes, allowed $lo..$hi (burst $burst + $rate/s); probe_source_rate +$drops; decoy received $got from $(py "j[0][0]['candidates']" "$(decoys dA)") candidates" >&2
((probes <= hi)) || e2e_fail "$probes probes from one address, more than its budget $hi"
((probes >= lo)) || e2e_fail "$probes probes from one address, fewer than its budget allows ($lo): no refill?"
[[ $got == "$probes" ]] || e2e_fail "the decoy received $got datagrams, moshd counted $probes probes"
[[ $drops == $((sent - probes)) ]] || e2e_fail "probe_source_rate rose by $drops, expected $((sent - probes))"
[[ $(py "j[0][0]['candidates']" "$(decoys dA)") == 4 ]] || e2e_fail "expected 4 candidates (one per source port): $(decoys dA)"
assert_zero probe_global_rate probe_sources_full "${CAND_DROPS[@]}"

e2e_step "probe_fanout: 5 sessions claim one address; a datagram is offered to probe_fanout of them"
fanout=$(lim probe_fanout)
S0=$(snapshot)
flood --ports 1 "$LAB_SERVER_IP" "$E2E_MOSHD_PORT" 1 5 198.51.100.21 >/dev/null
settle
S1=$(snapshot)
assert_arrived 1
counts=$(py "sorted(d['received'] for d in j[0])" "$(decoys dB)")
echo "fan-out: one datagram reached decoys $counts; probes +$(delta probes)" >&2
[[ $counts == "$(py "[0] * (5 - $fanout) + [1] * $fanout")" ]] || e2e_fail "one datagram reached $counts, expected $fanout decoys once each"
[[ $(delta probes) == "$fanout" ]] || e2e_fail "probes rose by $(delta probes), expected $fanout"
S0=$(snapshot)
report=$(flood --ports 1 --rate 250 "$LAB_SERVER_IP" "$E2E_MOSHD_PORT" 500 5 198.51.100.21)
settle
S1=$(snapshot)
sent=$(py "j[0]['sent']" "$report")
assert_arrived "$sent"
admitted=$((sent - $(delta probe_source_rate))) probes=$(delta probes)
counts=$(py "sorted(d['received'] for d in j[0])" "$(decoys dB)")
echo "fan-out: sent $sent, admitted $admitted (the rest: probe_source_rate); probes +$probes; decoys $counts" >&2
[[ $probes == $((fanout * admitted)) ]] || e2e_fail "probes rose by $probes, expected fan-out $fanout x $admitted admitted"
[[ $counts == "$(py "[0] * (5 - $fanout) + [1 + $admitted] * $fanout")" ]] ||
	e2e_fail "decoys received $counts, expected the same $fanout decoys $((1 + admitted)) each"
assert_zero probe_global_rate probe_sources_full "${CAND_DROPS[@]}"

e2e_step "probe_global_rate: 20 spoofed addresses, each matching a session, 400 datagrams a second for 3 s"
configure global "$(base 1000 4 6)"
gburst=$(lim probe_global_rate burst) grate=$(lim probe_global_rate per_second)
burst=$(lim probe_source_rate burst) rate=$(lim probe_source_rate per_second)
S0=$(snapshot)
report=$(flood --ports 2 --rate 400 "$LAB_SERVER_IP" "$E2E_MOSHD_PORT" 1200 8 "${c_ips[@]}")
settle
S1=$(snapshot)
sent=$(py "j[0]['sent']" "$report") secs=$(py "j[0]['elapsed']" "$report")
assert_arrived "$sent"
probes=$(delta probes) src=$(delta probe_source_rate) glob=$(delta probe_global_rate)
got=$(py "sum(d['received'] for d in j[0])" "$(decoys dC)")
hi=$(py "math.floor($gburst + $grate * ($secs + 0.5))") lo=$(py "math.floor($gburst + $grate * max($secs - 0.5, 0)) - 1")
per_src=$(py "math.floor(${#c_ips[@]} * ($burst + $rate * ($secs + 0.5)))")
echo "global: sent $sent in ${secs}s; admitted (probes) $probes, allowed $lo..$hi (burst $gburst + $grate/s; the per-source caps alone would allow $per_src); probe_source_rate +$src, probe_global_rate +$glob; decoys received $got" >&2
((hi < per_src)) || e2e_fail "the global cap ($hi) does not bind below the per-source caps ($per_src)"
((probes <= hi)) || e2e_fail "$probes probes in all, more than the global budget $hi"
((probes >= lo)) || e2e_fail "$probes probes in all, fewer than the global budget allows ($lo)"
[[ $got == "$probes" ]] || e2e_fail "decoys received $got datagrams, moshd counted $probes probes"
((sent - src <= per_src)) || e2e_fail "$((sent - src)) datagrams passed the per-source caps, more than $per_src"
[[ $glob == $((sent - src - probes)) ]] || e2e_fail "probe_global_rate rose by $glob, expected $((sent - src - probes))"
assert_zero probe_sources_full "${CAND_DROPS[@]}"

e2e_step "the default limits; a stock session (k1) from 198.51.100.2"
configure defaults ""
for k in probe_fanout probe_source_rate probe_global_rate max_probe_sources session_candidate_rate max_candidates; do
	[[ $(py "'$k' in j[0]" "$LIMITS") == True ]] || e2e_fail "moshd's log does not name its $k"
done
e2e_marker_cmd "$LAB_ID-k1"; e2e_mosh_stock_in "$LAB_CLIENT_NS" k1 root "${E2E_CMD[@]}"
lab_term_wait k1 "$(e2e_marker "$LAB_ID-k1")" 30
e2e_type_marker k1 before-k1
e2e_wait_marker k1 before-k1 10 >/dev/null

dos_rate=${E2E_DOS_RATE:-1000} dos_secs=${E2E_DOS_SECONDS:-8}
if ! [[ $dos_rate =~ ^[0-9]+$ && $dos_secs =~ ^[0-9]+$ ]] || ((dos_rate > 20000 || dos_secs > 120)); then
	e2e_fail "E2E_DOS_RATE (at most 20000) and E2E_DOS_SECONDS (at most 120) must be whole numbers"
fi
e2e_step "a spoofed flood claiming 198.51.100.2 (random ports, $dos_rate a second, $dos_secs s); a new stock session (k2) from 198.51.100.2 starts 1 s into it"
# Someone who can send datagrams with the victim's address as source spends that address's probe
# budget (and its sessions' new-candidate budgets) before the victim's own datagrams arrive.
# E2E_DOS_RATE and E2E_DOS_SECONDS change the flood (docs/SECURITY.md reports both).
connected() { lab_term_screen "$1" | grep -- "$(e2e_marker "$LAB_ID-$1")" >/dev/null; }
gave_up() { lab_term_screen "$1" | grep 'mosh did not make a successful connection' >/dev/null; }
ns2s() { py "round(($1) / 1e9, 1)"; }
S0=$(snapshot)
lab_ns_exec "$attacker" python3 "$E2E_DIR/tools/rawflood.py" --tos 0x20 --json --rate "$dos_rate" \
	"$LAB_SERVER_IP" "$E2E_MOSHD_PORT" $((dos_rate * dos_secs)) "$dos_secs" 198.51.100.2 >"$LAB_DIR/flood-dos.json" &
flood_pid=$!
sleep 1
e2e_marker_cmd "$LAB_ID-k2"; e2e_mosh_stock_in "$LAB_CLIENT_NS" k2 root "${E2E_CMD[@]}"
t_k2=$(date +%s%N)
# An established session from the same address is not affected: its source is mapped already.
e2e_type_marker k1 during-k1
k1_ms=$(e2e_wait_marker k1 during-k1 5) || e2e_fail "the established session k1 stalled during the flood"
t_conn='' t_gaveup=''
while kill -0 "$flood_pid" 2>/dev/null; do
	[[ -n $t_conn ]] || ! connected k2 || t_conn=$(date +%s%N)
	[[ -n $t_gaveup ]] || ! gave_up k2 || t_gaveup=$(date +%s%N)
	sleep 0.2
done
wait "$flood_pid" || e2e_fail "the flood failed"
t_end=$(date +%s%N)
S1=$(snapshot)
report=$(cat "$LAB_DIR/flood-dos.json")
# (sed, not grep: a screen mosh-client has just cleared would fail grep and, with it, the test)
screen=$(lab_term_screen k2 | sed -e '/^ *$/d' -e 's/^/  | /' | tail -n 4)
echo "dos: flood $(py "j[0]['sent']" "$report") datagrams in $(py "j[0]['elapsed']" "$report")s from 198.51.100.2; probes +$(delta probes), probe_source_rate +$(delta probe_source_rate), session_candidate_rate +$(delta session_candidate_rate)" >&2
echo "dos: k1 (established) echoed during the flood in ${k1_ms} ms" >&2
if [[ -n $t_conn ]]; then
	echo "dos: k2 connected DURING the flood, $(ns2s "$t_conn - $t_k2")s after it started" >&2
else
	echo "dos: k2 did not connect during the flood ($(ns2s "$t_end - $t_k2")s of trying); its screen at the flood's end:" >&2
	printf '%s\n' "$screen" >&2
	# Once the flood stops, the address's budgets refill at once: mosh-client's next datagram is
	# probed and mapped, unless mosh-client has already given up (about 19 s without contact).
	for _ in $(seq 1 100); do
		if connected k2; then t_conn=$(date +%s%N); break; fi
		if gave_up k2; then t_gaveup=${t_gaveup:-$(date +%s%N)}; break; fi
		sleep 0.2
	done
	if [[ -n $t_conn ]]; then
		echo "dos: k2 connected $(ns2s "$t_conn - $t_end")s after the flood stopped ($(ns2s "$t_conn - $t_k2")s after it started)" >&2
	elif [[ -n $t_gaveup ]]; then
		echo "dos: k2's mosh-client gave up $(ns2s "$t_gaveup - $t_k2")s after it started (mosh: 'did not make a successful connection'); a new session (k3) is started after the flood" >&2
		e2e_marker_cmd "$LAB_ID-k3"; e2e_mosh_stock_in "$LAB_CLIENT_NS" k3 root "${E2E_CMD[@]}"
		t_k3=$(date +%s%N)
		lab_term_wait k3 "$(e2e_marker "$LAB_ID-k3")" 20 || e2e_fail "a new session k3 did not connect after the flood stopped"
		echo "dos: k3 connected $(ns2s "$(date +%s%N) - $t_k3")s after it started" >&2
	else
		e2e_fail "k2 neither connected nor gave up within 20 s after the flood stopped"
	fi
fi
if [[ -n $t_conn ]]; then
	e2e_type_marker k2 after-k2
	e2e_wait_marker k2 after-k2 10 >/dev/null || e2e_fail "k2 does not echo after the flood"
fi
echo PASS
