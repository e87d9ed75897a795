#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The two messages only the datapath can give, as a user meets them:
# - the server's firewall drops moshd's port: mosh-client-mux says so after 5 s, with a hint;
# - moshd restarted without its state: "this session is unknown to moshd".
. "$(dirname "$0")/lib.sh"

e2e_mux_lab
flat() { lab_term_output "$1" | tr -d '\n'; }
# readme_msg START : the message in README's "Messages you may see" table that starts with START,
# so that the test checks the exact text the user is told to expect.
readme_msg() {
	local m
	m=$(grep -o "| \`$1[^\`]*\` |" "$E2E_DIR/../../README.md" | head -1)
	m=${m#| \`}
	m=${m%\` |}
	[[ -n $m ]] || e2e_fail "README has no message starting with '$1'"
	printf '%s' "$m"
}

e2e_step "the firewall drops moshd's port: the relay says so, with a hint"
lab_firewall mux 7001
e2e_marker_cmd "$LAB_ID-f"
e2e_mosh_muxd f root "${E2E_CMD[@]}"
hint=$(readme_msg "mosh-client-mux: no answer from moshd")
hint=${hint//IP:PORT/203.0.113.10:$E2E_MOSHD_PORT}
hint=${hint//PORT/$E2E_MOSHD_PORT}
for _ in $(seq 1 60); do grep -qF "$hint" <<<"$(flat f)" && break; sleep 0.25; done
grep -qF "$hint" <<<"$(flat f)" || e2e_fail "no firewall hint; terminal output: $(flat f | tail -c 600)"
if grep -q "$(e2e_marker "$LAB_ID-f")" <<<"$(flat f)"; then e2e_fail "the session got through a closed port?"; fi
lab_term_send f C-^ .
lab_term_wait_exit f 15 >/dev/null || true

e2e_step "moshd restarted without its state: the relay says the session is unknown"
lab_firewall mux "$E2E_MOSHD_PORT"
e2e_marker_cmd "$LAB_ID-u"
e2e_mosh_muxd u root "${E2E_CMD[@]}"
lab_term_wait u "$(e2e_marker "$LAB_ID-u")" 30
kill -9 "$E2E_MOSHD_PID"
rm -f "$LAB_DIR/moshd/state.json"
e2e_moshd_start
# shellcheck disable=SC2016 # expanded by the remote shell (never, here)
lab_term_type u 'echo lost-$((6*7))'
unknown=$(readme_msg "mosh-client-mux: this session is unknown to moshd")
for _ in $(seq 1 60); do grep -qF "$unknown" <<<"$(flat u)" && break; sleep 0.25; done
grep -qF "$unknown" <<<"$(flat u)" || e2e_fail "no unknown-session message; terminal output: $(flat u | tail -c 600)"
[[ $(e2e_counter notices) -ge 1 ]] || e2e_fail "moshd counted no notices"
lab_term_send u C-^ .
lab_term_wait_exit u 15 >/dev/null || true
# Said again once mosh-client has given the terminal back.
[[ $(lab_term_screen u | grep -cF "$unknown") -ge 1 ]] || e2e_fail "the message is not on the screen after exit"
echo PASS
