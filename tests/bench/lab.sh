#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/bench/lab.sh - the real-mosh half of scripts/bench, in the namespace lab (scripts/lab.sh):
# time from starting `mosh` to the first prompt, keystroke-to-echo, and the client relay's memory
# and wake-ups while idle, each for mux mode (mosh-client-mux, moshd, mosh-server-mux) against
# direct mode (stock mosh alone). Terminals are tmux panes read with capture-pane, so the times
# are coarse (see labmeasure.py). mosh runs with --predict=never, so what shows on screen is the
# server's echo, not mosh's local prediction.
#
# Run by scripts/bench with BENCH_MODE, BENCH_OUT, BENCH_BIN (see synthetic.sh). The lab tears
# itself down on every exit path (lab_up's trap).
set -euo pipefail
: "${BENCH_MODE:?}" "${BENCH_OUT:?}" "${BENCH_BIN:?}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lab.sh
. "$here/../../scripts/lab.sh"
measure() { python3 "$here/labmeasure.py" "$@"; }

case $BENCH_MODE in
quick) SETUPS=2 KEYS=15 IDLE=8 ;;
full) SETUPS=6 KEYS=40 IDLE=30 ;;
*) echo "lab.sh: BENCH_MODE must be quick or full" >&2; exit 2 ;;
esac

export MOSH_MUX_BIN=$BENCH_BIN
lab_up
lab_install_bins
lab_firewall mosh # UDP 60000-61000: moshd's 60001, and direct mosh's own ports
sock=$LAB_DIR/moshd/control.sock
moshd_pid=$(lab_spawn server moshd env RUST_LOG=warn "$LAB_BIN/moshd" --listen 0.0.0.0:60001 \
	--control-socket "$sock" --state-file "$LAB_DIR/moshd/state.json")
lab_defer kill "$moshd_pid"
for _ in $(seq 1 100); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { cat "$LAB_DIR/moshd.log" >&2; exit 1; }

# mosh_cmd MODE TAG : the mosh command line for MODE (direct|mux); the remote command prints a
# marker computed remotely (so typing it cannot fake it) and keeps a shell.
mosh_cmd() {
	MOSH=(mosh --predict=never --ssh="$LAB_SSH")
	[[ $1 == direct ]] || MOSH+=(--client="$LAB_BIN/mosh-client-mux" --server="$LAB_BIN/mosh-server-mux --control-socket $sock")
	MOSH+=("root@$LAB_SERVER_IP" -- sh -c "echo ok-\$((40+2))-$2; PS1='$ ' exec bash --norc -i")
}
{
	mosh_cmd direct TAG && printf '%q ' "${MOSH[@]}" && echo
	mosh_cmd mux TAG && printf '%q ' "${MOSH[@]}" && echo
} >"$BENCH_OUT/lab-commands.txt"

echo "bench: lab: setup time, $SETUPS runs per mode" >&2
setup_direct=() setup_mux=()
for ((i = 0; i < SETUPS; i++)); do
	for mode in direct mux; do
		name="s$mode$i"
		mosh_cmd "$mode" "$LAB_ID-$name"
		t0=$(date +%s.%N)
		lab_term_start "$name" "${MOSH[@]}"
		t1=$(measure wait "$name" "ok-42-$LAB_ID-$name" 30)
		s=$(python3 -c "print(round($t1 - $t0, 4))")
		if [[ $mode == direct ]]; then setup_direct+=("$s"); else setup_mux+=("$s"); fi
		lab_term_type "$name" exit
		lab_term_wait_exit "$name" 15 >/dev/null || true
		lab_term_kill "$name"
	done
done

echo "bench: lab: keystroke to echo, $KEYS keystrokes per mode" >&2
for mode in direct mux; do
	mosh_cmd "$mode" "$LAB_ID-k$mode"
	lab_term_start "k$mode" "${MOSH[@]}"
	measure wait "k$mode" "ok-42-$LAB_ID-k$mode" 30 >/dev/null
	sleep 1
	measure keystrokes "k$mode" "$KEYS" >"$LAB_DIR/keys-$mode.json"
done

echo "bench: lab: idle relay and mosh-client, ${IDLE}s" >&2
sleep 3 # both sessions idle from here on
relay='' mux_client='' direct_client=''
for pid in $(ip netns pids "$LAB_CLIENT_NS"); do
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
	ppid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
	case $comm in
	mosh-client-mux) relay=$pid ;;
	mosh-client) if [[ $(cat "/proc/$ppid/comm" 2>/dev/null) == mosh-client-mux ]]; then mux_client=$pid; else direct_client=$pid; fi ;;
	esac
done
[[ -n $relay && -n $mux_client && -n $direct_client ]] || { echo "lab.sh: processes not found" >&2; exit 1; }
measure idle "$IDLE" "relay=$relay" "mux_mosh_client=$mux_client" "direct_mosh_client=$direct_client" >"$LAB_DIR/idle.json"

python3 - "$LAB_DIR" "$BENCH_OUT/lab.json" "${setup_direct[*]}" "${setup_mux[*]}" <<'PY'
import json, sys
d = sys.argv[1]
out = {
    "setup_s": {"direct": [float(x) for x in sys.argv[3].split()], "mux": [float(x) for x in sys.argv[4].split()]},
    "keystroke_ms": {m: json.load(open(f"{d}/keys-{m}.json")) for m in ("direct", "mux")},
    "idle": json.load(open(f"{d}/idle.json")),
}
json.dump(out, open(sys.argv[2], "w"))
PY
for mode in direct mux; do
	lab_term_send "k$mode" C-c
	lab_term_type "k$mode" exit
	lab_term_wait_exit "k$mode" 15 >/dev/null || true
done
echo "bench: done: lab" >&2
