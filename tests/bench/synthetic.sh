#!/usr/bin/env bash
# tests/bench/synthetic.sh - the synthetic half of scripts/bench: latency, throughput and scale of
# moshd against the direct path, the minimal forwarder (minfwd) and kernel DNAT, in a network
# namespace of its own (loopback only), with moshd or the forwarder pinned to one CPU and the
# load (loadgen, udpecho, udprtt, the client relay) on the other. Also what a stock mosh-client
# (raw datagrams, no mux header; issue 7) costs through moshd once its source is mapped, against a
# framed one, and what mapping a new source (the probe) costs.
#
# Run by scripts/bench, which sets:
#   BENCH_MODE  quick | full
#   BENCH_OUT   directory for the results (one JSON file per measurement, commands.jsonl)
#   BENCH_BIN   directory with moshd, mosh-client-mux and the bench binaries
# Every process it starts is bounded in time (--seconds) and killed on exit; the namespace is
# deleted on every exit path. Synthetic sessions register under synthetic uids (70000 and up,
# no passwd entries) because moshd budgets control connections per user; nothing is created
# outside the namespace but the work directory, which is removed.
set -euo pipefail

: "${BENCH_MODE:?}" "${BENCH_OUT:?}" "${BENCH_BIN:?}"
B=$BENCH_BIN
R=$BENCH_OUT
mkdir -p "$R"

case $BENCH_MODE in
quick)
	RTT_COUNT=2000 TPUT_SECS=1.5 TPUT_WARMUP=0.5 SCALE_N=1000 SCALE_ACTIVE=100
	SCALE_SECS=3 SCALE_WARMUP=3 STALL_COUNT=2000 PROBE_N=300
	;;
full)
	RTT_COUNT=20000 TPUT_SECS=10 TPUT_WARMUP=1 SCALE_N=10000 SCALE_ACTIVE=1000
	SCALE_SECS=15 SCALE_WARMUP=8 STALL_COUNT=20000 PROBE_N=1000
	;;
*) echo "synthetic.sh: BENCH_MODE must be quick or full" >&2; exit 2 ;;
esac
WINDOW=128
PROBE_WARMUP=20 # unrecorded new sources first: they fill the probed sessions' candidate lists
PROBE_FANOUT=8  # sessions sharing one sshd client address in the fan-out probe run, one answering
# Stock-client source addresses (each the sshd client address of its sessions), all on loopback:
STOCK_RTT_IP=127.0.0.2  # udprtt's moshd-stock path
STOCK_TPUT_IP=127.0.0.5 # loadgen --stock
PROBE1_IP=127.0.0.3     # probertt, one session
PROBE8_IP=127.0.0.4     # probertt, PROBE_FANOUT sessions
PER_UID=100 # sessions per synthetic uid: registrations run in parallel across uids
SEED=$((RANDOM * 32768 + RANDOM))

# CPU placement: the relay under test on FWD_CPU, everything that makes load on LOAD_CPU.
if (($(nproc) >= 2)); then FWD_CPU=0 LOAD_CPU=1; else FWD_CPU=0 LOAD_CPU=0; fi
CLK_TCK=$(getconf CLK_TCK)

NS="mbench$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
W=$(mktemp -d "/tmp/$NS.XXXXXX")
chmod 0755 "$W" # synthetic uids must reach the control socket inside
PIDS=()

