#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Per-user mode: a user without root runs their own moshd on UDP 60101 (the only UDP port the
# firewall admits), with nothing but ~/.config/mosh/moshd.toml: its socket goes under
# $XDG_RUNTIME_DIR, its state under ~/.local/state. Their mosh sessions find it two ways:
#  - through ~/.config/mosh/mux.toml (control_socket), the documented way where sshd sets no
#    $XDG_RUNTIME_DIR (this lab's sshd runs UsePAM no, as many do): a session with mosh-mux;
#  - through $XDG_RUNTIME_DIR/moshd/control.sock where the login sets $XDG_RUNTIME_DIR (PAM and
#    logind), with no mux.toml: a session with stock mosh and --server.
# Then SIGHUP applies a lowered per-user cap without dropping either session, a third session is
# refused with the README's message, and another user cannot reach the socket.
. "$(dirname "$0")/lib.sh"

lab_up
lab_install_bins
install -m 0755 "$MOSH_MUX_BIN/mosh-mux" "$LAB_BIN/mosh-mux"
trap 'tail -n 40 "$LAB_DIR/alice-moshd.log" >&2 2>/dev/null; lab_down' EXIT
port=60101
lab_firewall mux "$port"
alice=$(lab_add_user a)
bob=$(lab_add_user b)
home=$(getent passwd "$alice" | cut -d: -f6)
# $XDG_RUNTIME_DIR as logind would make it (/run/user/UID): the user's own, 0700.
run=$LAB_DIR/run-$alice
install -d -m 0700 -o "$alice" -g "$alice" "$run"
sock=$run/moshd/control.sock
as_alice() { lab_server_as "$alice" env HOME="$home" XDG_RUNTIME_DIR="$run" "$@"; }

e2e_step "$alice writes ~/.config/mosh/moshd.toml and starts moshd on UDP $port, unprivileged"
as_alice mkdir -p "$home/.config/mosh"
as_alice sh -c "cat >'$home/.config/mosh/moshd.toml'" <<EOF
listen = ["0.0.0.0:$port"]
log_level = "info"
[limits]
max_sessions_per_user = 10
EOF
as_alice "$LAB_BIN/moshd" check-config | grep -qx "moshd: $home/.config/mosh/moshd.toml: OK" ||
	e2e_fail "check-config does not find or accept $alice's file"
launcher=$(lab_spawn server alice-moshd runuser -u "$alice" -- env HOME="$home" XDG_RUNTIME_DIR="$run" "$LAB_BIN/moshd")
lab_defer kill "$launcher"
moshd_pid=$(e2e_find_pid "$launcher" moshd)
lab_defer kill "$moshd_pid"
for _ in $(seq 1 50); do
	as_alice "$LAB_BIN/moshd" status >/dev/null 2>&1 && break
	sleep 0.1
done
as_alice "$LAB_BIN/moshd" status >&2 || e2e_fail "$alice's moshd does not answer at its default socket"
[[ -S $sock ]] || e2e_fail "no socket at $sock"
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$moshd_pid/status")
[[ $uids == "$(id -u "$alice") $(id -u "$alice") $(id -u "$alice") $(id -u "$alice")" ]] ||
	e2e_fail "moshd runs with uids $uids, not $alice's"
ip netns exec "$LAB_SERVER_NS" ss -Hlunp "sport = :$port" | grep -q moshd || e2e_fail "moshd does not listen on UDP $port"
[[ $(stat -c %U "$home/.local/state/moshd") == "$alice" ]] || e2e_fail "no state directory in $alice's home"

e2e_step "session A: mosh-mux, socket from ~/.config/mosh/mux.toml (sshd sets no XDG_RUNTIME_DIR)"
as_alice sh -c "printf 'control_socket = \"%s\"\n' '$sock' >'$home/.config/mosh/mux.toml'"
e2e_marker_cmd "$LAB_ID-A"
lab_term_start A "$LAB_BIN/mosh-mux" --ssh="$LAB_SSH" --server="$LAB_BIN/mosh-server-mux" \
	"$alice@$LAB_SERVER_IP" -- "${E2E_CMD[@]}"
