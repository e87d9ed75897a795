#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/e2e/lib.sh - common prelude for e2e tests: strict mode, the lab library, small helpers.
# Use:  . "$(dirname "$0")/lib.sh"   then lab_up etc. (see scripts/lab.sh)
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lab.sh
. "${LAB_SH:-$E2E_DIR/../../scripts/lab.sh}"

# e2e_step MSG : log a test step (goes to the test's log).
e2e_step() { printf '\n== %s\n' "$*" >&2; }

# e2e_fail MSG : fail the test with a message.
e2e_fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

# e2e_marker TAG : the text the marker command (e2e_marker_cmd) prints; TAG is [A-Za-z0-9_-].
# The command computes part of it, so the text never appears on screen merely by being typed.
e2e_marker() { printf 'ok-42-%s' "$1"; }

# e2e_marker_cmd TAG : set array E2E_CMD to a remote command (for after `--`) that prints the
# marker and the user name, then keeps an interactive shell.
# shellcheck disable=SC2034 # used by the tests
E2E_CMD=()
e2e_marker_cmd() {
	[[ $1 =~ ^[A-Za-z0-9_-]+$ ]] || e2e_fail "bad marker tag '$1'"
	# shellcheck disable=SC2034
	E2E_CMD=(sh -c "echo ok-\$((40+2))-$1; echo user=\$(id -un); exec bash --norc -i")
}

# e2e_mosh_plain TERM USER CMD... : stock mosh from the client namespace in terminal TERM.
e2e_mosh_plain() {
	local term=$1 user=$2
	shift 2
	lab_term_start "$term" mosh --ssh="$LAB_SSH" "$user@$LAB_SERVER_IP" -- "$@"
}

# e2e_mosh_mux TERM USER CMD... : stock mosh with the mux client and server (lab_install_bins first).
e2e_mosh_mux() {
	local term=$1 user=$2
	shift 2
	lab_term_start "$term" mosh --ssh="$LAB_SSH" --client="$LAB_BIN/mosh-client-mux" \
		--server="$LAB_BIN/mosh-server-mux" "$user@$LAB_SERVER_IP" -- "$@"
}

# e2e_ns_pids NS COMM : pids of processes named COMM (as /proc/PID/comm has it) in namespace NS.
e2e_ns_pids() {
	local pid
	for pid in $(ip netns pids "$1"); do
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) != "$2" ]] || echo "$pid"
	done
}

# e2e_server_pids COMM : pids of processes named COMM in the server namespace.
e2e_server_pids() { e2e_ns_pids "$LAB_SERVER_NS" "$1"; }