cleanup() {
	local pid
	set +e
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	if [[ -e /run/netns/$NS ]]; then
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			mapfile -t left < <(ip netns pids "$NS" 2>/dev/null)
			((${#left[@]})) || break
			kill -9 "${left[@]}" 2>/dev/null
			sleep 0.1
		done
		ip netns del "$NS"
	fi
	rm -rf -- "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf 'bench: %s\n' "$*" >&2; }

# in_ns CPU CMD... : run CMD in the bench namespace pinned to CPU.
in_ns() {
	local cpu=$1
	shift
	ip netns exec "$NS" taskset -c "$cpu" "$@"
}

# bg_ns CPU CMD... : like in_ns, in the background; BG_PID is CMD's own pid (ip netns exec and
# taskset exec it), so it can be signalled and measured.
bg_ns() {
	local cpu=$1
	shift
	ip netns exec "$NS" taskset -c "$cpu" "$@" &
	BG_PID=$!
	PIDS+=("$BG_PID")
}

# stop PID : SIGTERM, then wait for it to be gone (bounded), then SIGKILL.
stop() {
	local i
	kill "$1" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# record NAME CMD... : note the exact command that produced result NAME.
record() {
	local name=$1
	shift
	python3 -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "cmd": " ".join(sys.argv[2:])}))' \
		"$name" "$@" >>"$R/commands.jsonl"
}

# run_json NAME CMD... : run CMD (in the namespace, on LOAD_CPU), its stdout is result NAME.
run_json() {
	local name=$1
	shift
	record "$name" "$@"
	in_ns "$LOAD_CPU" "$@" >"$R/$name.json"
}

# cpu_s PID : CPU seconds (user + system) the process has used.
cpu_s() { awk -v t="$CLK_TCK" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
now_s() { date +%s.%N; }

# with_cpu NAME PID CMD... : run_json, and also record how much CPU PID used meanwhile
# (as a fraction of one core over the command's wall time) in NAME.cpu.json.
with_cpu() {
	local name=$1 pid=$2 c0 c1 t0 t1
	shift 2
	c0=$(cpu_s "$pid")
	t0=$(now_s)
	run_json "$name" "$@"
	c1=$(cpu_s "$pid")
	t1=$(now_s)
	python3 -c 'import json,sys; c0,c1,t0,t1=map(float,sys.argv[1:]); print(json.dumps({"cpu_s": c1-c0, "wall_s": t1-t0, "core_fraction": (c1-c0)/(t1-t0)}))' \
		"$c0" "$c1" "$t0" "$t1" >"$R/$name.cpu.json"
}

# wait_lines FILE N SECONDS : wait until FILE has N lines (udpecho's ready lines).
wait_lines() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		[[ $(wc -l <"$1" 2>/dev/null || echo 0) -ge $2 ]] && return 0
		sleep 0.05
	done
	log "timeout waiting for $2 lines in $1"
	return 1
}

# start_moshd NAME [ARGS...] : moshd on 127.0.0.1:60001 pinned to FWD_CPU, with ARGS too; sets
# MOSHD_PID, MOSHD_SOCK.
start_moshd() {
	local name=$1
	shift
	mkdir -p "$W/$name"
	chmod 0755 "$W/$name"
	MOSHD_SOCK=$W/$name/control.sock
	local cmd=("$B/moshd" --listen 127.0.0.1:60001 --control-socket "$MOSHD_SOCK"
		--state-file "$W/$name/state.json" --max-sessions 20000 --max-sessions-per-user 20000 "$@")
	record "moshd-$name" RUST_LOG=warn taskset -c "$FWD_CPU" "${cmd[@]}"
	RUST_LOG=warn bg_ns "$FWD_CPU" "${cmd[@]}" 2>"$R/moshd-$name.log"
	MOSHD_PID=$BG_PID
	for _ in $(seq 1 100); do
		[[ -S $MOSHD_SOCK ]] && return 0
		sleep 0.05
	done
	log "moshd did not start"
	cat "$R/moshd-$name.log" >&2
	return 1
}

# counters FILE : moshd's counters (drops by reason, probes sent) as JSON, from `moshd status`
# (tried a few times: moshd refuses a user's control connections past a few a second).
counters() {
	local i
	for ((i = 0; i < 10; i++)); do
		if in_ns "$LOAD_CPU" "$B/moshd" status --json --control-socket "$MOSHD_SOCK" >"$W/status.json" 2>/dev/null; then
			python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["counters"]))' \
				"$W/status.json" >"$1"
			return 0
		fi
		sleep 0.3
	done
	log "moshd status did not answer"
	return 1
}

# echo_sessions FIRST COUNT UID FILE [ARGS...] : udpecho registering sessions FIRST.. of SEED as
# UID (on LOAD_CPU), ready line appended to FILE.
echo_sessions() {
	local first=$1 count=$2 uid=$3 file=$4
	shift 4
	bg_ns "$LOAD_CPU" "$B/udpecho" --uid "$uid" --control "$MOSHD_SOCK" --seed "$SEED" \
		--first "$first" --count "$count" --seconds 1200 "$@" >>"$file"
}