lab_term_wait A "$(e2e_marker "$LAB_ID-A")" 30
lab_term_output A | tr -d '\n' | grep -q "session registered with moshd; client traffic goes to UDP port $port" ||
	e2e_fail "session A did not register with $alice's moshd: $(lab_term_output A | head -c 1500)"

e2e_step "session B: no mux.toml; XDG_RUNTIME_DIR set as a PAM login would: found there"
as_alice rm "$home/.config/mosh/mux.toml"
e2e_marker_cmd "$LAB_ID-B"
lab_term_start B mosh --ssh="$LAB_SSH" --client="$LAB_BIN/mosh-client-mux" \
	--server="env XDG_RUNTIME_DIR=$run $LAB_BIN/mosh-server-mux" "$alice@$LAB_SERVER_IP" -- "${E2E_CMD[@]}"
lab_term_wait B "$(e2e_marker "$LAB_ID-B")" 30
lab_term_output B | tr -d '\n' | grep -q "session registered with moshd; client traffic goes to UDP port $port" ||
	e2e_fail "session B did not register with $alice's moshd: $(lab_term_output B | head -c 1500)"
# Neither way, the system's socket is asked: no moshd there, so plain mosh-server (direct mode).
out=$(lab_ssh "$alice" "$LAB_BIN/mosh-server-mux" new -l LANG=C.UTF-8 -- true 2>&1 || true)
grep -q "moshd is not reachable at /run/moshd/control.sock" <<<"$out" ||
	e2e_fail "without mux.toml or XDG_RUNTIME_DIR, expected the system socket's notice: $out"

for s in A B; do
	# shellcheck disable=SC2016 # expanded by the remote shell
	lab_term_type "$s" "echo typed-\$((6*7))-$s"
	lab_term_wait "$s" "^typed-42-$s\$" 15
done
json=$(as_alice "$LAB_BIN/moshd" status --json)
python3 - "$json" "$alice" <<'PY' || e2e_fail "status does not show both sessions: $json"
import json, sys
st, alice = json.loads(sys.argv[1]), sys.argv[2]
s = st["sessions"]
assert len(s) == 2, s
assert all(x["user"] == alice and x["client_kind"] == "framed" and x["client"].startswith("198.51.100.2:") for x in s), s
assert st["listen"] == ["0.0.0.0:60101"], st["listen"]
PY

e2e_step "SIGHUP: a lowered cap applies, both sessions stay"
as_alice sed -i 's/^max_sessions_per_user = .*/max_sessions_per_user = 2/' "$home/.config/mosh/moshd.toml"
as_alice kill -HUP "$moshd_pid"
for _ in $(seq 1 50); do
	grep -q 'SIGHUP: configuration reloaded' "$LAB_DIR/alice-moshd.log" && break
	sleep 0.1
done
grep -q 'SIGHUP: max_sessions_per_user: 10 -> 2' "$LAB_DIR/alice-moshd.log" || e2e_fail "the reload did not apply the cap"
for s in A B; do
	# shellcheck disable=SC2016
	lab_term_type "$s" "echo after-\$((6*7))-$s"
	lab_term_wait "$s" "^after-42-$s\$" 15
done
((2 == $(as_alice "$LAB_BIN/moshd" status --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["sessions"]))'))) ||
	e2e_fail "a session was lost in the reload"
# A third session is refused, with the reason.
set +e
out=$(lab_ssh "$alice" "$LAB_BIN/mosh-server-mux" --control-socket "$sock" new -l LANG=C.UTF-8 -- true 2>&1)
rc=$?
set -e
want="mosh-server-mux: moshd refused the session: you already have 2 sessions, the most moshd allows one user"
[[ $rc == 1 && $out == *"$want"* ]] || e2e_fail "a third session: exit $rc, said: $out"
echo "refused as expected: $want" >&2

e2e_step "another user cannot reach $alice's moshd"
set +e
out=$(lab_server_as "$bob" "$LAB_BIN/moshd" status --control-socket "$sock" 2>&1)
rc=$?
set -e
[[ $rc == 1 && $out == *"Permission denied"* ]] || e2e_fail "$bob: exit $rc, $out"
echo PASS