# e2e_kill_mosh_servers : end every mosh-server in the server namespace (bounded wait).
e2e_kill_mosh_servers() {
	local pids
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		mapfile -t pids < <(e2e_server_pids mosh-server)
		((${#pids[@]})) || return 0
		kill -9 "${pids[@]}" 2>/dev/null || true
		sleep 0.1
	done
	e2e_fail "mosh-server processes survive: ${pids[*]}"
}

# e2e_moshd_start [ARGS...] : start moshd in the server namespace on UDP 60001 (v4 and v6) with its
# control socket and state file in $LAB_DIR; waits until the socket answers. Sets E2E_MOSHD_SOCK,
# E2E_MOSHD_PID and E2E_MUX_SERVER (the --server command string for mosh). moshd reads the file
# E2E_MOSHD_CONFIG names, if set (else none: built-in defaults).
E2E_MOSHD_PORT=60001
e2e_moshd_start() {
	E2E_MOSHD_SOCK=$LAB_DIR/moshd/control.sock
	E2E_MUX_SERVER="$LAB_BIN/mosh-server-mux --control-socket $E2E_MOSHD_SOCK"
	E2E_MOSHD_PID=$(lab_spawn server moshd env RUST_LOG=${E2E_MOSHD_LOG:-debug} "$LAB_BIN/moshd" \
		--listen "0.0.0.0:$E2E_MOSHD_PORT" --listen "[::]:$E2E_MOSHD_PORT" \
		--control-socket "$E2E_MOSHD_SOCK" --state-file "$LAB_DIR/moshd/state.json" \
		--config "${E2E_MOSHD_CONFIG:-/dev/null}" "$@")
	lab_defer kill "$E2E_MOSHD_PID"
	local i
	for i in $(seq 1 50); do
		"$LAB_BIN/moshd" status --control-socket "$E2E_MOSHD_SOCK" >/dev/null 2>&1 && return 0
		kill -0 "$E2E_MOSHD_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$LAB_DIR/moshd.log" >&2
	e2e_fail "moshd did not start with ${E2E_MOSHD_CONFIG:-no configuration file} (try $i)"
}

# e2e_status_json [USER] : moshd status --json, as root or as USER.
e2e_status_json() {
	if [[ -n ${1:-} ]]; then
		lab_server_as "$1" "$LAB_BIN/moshd" status --json --control-socket "$E2E_MOSHD_SOCK"
	else
		"$LAB_BIN/moshd" status --json --control-socket "$E2E_MOSHD_SOCK"
	fi
}

# e2e_session_count : how many sessions moshd has.
e2e_session_count() { e2e_status_json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["sessions"]))'; }

# e2e_mosh_muxd TERM USER CMD... : like e2e_mosh_mux, registering with the lab's moshd.
e2e_mosh_muxd() {
	local term=$1 user=$2
	shift 2
	lab_term_start "$term" mosh --ssh="$LAB_SSH" --client="$LAB_BIN/mosh-client-mux" \
		--server="$E2E_MUX_SERVER" "$user@$LAB_SERVER_IP" -- "$@"
}

# e2e_show_logs : print moshd's log (call on failure paths).
e2e_show_logs() { tail -n 60 "$LAB_DIR/moshd.log" >&2 2>/dev/null || true; }

# e2e_mosh_stock_in NS TERM USER CMD... : stock mosh-client (no --client) with the mux server,
# registering with the lab's moshd, from client namespace NS.
e2e_mosh_stock_in() {
	local ns=$1 term=$2 user=$3
	shift 3
	lab_term_start_in "$ns" "$term" mosh --ssh="$LAB_SSH" --server="$E2E_MUX_SERVER" \
		"$user@$LAB_SERVER_IP" -- "$@"
}

# e2e_counter NAME : one of moshd's counters (status --json).
e2e_counter() {
	e2e_status_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"].get(sys.argv[1], 0))' "$1"
}

# e2e_decoy SSH_IP NAME : start a decoy session (tools/decoy.py) claiming SSH_IP for 300 s at most;
# its received-datagram count is in $LAB_DIR/NAME.count.
e2e_decoy() {
	local pid
	pid=$(lab_spawn server "$2" python3 "$E2E_DIR/tools/decoy.py" "$E2E_MOSHD_SOCK" "$1" "$LAB_DIR/$2.count" 300)
	lab_defer kill "$pid"
	for _ in $(seq 1 50); do
		grep -q registered "$LAB_DIR/$2.log" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$LAB_DIR/$2.log" >&2
	e2e_fail "decoy $2 did not register"
}

# e2e_mux_lab [MOSHD_ARGS...] : the usual start of a mux test: the lab, the binaries, the server
# firewall admitting only TCP 22 and moshd's port, moshd running; moshd's log shown at exit.
e2e_mux_lab() {
	lab_up
	lab_install_bins
	trap 'e2e_show_logs; lab_down' EXIT
	lab_firewall mux "$E2E_MOSHD_PORT"
	e2e_moshd_start "$@"
}

# ---- Fault-test helpers (test_fault_*.sh) ----------------------------------------------------

# e2e_framed_and_stock : the two kinds of session through moshd, as root from the client
# namespace: f (mosh-client-mux) and k (stock mosh-client); checks each runs what it should and
# that "before-f" / "before-k" typed into them appear.
e2e_framed_and_stock() {
	e2e_step "a framed session (f) and a stock-client session (k) through moshd"
	e2e_marker_cmd "$LAB_ID-f"
	e2e_mosh_muxd f root "${E2E_CMD[@]}"
	lab_term_wait f "$(e2e_marker "$LAB_ID-f")" 30 || e2e_fail "session f did not start"
	e2e_marker_cmd "$LAB_ID-k"
	e2e_mosh_stock_in "$LAB_CLIENT_NS" k root "${E2E_CMD[@]}"
	lab_term_wait k "$(e2e_marker "$LAB_ID-k")" 30 || e2e_fail "session k did not start"
	e2e_find_pid "$(e2e_term_pid f)" mosh-client-mux >/dev/null
	[[ $(cat "/proc/$(e2e_term_pid k)/comm") == mosh-client ]] || e2e_fail "session k does not run stock mosh-client"
	local t
	for t in f k; do e2e_type_marker "$t" "before-$t"; done
	for t in f k; do e2e_wait_marker "$t" "before-$t" 15 >/dev/null; done
}

# e2e_moshd_stop SIGNAL : stop moshd with SIGNAL (KILL, TERM, ...) and wait (bounded, 10 s)
# until it is gone.
e2e_moshd_stop() {
	local sig=$1 i old=$E2E_MOSHD_PID
	kill -"$sig" "$old" 2>/dev/null || e2e_fail "moshd $old is not running"
	for i in $(seq 1 100); do
		[[ -n $(_lab_live "$old") ]] || break
		sleep 0.1
	done
	[[ -z $(_lab_live "$old") ]] || e2e_fail "moshd $old did not stop on SIG$sig"
	echo "--- test: moshd $old stopped by SIG$sig ---" >>"$LAB_DIR/moshd.log"
}

# e2e_moshd_start_again [BIN [ARGS...]] : start BIN (default $LAB_BIN/moshd; an upgrade passes a
# copy at a new path) with the listen addresses, control socket and state file of
# e2e_moshd_start, plus ARGS; waits until its control socket answers. Updates E2E_MOSHD_PID; the
# log goes on in $LAB_DIR/moshd.log.
e2e_moshd_start_again() {
	local bin=${1:-$LAB_BIN/moshd} i
	shift $(($# >= 1 ? 1 : 0))
	echo "--- test: starting $bin ---" >>"$LAB_DIR/moshd.log"
	E2E_MOSHD_PID=$(lab_spawn server moshd env RUST_LOG=debug "$bin" \
		--listen "0.0.0.0:$E2E_MOSHD_PORT" --listen "[::]:$E2E_MOSHD_PORT" \
		--control-socket "$E2E_MOSHD_SOCK" --state-file "$LAB_DIR/moshd/state.json" \
		--config /dev/null "$@")
	# (no lab_defer kill: lab_down ends everything in the server namespace, and a deferred kill
	# of a pid that may have exited by then could hit a stranger that reused it)
	for i in $(seq 1 50); do
		"$LAB_BIN/moshd" status --control-socket "$E2E_MOSHD_SOCK" >/dev/null 2>&1 && return 0
		kill -0 "$E2E_MOSHD_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 30 "$LAB_DIR/moshd.log" >&2
	e2e_fail "moshd did not start again from $bin"
}

# e2e_moshd_restart SIGNAL [BIN [ARGS...]] : e2e_moshd_stop SIGNAL, then e2e_moshd_start_again.
e2e_moshd_restart() {
	local sig=$1
	shift
	e2e_moshd_stop "$sig"
	e2e_moshd_start_again "$@"
}

# e2e_type_marker TERM TAG : type a command whose output, "TAG-42" on a line of its own, only the
# remote shell can produce (the typed line reads "echo TAG-$((6*7))"). TAG is [A-Za-z0-9_-].
e2e_type_marker() {
	[[ $2 =~ ^[A-Za-z0-9_-]+$ ]] || e2e_fail "bad marker tag '$2'"
	# shellcheck disable=SC2016 # expanded by the remote shell
	lab_term_type "$1" "echo $2-\$((6*7))"
}

# e2e_wait_marker TERM TAG TIMEOUT : wait until the output line of e2e_type_marker TERM TAG is on
# the screen; prints how long it took in ms. Polls every 20 ms (finer than lab_term_wait); on
# timeout prints the screen to stderr and returns 1.
e2e_wait_marker() {
	local term=$1 tag=$2 t0 now deadline
	t0=$(date +%s%N)
	deadline=$((t0 + $3 * 1000000000))
	while :; do
		if lab_term_screen "$term" 2>/dev/null | grep -Ex -- "$tag-42" >/dev/null; then
			now=$(date +%s%N)
			echo $(((now - t0) / 1000000))
			return 0
		fi
		now=$(date +%s%N)
		((now < deadline)) || break
		sleep 0.02
	done
	{
		echo "timeout after ${3}s waiting for '$tag-42' on terminal $term; screen:"
		lab_term_screen "$term" 2>&1 | sed 's/^/  | /'
	} >&2
	return 1
}

# e2e_assert_markers TERM TAG... : each TAG's output line (TAG-42) is on TERM's screen exactly
# once, and in the order given: nothing typed was lost, repeated or reordered.
e2e_assert_markers() {
	local term=$1 screen got want
	shift
	screen=$(lab_term_screen "$term")
	local re
	re=$(printf '%s-42|' "$@")
	got=$(grep -Ex -- "(${re%|})" <<<"$screen" | tr '\n' ' ') || true
	want=$(printf '%s-42 ' "$@")
	[[ $got == "$want" ]] || {
		printf '%s\n' "$screen" | sed 's/^/  | /' >&2
		e2e_fail "terminal $term: expected the outputs '$want' in this order, once each; got '$got'"
	}
}

# e2e_term_pid TERM : the pid of the terminal's process (what the pane runs).
e2e_term_pid() { _lab_tmux display-message -p -t "=$1:" '#{pane_pid}'; }

# e2e_pid_state PID : the process state letter (R, S, T, Z...) from /proc/PID/stat, or "gone".
e2e_pid_state() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo gone; return 0; }
	stat=${stat##*) }
	echo "${stat%% *}"
}

# e2e_find_pid PARENT COMM : the pid of PARENT's child (or PARENT itself) named COMM; bounded
# wait of 10 s for it to appear; fails when there is none or more than one.
e2e_find_pid() {
	local parent=$1 comm=$2 pids=() i
	for i in $(seq 1 50); do
		pids=()
		[[ $(cat "/proc/$parent/comm" 2>/dev/null) != "$comm" ]] || pids+=("$parent")
		mapfile -t -O "${#pids[@]}" pids < <(pgrep -P "$parent" -x "$comm" || true)
		((${#pids[@]} == 0)) || break
		sleep 0.2
	done
	((${#pids[@]} == 1)) || e2e_fail "expected one $comm under pid $parent, found: ${pids[*]:-none}"
	echo "${pids[0]}"
}

# ---- Probe-cap helpers (test_security_probecaps.sh) -----------------------------------------

# e2e_moshd_start_config FILE [ARGS...] : like e2e_moshd_start, but moshd reads its settings from
# FILE (which must exist), so that e2e_moshd_reload can change its limits while it runs.
e2e_moshd_start_config() {
	E2E_MOSHD_CONFIG=$1
	shift
	e2e_moshd_start "$@"
}

# e2e_mux_lab_config [MOSHD_ARGS...] : e2e_mux_lab, with moshd reading its settings from
# $LAB_DIR/moshd.toml (E2E_MOSHD_CONFIG), written empty (built-in defaults) at start: write limits
# there and call e2e_moshd_reload to apply them.
e2e_mux_lab_config() {
	lab_up
	lab_install_bins
	trap 'e2e_show_logs; lab_down' EXIT
	lab_firewall mux "$E2E_MOSHD_PORT"
	: >"$LAB_DIR/moshd.toml"
	e2e_moshd_start_config "$LAB_DIR/moshd.toml" "$@"
}

# e2e_moshd_reload : SIGHUP moshd (started by e2e_moshd_start_config) and wait (bounded, 5 s) until
# its log says whether it reloaded the configuration; fails if moshd refused the file.
e2e_moshd_reload() {
	local re='SIGHUP: configuration (not )?reloaded' before n=0 i
	before=$(grep -cE "$re" "$LAB_DIR/moshd.log" || true)
	kill -HUP "$E2E_MOSHD_PID"
	for i in $(seq 1 50); do
		n=$(grep -cE "$re" "$LAB_DIR/moshd.log" || true)
		((n > before)) && break
		sleep 0.1
	done
	((n > before)) || e2e_fail "moshd did not reload its configuration within 5 s"
	if grep -E "$re" "$LAB_DIR/moshd.log" | tail -n 1 | grep -q 'not reloaded'; then
		grep 'SIGHUP' "$LAB_DIR/moshd.log" | tail -n 3 >&2
		e2e_fail "moshd refused its configuration file $E2E_MOSHD_CONFIG"
	fi
}

# e2e_moshd_limits : the limits moshd runs with, as its own log reports them, one JSON object
# {key: value} built from every "SIGHUP: KEY: OLD -> NEW" line since it started, in order (the
# first OLD of a key is its value at start). Rates are {"per_second": X, "burst": Y}; only keys a
# reload has changed at least once are present.
e2e_moshd_limits() {
	python3 - "$LAB_DIR/moshd.log" <<'PY'
import json, re, sys
line = re.compile(r"SIGHUP: ([a-z_]+): (.+) -> (.+)$")
rate = re.compile(r"\{ per_second = ([0-9.e+-]+), burst = ([0-9.e+-]+) \}$")
def value(text):
    t = text.strip()
    m = rate.match(t)
    if m:
        return {"per_second": float(m.group(1)), "burst": float(m.group(2))}
    if t in ("true", "false"):
        return t == "true"
    return float(t) if "." in t else int(t)
limits = {}
for text in open(sys.argv[1], errors="replace"):
    m = line.search(text.rstrip("\n"))
    if m and m.group(1) != "log":
        limits.setdefault(m.group(1), value(m.group(2)))
        limits[m.group(1)] = value(m.group(3))
print(json.dumps(limits))
PY
}

# e2e_counters : all of moshd's counters at one moment, as one JSON object.
e2e_counters() { e2e_status_json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["counters"]))'; }

# e2e_decoys NAME SSH_IP... : one process holding a decoy session per SSH_IP given (tools/decoys.py;
# repeat an IP for several), for 600 s at most; what each received is in $LAB_DIR/NAME.json (a
# list, in the order given).
e2e_decoys() {
	local name=$1 pid
	shift
	pid=$(lab_spawn server "$name" python3 "$E2E_DIR/tools/decoys.py" "$E2E_MOSHD_SOCK" "$LAB_DIR/$name.json" 600 "$@")
	lab_defer kill "$pid"
	for _ in $(seq 1 100); do
		grep -q 'registered' "$LAB_DIR/$name.log" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$LAB_DIR/$name.log" >&2
	e2e_fail "decoys $name did not register"
}

# e2e_marked_count_start DSCP : count the UDP datagrams to moshd's port that reach the server host
# from outside marked with DSCP (an nft name: cs1 is what rawflood.py --tos 0x20 sends), before
# any firewall rule. Read the count with e2e_marked_arrivals.
e2e_marked_count_start() {
	printf 'table inet %s_marked {\n counter arrived {}\n chain in {\n  type filter hook input priority -10;\n  iif != lo ip dscp %s udp dport %s counter name arrived\n }\n}\n' \
		"$LAB_ID" "$1" "$E2E_MOSHD_PORT" | ip netns exec "$LAB_SERVER_NS" nft -f -
}

# e2e_marked_arrivals : datagrams counted since e2e_marked_count_start.
e2e_marked_arrivals() {
	ip netns exec "$LAB_SERVER_NS" nft list counter inet "${LAB_ID}_marked" arrived |
		sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

# e2e_udp_rcvbuf_errors : UDP datagrams the server host's kernel has dropped for want of socket
# buffer (/proc/net/snmp in the server namespace).
e2e_udp_rcvbuf_errors() {
	ip netns exec "$LAB_SERVER_NS" awk '/^Udp:/ { if (h) print $6; h = 1 }' /proc/net/snmp
}