log "namespace $NS, work dir $W, mode $BENCH_MODE, moshd/forwarders on CPU $FWD_CPU, load on CPU $LOAD_CPU"
ip netns add "$NS"
ip -n "$NS" link set lo up
python3 -c 'import json,sys; print(json.dumps({"fwd_cpu": int(sys.argv[1]), "load_cpu": int(sys.argv[2]), "seed": int(sys.argv[3]), "window": int(sys.argv[4]), "mode": sys.argv[5], "rtt_count": int(sys.argv[6]), "tput_secs": float(sys.argv[7]), "scale_n": int(sys.argv[8]), "scale_active": int(sys.argv[9]), "scale_secs": float(sys.argv[10]), "scale_warmup": float(sys.argv[11]), "probe_n": int(sys.argv[12]), "probe_warmup": int(sys.argv[13]), "probe_fanout": int(sys.argv[14]), "stock_rtt_ip": sys.argv[15], "stock_tput_ip": sys.argv[16], "probe1_ip": sys.argv[17], "probe8_ip": sys.argv[18]}))' \
	"$FWD_CPU" "$LOAD_CPU" "$SEED" "$WINDOW" "$BENCH_MODE" "$RTT_COUNT" "$TPUT_SECS" "$SCALE_N" "$SCALE_ACTIVE" "$SCALE_SECS" "$SCALE_WARMUP" \
	"$PROBE_N" "$PROBE_WARMUP" "$PROBE_FANOUT" "$STOCK_RTT_IP" "$STOCK_TPUT_IP" "$PROBE1_IP" "$PROBE8_IP" >"$R/params.json"

# ---------------------------------------------------------------- the paths under test
# direct     loadgen/udprtt -> udpecho 127.0.0.1:7000
# dnat       -> 127.0.0.1:7002, nftables DNAT (output hook) to :7000: the kernel, no userspace hop
# minfwd     -> minfwd 127.0.0.1:7001 (blocking) -> :7000
# minfwd-tokio -> minfwd 127.0.0.1:7003 (tokio current_thread) -> :7000
# moshd      -> moshd 127.0.0.1:60001, framed -> a registered udpecho socket (a session of its own)
# moshd-stock  from STOCK_RTT_IP, unframed -> moshd (the source mapped to a session of its own,
#            registered with STOCK_RTT_IP as its sshd client address) -> another udpecho socket
# relay      udprtt as mosh-client -> mosh-client-mux -> moshd -> a registered udpecho socket
start_moshd paths
KEY=$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(16)).decode()[:22])')
KEY_SID=$(python3 -c 'import base64,hashlib,hmac,sys; k=base64.b64decode(sys.argv[1]+"=="); print(hmac.new(k, b"mosh-mux sid v1", hashlib.sha256).digest()[:8].hex())' "$KEY")
# echo_session NAME SID [ARGS...] : a udpecho (as root, on LOAD_CPU) holding session SID (ARGS:
# --bind, --ssh-client); its command is recorded as udpecho-NAME. Waits until moshd registered it;
# the udpecho's pid is appended to ECHO_PIDS.
ECHO_PIDS=()
echo_session() {
	local name=$1 sid=$2 got
	shift 2
	local cmd=("$B/udpecho" --control "$MOSHD_SOCK" --sid "$sid" --seconds 1200 "$@")
	record "udpecho-$name" taskset -c "$LOAD_CPU" "${cmd[@]}"
	bg_ns "$LOAD_CPU" "${cmd[@]}" >"$W/echo-$name.json"
	ECHO_PIDS+=("$BG_PID")
	wait_lines "$W/echo-$name.json" 1 30
	got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["registered"][0][0])' "$W/echo-$name.json")
	[[ $got == "$sid" ]] || { log "udpecho-$name registered $got, not $sid"; return 1; }
}
random_sid() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
# For the latency probes, one udpecho holds the plain echo socket and the session of MOSH_KEY's
# sid (the relay path); the throughput runs echo inside loadgen (127.0.0.1:7100, and their own
# sessions).
echo_session paths "$KEY_SID" --bind 127.0.0.1:7000
# The stock path's session: its own sid and echo socket (a framed path on the same session would
# move mosh-server's return path back and forth), registered with the stock source's IP as its
# sshd client address, which is how moshd finds it when the first raw datagram comes in.
STOCK_SID=$(random_sid)
echo_session stock "$STOCK_SID" --ssh-client "$STOCK_RTT_IP"
# The framed moshd path's session: its own sid and echo socket too, apart from the relay path's
# (MOSH_KEY's): two clients on one session would move its return path back and forth, which no
# real session does.
FRAMED_SID=$(random_sid)
echo_session framed "$FRAMED_SID"
FWD_PIDS=()
for spec in "7001 blocking 7000" "7003 tokio 7000" "7011 blocking 7100" "7013 tokio 7100"; do
	read -r port mode to <<<"$spec"
	record "minfwd-$port" taskset -c "$FWD_CPU" "$B/minfwd" --listen "127.0.0.1:$port" --to "127.0.0.1:$to" --mode "$mode" --seconds 1200
	bg_ns "$FWD_CPU" "$B/minfwd" --listen "127.0.0.1:$port" --to "127.0.0.1:$to" --mode "$mode" --seconds 1200 2>/dev/null
	FWD_PIDS+=("$BG_PID")
