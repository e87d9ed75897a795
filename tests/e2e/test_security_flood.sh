#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Security: a flood of random datagrams at moshd's port (at least 100,000 a second for 10 s, from
# a third host that never ran ssh) leaves real sessions typing and echoing. One framed session
# (mosh-client-mux) and one stock-client session (only the server has mosh-mux) type keystrokes
# without the flood and during it; every keystroke must echo, the sessions must work after it,
# moshd must answer `moshd status` during it, and decoy sessions must receive nothing.
#
# The flood (tests/bench/src/bin/flood.rs) mixes raw-looking datagrams, framed ones with random
# session ids and random bytes, from 64 source ports, paced and bounded (count and time); it only
# sends to TEST-NET addresses. Echo latency (send-keys to the letter on the screen, polled; see
# tests/bench/labmeasure.py) is printed as "flood-latency:" lines, the flood's rates as
# "flood-rate:", and copied to E2E_TIMINGS_OUT when that names a file (docs/SECURITY.md reports
# them with this command).
. "$(dirname "$0")/lib.sh"

rate=${E2E_FLOOD_RATE:-120000}
seconds=${E2E_FLOOD_SECONDS:-10}
keys=${E2E_FLOOD_KEYS:-40} # keystrokes per session in each phase
flood=$MOSH_MUX_BIN/flood
[[ -x $flood ]] || e2e_fail "no flood generator at $flood (cargo build --release --workspace)"

# moshd logs as in production (info): per-datagram debug lines would measure the log, not moshd.
E2E_MOSHD_LOG=info
e2e_mux_lab
attacker=$(lab_add_client c9 198.51.100.9)

# A prompt the keystroke probe recognises ("$" alone on the last line after C-c).
shell_cmd() { SHELL_CMD=(sh -c "echo ok-\$((40+2))-$1; PS1='$ ' exec bash --norc -i"); }
e2e_step "a framed session (f) and a stock-client session (k)"
shell_cmd "$LAB_ID-f"; e2e_mosh_muxd f root "${SHELL_CMD[@]}"
shell_cmd "$LAB_ID-k"; e2e_mosh_stock_in "$LAB_CLIENT_NS" k root "${SHELL_CMD[@]}"
for t in f k; do lab_term_wait "$t" "$(e2e_marker "$LAB_ID-$t")" 30; done
# Decoy sessions: one claims the real clients' sshd address, one another host's. The attacker
# never ran ssh, so no session may be probed with its datagrams.
e2e_decoy 198.51.100.2 decoy1
e2e_decoy 198.51.100.3 decoy2

# Datagrams reaching the server's UDP port from outside, counted before any firewall rule.
ip netns exec "$LAB_SERVER_NS" nft -f - <<EOF
table inet ${LAB_ID}_flood {
  counter arrived {}
  chain in { type filter hook input priority -10; iif != lo udp dport $E2E_MOSHD_PORT counter name arrived; }
}
EOF
arrived() { ip netns exec "$LAB_SERVER_NS" nft list counter inet "${LAB_ID}_flood" arrived | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }
# The server's UDP receive-buffer overflows (datagrams the kernel dropped for moshd's socket).
rcvbuf_errors() { ip netns exec "$LAB_SERVER_NS" awk '/^Udp:/ { if (h) print $6; h = 1 }' /proc/net/snmp; }

measure() { # TERM PHASE : keystroke echo times on TERM, one JSON list, also kept for the report
	LAB_TMUX_SOCK=$LAB_TMUX_SOCK python3 "$REPO/tests/bench/labmeasure.py" keystrokes "$1" "$keys" \
		>"$LAB_DIR/keys-$2-$1.json" || e2e_fail "session $1: a keystroke did not echo ($2)"
	# The probe leaves its letters on the command line: clear it for what comes next.
	lab_term_send "$1" C-c
}

e2e_step "echo latency without the flood"
measure f quiet
measure k quiet

