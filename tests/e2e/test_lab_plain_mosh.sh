#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Sanity test of the lab with stock mosh only: the network, sshd, tmux terminals, lab users, and
# that the server firewall is real (a blocked UDP port means no mosh session).
. "$(dirname "$0")/lib.sh"

lab_up
nothing='Nothing received from server on UDP port'

e2e_step "(a) firewall open for mosh (60000-61000): root gets a session"
lab_firewall mosh
e2e_marker_cmd "$LAB_ID-a"
e2e_mosh_plain a root "${E2E_CMD[@]}"
lab_term_wait a "$(e2e_marker "$LAB_ID-a")" 20
lab_term_wait a '^user=root$' 5
# The session's mosh-server lives in the server namespace, bound to the lab address.
ip netns exec "$LAB_SERVER_NS" ss -Hlunp | grep "$LAB_SERVER_IP:600[0-9][0-9] .*mosh-server" >/dev/null ||
	e2e_fail "no mosh-server bound on $LAB_SERVER_IP in the server namespace"
# shellcheck disable=SC2016 # expanded by the remote shell
lab_term_type a 'echo typed-$((6*7))'
lab_term_wait a '^typed-42$' 10
lab_term_type a exit
st=$(lab_term_wait_exit a 15) || e2e_fail "mosh did not exit after the remote shell did"
[[ $st == 0 ]] || e2e_fail "mosh exited with status $st"
e2e_kill_mosh_servers

e2e_step "(b) firewall admits one mosh port (60001): one session works, a second one cannot"
lab_firewall mux 60001
e2e_marker_cmd "$LAB_ID-b1"
e2e_mosh_plain b1 root "${E2E_CMD[@]}"
lab_term_wait b1 "$(e2e_marker "$LAB_ID-b1")" 20
e2e_marker_cmd "$LAB_ID-b2"
e2e_mosh_plain b2 root "${E2E_CMD[@]}"
# mosh-client is running (ssh worked, so TCP 22 is admitted) but hears nothing on UDP 60002.
lab_term_wait b2 "$nothing 60002" 20
! lab_term_wait b2 "$(e2e_marker "$LAB_ID-b2")" 8 2>/dev/null ||
	e2e_fail "a second mosh session got through a firewall that admits only UDP 60001"
if lab_term_screen b1 | grep "$nothing" >/dev/null; then e2e_fail "the admitted session lost contact"; fi
lab_term_send b2 C-^ .
lab_term_wait b2 'did not make a successful connection' 10
lab_term_wait_exit b2 10 >/dev/null
lab_term_type b1 exit
lab_term_wait_exit b1 15 >/dev/null
e2e_kill_mosh_servers

e2e_step "(c) firewall admits only a non-mosh port (mux 7001): stock mosh cannot connect"
lab_firewall mux 7001
drops0=$(lab_firewall_drops)
e2e_marker_cmd "$LAB_ID-c"
e2e_mosh_plain c root "${E2E_CMD[@]}"
lab_term_wait c "$nothing 600[0-9][0-9]" 20
! lab_term_wait c "$(e2e_marker "$LAB_ID-c")" 8 2>/dev/null ||
	e2e_fail "stock mosh got through a firewall that admits only UDP 7001"
drops=$(lab_firewall_drops)
((drops > drops0)) || e2e_fail "the firewall dropped nothing ($drops0 -> $drops)"
echo "firewall dropped $((drops - drops0)) packets" >&2
lab_term_send c C-^ .
lab_term_wait c 'did not make a successful connection' 10
lab_term_wait_exit c 10 >/dev/null
e2e_kill_mosh_servers

e2e_step "(d) a non-root lab user gets a session with the firewall open"
lab_firewall mosh
user=$(lab_add_user u1)
e2e_marker_cmd "$LAB_ID-d"
e2e_mosh_plain d "$user" "${E2E_CMD[@]}"
lab_term_wait d "$(e2e_marker "$LAB_ID-d")" 20
lab_term_wait d "^user=$user\$" 5
pgrep -u "$user" -x mosh-server >/dev/null || e2e_fail "no mosh-server running as $user"
lab_term_type d exit
st=$(lab_term_wait_exit d 15) || e2e_fail "mosh did not exit after the remote shell did"
[[ $st == 0 ]] || e2e_fail "mosh exited with status $st"

e2e_step "(e) second client host; stock mosh follows roaming and NAT rebinding made by the lab"
# Roaming and rebinding leave the old path dead, so only a server that moved its reply address
# to the new one (as mosh-server does on an authenticated datagram) answers the next command.
c2=$(lab_add_client c2 198.51.100.3)
e2e_marker_cmd "$LAB_ID-e"
lab_term_start_in "$c2" e mosh --ssh="$LAB_SSH" "root@$LAB_SERVER_IP" -- "${E2E_CMD[@]}"
lab_term_wait e "$(e2e_marker "$LAB_ID-e")" 20
# e_cmd N: run a command in session e whose output (step-N-ok) only the server can produce.
e_cmd() {
	lab_term_type e "echo step-\$(($1 * 1))-ok"
	lab_term_wait e "^step-$1-ok\$" 15
}
e_cmd 1
lab_server_peers | grep '^198\.51\.100\.3:' >/dev/null || e2e_fail "server saw no UDP from 198.51.100.3"
lab_client_move "$c2" 198.51.100.77
e_cmd 2
lab_server_peers | grep '^198\.51\.100\.77:' >/dev/null || e2e_fail "server saw no UDP from the roamed address"
lab_router_masquerade on
e_cmd 3
lab_router_rebind # the client's mapping moves into 20000-29999
e_cmd 4
lab_server_peers | grep -E '^203\.0\.113\.1:2[0-9]{4}$' >/dev/null || e2e_fail "server saw no rebound NAT mapping"
echo "server saw UDP from: $(lab_server_peers | tr '\n' ' ')" >&2
lab_term_type e exit
st=$(lab_term_wait_exit e 15) || e2e_fail "mosh did not exit after the remote shell did"
[[ $st == 0 ]] || e2e_fail "mosh exited with status $st"

lab_down
echo "PASS: lab, firewall and stock mosh behave" >&2