done
MINFWD_PID=${FWD_PIDS[2]} MINFWD_TOKIO_PID=${FWD_PIDS[3]}
record dnat-rule "nft: table ip mmxbench { chain out { type nat hook output priority -100; ip daddr 127.0.0.1 udp dport 7002 dnat to 127.0.0.1:7000; ip daddr 127.0.0.1 udp dport 7012 dnat to 127.0.0.1:7100 } }"
ip netns exec "$NS" nft -f - <<'EOF'
table ip mmxbench {
  chain out {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.1 udp dport 7002 dnat to 127.0.0.1:7000
    ip daddr 127.0.0.1 udp dport 7012 dnat to 127.0.0.1:7100
  }
}
EOF
sleep 0.3
# The sid of synthetic session 0 (what loadgen sends for --seed SEED --first 0).
# pin CPU PID... : move running processes (all their threads) to CPU.
pin() {
	local cpu=$1 pid
	shift
	for pid in "$@"; do taskset -a -p -c "$cpu" "$pid" >/dev/null; done
}

# latency_set PLACEMENT : every path's ping-pong, interleaved in one udprtt, which runs as the
# "mosh-client" of mosh-client-mux (the relay path: the relay frames with MOSH_KEY's sid) and
# probes the other paths directly. The stock path's first datagram is moshd's probe (in the
# unrecorded warm-up); from then on its source is mapped. Result rtt-PLACEMENT.
latency_set() {
	local paths="direct=127.0.0.1:7000 dnat=127.0.0.1:7002 minfwd=127.0.0.1:7001 minfwd-tokio=127.0.0.1:7003"
	paths+=" moshd=127.0.0.1:60001/$FRAMED_SID moshd-stock=127.0.0.1:60001@$STOCK_RTT_IP"
	record "rtt-$1" env MOSH_KEY=KEY UDPRTT_OUT="rtt-$1.json" UDPRTT_COUNT="$RTT_COUNT" UDPRTT_WARMUP=500 \
		UDPRTT_PATHS="'$paths'" taskset -c "$LOAD_CPU" "$B/mosh-client-mux" --mosh-client "$B/udprtt" 127.0.0.1 060001
	in_ns "$LOAD_CPU" env MOSH_KEY="$KEY" UDPRTT_OUT="$R/rtt-$1.json" UDPRTT_COUNT="$RTT_COUNT" \
		UDPRTT_WARMUP=500 UDPRTT_PATHS="$paths" timeout 600 "$B/mosh-client-mux" --mosh-client "$B/udprtt" 127.0.0.1 060001
}

log "latency: ping-pong, sizes 100 500 1250, $RTT_COUNT round trips each per path, paths interleaved"
log "  cross-core: moshd and the forwarders on CPU $FWD_CPU, the rest on CPU $LOAD_CPU"
latency_set cross
log "  same-core: everything on CPU $LOAD_CPU"
pin "$LOAD_CPU" "$MOSHD_PID" "${FWD_PIDS[@]}"
latency_set same
pin "$FWD_CPU" "$MOSHD_PID" "${FWD_PIDS[@]}"