e2e_step "flood: $rate datagrams/s for ${seconds}s from 198.51.100.9 at moshd's port"
# moshd's CPU time (user + system clock ticks, /proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$E2E_MOSHD_PID/stat"; }
a0=$(arrived) r0=$(rcvbuf_errors) probes0=$(e2e_counter probes) c0=$(cpu_ticks)
lab_ns_exec "$attacker" timeout $((${seconds%.*} + 20)) "$flood" --to "$LAB_SERVER_IP:$E2E_MOSHD_PORT" \
	--rate "$rate" --seconds "$seconds" >"$LAB_DIR/flood.json" 2>"$LAB_DIR/flood.err" &
flood_pid=$!
lab_defer kill "$flood_pid"
t_flood=$(date +%s.%N)
sleep 0.5
measure f flood
measure k flood
e2e_status_json >/dev/null || e2e_fail "moshd status did not answer during the flood"
t_measured=$(date +%s.%N)
wait "$flood_pid" || { cat "$LAB_DIR/flood.err" >&2; e2e_fail "the flood generator failed"; }
a1=$(arrived) r1=$(rcvbuf_errors) c1=$(cpu_ticks)
cat "$LAB_DIR/flood.json" >&2

e2e_step "the sessions work after the flood; decoys received nothing"
for t in f k; do
	# shellcheck disable=SC2016 # expanded by the remote shell
	lab_term_type "$t" "echo after-\$((6*7))-$t"
done
for t in f k; do lab_term_wait "$t" "^after-42-$t\$" 15; done
for d in decoy1 decoy2; do
	[[ $(cat "$LAB_DIR/$d.count") == 0 ]] || e2e_fail "$d received $(cat "$LAB_DIR/$d.count") datagrams"
done
[[ $(e2e_counter probes) == "$probes0" ]] || e2e_fail "the flood from a host that never ran ssh was probed"
[[ $(e2e_session_count) == 4 ]] || e2e_fail "moshd should still hold 2 sessions + 2 decoys"
counters=$(e2e_status_json)

python3 - "$LAB_DIR" "$t_flood" "$t_measured" "$((a1 - a0))" "$((r1 - r0))" "$counters" \
	"$(((c1 - c0) * 1000 / $(getconf CLK_TCK)))" "${E2E_TIMINGS_OUT:-}" <<'PY' || e2e_fail "the flood did not meet its bar (see above)"
import json, sys
d, t0, t1, arrived, rcvbuf, status, cpu_ms, out = sys.argv[1:9]
flood = json.load(open(f"{d}/flood.json"))
lines = []
ok = True
lines.append(f"flood-rate: sent {flood['sent']} in {flood['seconds']:.2f} s = {flood['rate']:.0f}/s "
             f"(target {flood['target_rate']}/s; {flood['refused']} refused by the sender's socket); "
             f"arrived at the server {int(arrived)} = {int(arrived) / flood['seconds']:.0f}/s; "
             f"server UDP receive-buffer drops {rcvbuf}; moshd CPU {int(cpu_ms) / 1000:.2f} s "
             f"({int(cpu_ms) / 10 / flood['seconds']:.0f}% of a core)")
c = json.loads(status)["counters"]
lines.append("flood-counters (moshd, whole test): " + ", ".join(f"{k}={c[k]}" for k in sorted(c) if c[k]))
if flood["rate"] < 100_000:
    print(f"flood: sent only {flood['rate']:.0f} datagrams/s, below 100,000", file=sys.stderr); ok = False
if float(t1) - float(t0) > flood["seconds"]:
    print("flood: the keystrokes outlasted the flood; 'during' would be wrong", file=sys.stderr); ok = False
def q(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))]
for term, name in (("f", "framed"), ("k", "stock client")):
    for phase in ("quiet", "flood"):
        v = json.load(open(f"{d}/keys-{phase}-{term}.json"))
        lines.append(f"flood-latency: {name:12} {phase:5} n={len(v)} p50={q(v, .5):.1f} ms "
                     f"p90={q(v, .9):.1f} ms max={max(v):.1f} ms")
print("\n".join(lines), file=sys.stderr)
if out:
    open(out, "w").write("\n".join(lines) + "\n")
sys.exit(0 if ok else 1)
PY
echo "PASS: sessions typed and echoed through a ${rate}/s flood" >&2
