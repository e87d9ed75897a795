#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# With no moshd, the same `mosh --client=mosh-client-mux --server=mosh-server-mux` command gives a
# working session in direct mode (stock mosh's ports), and says so.
. "$(dirname "$0")/lib.sh"

lab_up
lab_install_bins
lab_firewall mosh

e2e_step "no moshd: direct mode, with the notice"
nowhere=$LAB_DIR/no-moshd/control.sock
e2e_marker_cmd "$LAB_ID-d"
lab_term_start d mosh --ssh="$LAB_SSH" --client="$LAB_BIN/mosh-client-mux" \
	--server="$LAB_BIN/mosh-server-mux --control-socket $nowhere" "root@$LAB_SERVER_IP" -- "${E2E_CMD[@]}"
lab_term_wait d "$(e2e_marker "$LAB_ID-d")" 30
# shellcheck disable=SC2016 # expanded by the remote shell
lab_term_type d 'echo direct-$((6*7))'
lab_term_wait d '^direct-42$' 15
# Direct mode: stock mosh-server on mosh's usual range, not on loopback, and no relay process.
ip netns exec "$LAB_SERVER_NS" ss -Hlunp | grep -E ':600[0-9]{2} .*mosh-server' >&2 ||
	e2e_fail "no mosh-server on mosh's port range"
if ip netns exec "$LAB_CLIENT_NS" ss -Hunp | grep -q mosh-client-mux; then
	e2e_fail "mosh-client-mux is relaying in direct mode (it should have exec'd mosh-client)"
fi
lab_term_type d exit
st=$(lab_term_wait_exit d 15) || e2e_fail "mosh did not exit"
[[ $st == 0 ]] || e2e_fail "mosh exited with status $st"
# mosh prints the server's stderr to the terminal before mosh-client takes the screen over.
out=$(lab_term_output d | tr -d '\n')
grep -q "mosh-server-mux: moshd is not reachable at $nowhere (.*); starting plain mosh-server (direct mode" <<<"$out" ||
	e2e_fail "the direct-mode notice was not shown: $(lab_term_output d | head -c 2000)"
echo PASS