log "throughput: closed loop, $WINDOW in flight, ${TPUT_SECS}s per path"
# CPU use is that of the process under test (for direct and dnat: moshd, idle, as a control).
lg=("$B/loadgen" --window "$WINDOW" --seconds "$TPUT_SECS" --warmup "$TPUT_WARMUP" --client-sockets 1)
with_cpu tput-direct "$MOSHD_PID" "${lg[@]}" --target 127.0.0.1:7100 --echo-bind 127.0.0.1:7100
with_cpu tput-dnat "$MOSHD_PID" "${lg[@]}" --target 127.0.0.1:7012 --echo-bind 127.0.0.1:7100
with_cpu tput-minfwd "$MINFWD_PID" "${lg[@]}" --target 127.0.0.1:7011 --echo-bind 127.0.0.1:7100
with_cpu tput-minfwd-tokio "$MINFWD_TOKIO_PID" "${lg[@]}" --target 127.0.0.1:7013 --echo-bind 127.0.0.1:7100
with_cpu tput-moshd "$MOSHD_PID" "${lg[@]}" --target 127.0.0.1:60001 --seed "$SEED" --first 100 --sessions 1 \
	--echo-control "$MOSHD_SOCK"
# The same closed loop from a stock client: unframed from STOCK_TPUT_IP, its session registered
# with that sshd client address; loadgen has moshd map the source (one probe) before it starts.
with_cpu tput-moshd-stock "$MOSHD_PID" "${lg[@]}" --target 127.0.0.1:60001 --seed "$SEED" --first 120 --sessions 1 \
	--echo-control "$MOSHD_SOCK" --stock --bind "$STOCK_TPUT_IP"
with_cpu tput-moshd-10 "$MOSHD_PID" "${lg[@]}" --target 127.0.0.1:60001 --seed "$SEED" --first 110 --sessions 10 \
	--echo-control "$MOSHD_SOCK"
counters "$R/paths-counters.json"
for pid in "$MOSHD_PID" "${FWD_PIDS[@]}" "${ECHO_PIDS[@]}"; do stop "$pid"; done
ip netns exec "$NS" nft delete table ip mmxbench

# ---------------------------------------------------------------- probe cost (issue 7)
# A fresh moshd whose configuration widens the rates that cap probing and new candidates, so
# that one new source after another, as fast as they go, are all probed (the defaults would
# drop most of them: that is their purpose). max_candidates and probe_fanout keep their defaults.
log "probe cost: $PROBE_N new stock-client sources one after another, fan-out 1 and $PROBE_FANOUT, both placements"
cat >"$R/probe-moshd.toml" <<'EOF'
[limits]
session_candidate_rate = { per_second = 1000000, burst = 1000000 }
global_candidate_rate = { per_second = 1000000, burst = 1000000 }
probe_source_rate = { per_second = 1000000, burst = 1000000 }
probe_global_rate = { per_second = 1000000, burst = 1000000 }
EOF
in_ns "$LOAD_CPU" "$B/moshd" check-config "$R/probe-moshd.toml" >&2
start_moshd probe --config "$R/probe-moshd.toml"
# PROBE1_IP: one session, answering. PROBE8_IP: PROBE_FANOUT sessions, one answering, the others
# silent (their mosh-server would not authenticate another client's datagram).
pe=("$B/udpecho" --control "$MOSHD_SOCK" --seed "$SEED" --seconds 1200)
record probe-echo "taskset -c $LOAD_CPU ${pe[*]} --first 500 --count 1 --ssh-client $PROBE1_IP;" \
	"taskset -c $LOAD_CPU ${pe[*]} --first 510 --count 1 --ssh-client $PROBE8_IP;" \
	"taskset -c $LOAD_CPU ${pe[*]} --first 511 --count $((PROBE_FANOUT - 1)) --ssh-client $PROBE8_IP --silent"
PROBE_PIDS=()
bg_ns "$LOAD_CPU" "${pe[@]}" --first 500 --count 1 --ssh-client "$PROBE1_IP" >>"$W/echo-probe.json"
PROBE_PIDS+=("$BG_PID")
bg_ns "$LOAD_CPU" "${pe[@]}" --first 510 --count 1 --ssh-client "$PROBE8_IP" >>"$W/echo-probe.json"
PROBE_PIDS+=("$BG_PID")
bg_ns "$LOAD_CPU" "${pe[@]}" --first 511 --count $((PROBE_FANOUT - 1)) --ssh-client "$PROBE8_IP" --silent \
	>>"$W/echo-probe.json"
PROBE_PIDS+=("$BG_PID")
wait_lines "$W/echo-probe.json" 3 30
python3 -c 'import json,sys; n=sum(json.loads(l)["registered_count"] for l in open(sys.argv[1])); sys.exit(n != int(sys.argv[2]))' \
	"$W/echo-probe.json" $((PROBE_FANOUT + 1)) || { log "probe sessions not all registered"; exit 1; }
# probe_run NAME IP BASE_PORT : PROBE_N new sources from IP (ports BASE_PORT..), moshd's CPU read
# around each datagram, and moshd's counters before and after (NAME.counters.json).
probe_run() {
	counters "$W/counters-before.json"
	run_json "$1" "$B/probertt" --target 127.0.0.1:60001 --bind "$2" --sources "$PROBE_N" \
		--warmup "$PROBE_WARMUP" --mapped 1 --base-port "$3" --cpu-pid "$MOSHD_PID" --seconds 120 --label "$1"
	counters "$W/counters-after.json"
	python3 - "$W/counters-before.json" "$W/counters-after.json" >"$R/$1.counters.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
print(json.dumps({k: b[k] - a.get(k, 0) for k in b}))
PY
}
probe_run probe-1-cross "$PROBE1_IP" 20000
probe_run probe-8-cross "$PROBE8_IP" 22000
pin "$LOAD_CPU" "$MOSHD_PID"
probe_run probe-1-same "$PROBE1_IP" 24000
probe_run probe-8-same "$PROBE8_IP" 26000
pin "$FWD_CPU" "$MOSHD_PID"
for pid in "$MOSHD_PID" "${PROBE_PIDS[@]}"; do stop "$pid"; done

# ---------------------------------------------------------------- scale
# Session indexes (all of run SEED): 0-9 and 10-19 the 10-session runs; 1000.. the big paced run
# (the first SCALE_ACTIVE active, registered by loadgen itself; the rest idle, registered by
# udpecho processes, PER_UID per synthetic uid); 30000.. the big closed loop's active sessions;
# 31000-31009 the 10-session closed loop at full table; 40000.. the sessions that register during
# the stall probe.
log "scale: a fresh moshd; 10 sessions, then $SCALE_N"
start_moshd scale
sample_mem() { # background: "t rss_kb fds" every 0.25 s until $W/stop-sampling exists (bounded)
	local i
	for ((i = 0; i < 20000; i++)); do
		[[ -e $W/stop-sampling ]] && return 0
		printf '%s %s %s\n' "$(now_s)" "$(rss_kb "$MOSHD_PID")" "$(fd_count "$MOSHD_PID")" >>"$R/scale-mem.txt" || return 0
		sleep 0.25
	done
}
snapshot() { # NAME : moshd's RSS and descriptors now, as JSON
	python3 -c 'import json,sys; print(json.dumps({"rss_kb": int(sys.argv[1]), "fds": int(sys.argv[2])}))' \
		"$(rss_kb "$MOSHD_PID")" "$(fd_count "$MOSHD_PID")" >"$R/$1.json"
}
sleep 0.3
snapshot mem-empty
sample_mem &
PIDS+=($!)
# 10 sessions carry the same total offered load as the big run's active sessions.
per_active=$(python3 -c "print($SCALE_ACTIVE * 50 / 10)")
lgs=("$B/loadgen" --target 127.0.0.1:60001 --seed "$SEED" --echo-control "$MOSHD_SOCK" --echo-uid-base 71000)
with_cpu scale-10-paced "$MOSHD_PID" "${lgs[@]}" --first 0 --sessions 10 --rate "$per_active" \
	--seconds "$SCALE_SECS" --warmup 1
with_cpu scale-10-window "$MOSHD_PID" "${lgs[@]}" --first 10 --sessions 10 --window "$WINDOW" \
	--seconds "$TPUT_SECS" --warmup "$TPUT_WARMUP"
sleep 0.5
snapshot mem-base

IDLE_FIRST=$((1000 + SCALE_ACTIVE))
IDLE_N=$((SCALE_N - SCALE_ACTIVE))
log "scale: registering $IDLE_N idle sessions, $PER_UID per synthetic uid"
t0=$(now_s)
n_echo=0
for ((k = 0; k * PER_UID < IDLE_N; k++)); do
	first=$((IDLE_FIRST + k * PER_UID))
	count=$((IDLE_N - k * PER_UID < PER_UID ? IDLE_N - k * PER_UID : PER_UID))
	echo_sessions "$first" "$count" $((70000 + k)) "$W/echo-scale.json"
	n_echo=$((n_echo + 1))
done
record scale-register "$n_echo x taskset -c $LOAD_CPU $B/udpecho --uid 700NN --control SOCK --seed $SEED --first F --count $PER_UID --seconds 1200"
wait_lines "$W/echo-scale.json" "$n_echo" 1500
t1=$(now_s)
python3 - "$W/echo-scale.json" "$t0" "$t1" "$IDLE_N" >"$R/scale-register.json" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps({
    "sessions": sum(r["registered_count"] for r in rs),
    "refused": sum(r["refused_count"] for r in rs),
    "first_refusal": next((r["first_refusal"] for r in rs if r["first_refusal"]), None),
    "retries": sum(r["register_retries"] for r in rs),
    "wall_s": float(sys.argv[3]) - float(sys.argv[2]),
    "max_one_ms": max(r["register_max_ms"] for r in rs),
    "target": int(sys.argv[4]),
}))
PY
sleep 1
snapshot mem-n-idle

log "scale: $SCALE_N sessions, $SCALE_ACTIVE active at 50/s each way, the rest one heartbeat per 3 s"
with_cpu scale-n-paced "$MOSHD_PID" "${lgs[@]}" --first 1000 --sessions "$SCALE_N" --active "$SCALE_ACTIVE" \
	--client-sockets 1000 --seconds "$SCALE_SECS" --warmup "$SCALE_WARMUP"
sleep 1
# The active sessions ended with that loadgen; the idle ones keep a confirmed candidate each.
snapshot mem-n-heard
with_cpu scale-n-window "$MOSHD_PID" "${lgs[@]}" --first 30000 --sessions "$SCALE_ACTIVE" --client-sockets 1000 \
	--window "$WINDOW" --seconds "$TPUT_SECS" --warmup "$TPUT_WARMUP"
# The same traffic as the 10-session closed loop (10 sessions, 10 client sockets), now with the
# whole table around it: what the table's size alone costs.
with_cpu scale-n-window10 "$MOSHD_PID" "${lgs[@]}" --first 31000 --sessions 10 --window "$WINDOW" \
	--seconds "$TPUT_SECS" --warmup "$TPUT_WARMUP"

log "scale: ping-pong at $SCALE_N sessions, then again while 20 more sessions register"
stall=("$B/udprtt" --sizes 100 --count "$STALL_COUNT" --warmup 200 --gap-us 200 --target 127.0.0.1:60001
	--seed "$SEED" --session "$IDLE_FIRST")
run_json scale-n-rtt "${stall[@]}" --label quiet
record scale-n-rtt-registering "${stall[@]}" --label registering "(while: udpecho --uid 79999 --first 40000 --count 20 registers)"
bg_ns "$LOAD_CPU" "${stall[@]}" --label registering >"$R/scale-n-rtt-registering.json"
probe=$BG_PID
sleep 0.2
echo_sessions 40000 20 79999 "$W/echo-stall.json"
wait "$probe"
wait_lines "$W/echo-stall.json" 1 120
cp "$W/echo-stall.json" "$R/scale-stall-register.json"
touch "$W/stop-sampling"
grep -c 'cannot open a candidate socket' "$R/moshd-scale.log" >"$R/scale-candidate-failures.txt" || true
log "done: synthetic"
