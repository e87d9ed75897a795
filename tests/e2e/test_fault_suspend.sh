#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fault: suspend. Two framed mux sessions.
#  (a) In an interactive bash (job control): Ctrl-^ Ctrl-Z suspends the whole job, mosh-client AND
#      mosh-client-mux (both in state T, bash reports the job stopped and gets the terminal back);
#      `fg` resumes it and the session works: text typed before and after appears, in order.
#      After `exit`, the relay is gone and the terminal's settings (stty -g) are as before mosh.
#  (b) "Laptop lid": the whole client job (mosh-client-mux and mosh-client) is SIGSTOPped for
#      60 s, then SIGCONTed. Text typed while it was stopped (it waits in the terminal) appears
#      after SIGCONT, between the text typed before and after. This session runs under a plain
#      `sh` without job control, as the lid stops processes without any shell noticing: an
#      interactive bash would see its job stop, print "Stopped" and take the terminal back, which
#      is not what a closed lid does (and tmux would SIGCONT a stopped pane process at once).
. "$(dirname "$0")/lib.sh"

stop_secs=${E2E_SUSPEND_SECS:-60}

e2e_mux_lab
mosh_argv() { # TAG : the mux mosh command line for a session printing TAG's marker
	e2e_marker_cmd "$1"
	MOSH_ARGV=(mosh --ssh="$LAB_SSH" --client="$LAB_BIN/mosh-client-mux" --server="$E2E_MUX_SERVER"
		"root@$LAB_SERVER_IP" -- "${E2E_CMD[@]}")
}

e2e_step "(a) a mux session started from an interactive bash"
lab_term_start a env PS1='local$ ' bash --norc -i
lab_term_wait a '^local\$ $' 10
# The terminal's settings before mosh, to compare with what the mux session leaves behind.
lab_term_type a "stty -g >$LAB_DIR/stty-before"
mosh_argv "$LAB_ID-a"
lab_term_type a "$(printf '%q ' "${MOSH_ARGV[@]}")"
lab_term_wait a "$(e2e_marker "$LAB_ID-a")" 30
bash_pid=$(e2e_term_pid a)
relay=$(e2e_find_pid "$bash_pid" mosh-client-mux)
client=$(e2e_find_pid "$relay" mosh-client)
e2e_type_marker a before
e2e_wait_marker a before 15 >/dev/null
[[ $(e2e_pid_state "$relay")$(e2e_pid_state "$client") =~ ^[RS][RS]$ ]] ||
	e2e_fail "relay/mosh-client states before suspending: $(e2e_pid_state "$relay")$(e2e_pid_state "$client")"

e2e_step "(a) Ctrl-^ Ctrl-Z suspends mosh-client and the relay"
lab_term_send a C-^ C-z
lab_term_wait a '^\[1\]\+ +Stopped' 10
for i in $(seq 1 50); do
	[[ $(e2e_pid_state "$relay")$(e2e_pid_state "$client") != TT ]] || break
	sleep 0.1
done
[[ $(e2e_pid_state "$relay") == T ]] || e2e_fail "the relay $relay is not stopped: $(e2e_pid_state "$relay")"
[[ $(e2e_pid_state "$client") == T ]] || e2e_fail "mosh-client $client is not stopped: $(e2e_pid_state "$client")"
echo "after Ctrl-^ Ctrl-Z: relay $relay state T, mosh-client $client state T" >&2
# The local shell has the terminal now.
# shellcheck disable=SC2016 # expanded by the local shell
lab_term_type a 'echo local-$((6*7))'
lab_term_wait a '^local-42$' 10
sleep 3 # suspended for a while
lab_term_type a fg
for i in $(seq 1 50); do
	[[ $(e2e_pid_state "$relay")$(e2e_pid_state "$client") =~ ^[RS][RS]$ ]] && break
	sleep 0.1
done
[[ $(e2e_pid_state "$relay")$(e2e_pid_state "$client") =~ ^[RS][RS]$ ]] ||
	e2e_fail "after fg: relay $(e2e_pid_state "$relay"), mosh-client $(e2e_pid_state "$client")"
e2e_type_marker a after
ms=$(e2e_wait_marker a after 30) || e2e_fail "the session does not work after fg"
echo "text typed after fg appeared after ${ms} ms" >&2
e2e_assert_markers a before after
lab_term_screen a | grep -x 'local-42' && e2e_fail "mosh did not redraw its screen after fg"

e2e_step "(b) a mux session whose whole client job is stopped for ${stop_secs} s (laptop lid)"
mosh_argv "$LAB_ID-b"
# shellcheck disable=SC2016 # expanded by the pane's sh
lab_term_start b sh -c '"$@"; echo "[mosh exited with status $?]"' sh "${MOSH_ARGV[@]}"
lab_term_wait b "$(e2e_marker "$LAB_ID-b")" 30
relay_b=$(e2e_find_pid "$(e2e_term_pid b)" mosh-client-mux)
client_b=$(e2e_find_pid "$relay_b" mosh-client)
e2e_type_marker b before
e2e_wait_marker b before 15 >/dev/null
t_stop=$(date +%s%N)
kill -STOP "$relay_b" "$client_b"
sleep 0.5
[[ $(e2e_pid_state "$relay_b")$(e2e_pid_state "$client_b") == TT ]] ||
	e2e_fail "SIGSTOP: relay $(e2e_pid_state "$relay_b"), mosh-client $(e2e_pid_state "$client_b")"
e2e_type_marker b during
sleep 5
# Stopped processes draw nothing: the typed text waits in the terminal.
! lab_term_screen b | grep -x 'during-42' >/dev/null || e2e_fail "output appeared while the client was stopped"
left_ms=$((stop_secs * 1000 - ($(date +%s%N) - t_stop) / 1000000))
((left_ms <= 0)) || sleep "$((left_ms / 1000)).$(printf '%03d' $((left_ms % 1000)))"
[[ $(e2e_pid_state "$relay_b")$(e2e_pid_state "$client_b") == TT ]] ||
	e2e_fail "the stop did not last: relay $(e2e_pid_state "$relay_b"), mosh-client $(e2e_pid_state "$client_b")"
! lab_term_screen b | grep -x 'during-42' >/dev/null || e2e_fail "output appeared while the client was stopped"
[[ $(e2e_session_count) == 2 ]] || e2e_fail "moshd lost a session while the client was stopped"
kill -CONT "$relay_b" "$client_b"
echo "client job stopped for $((($(date +%s%N) - t_stop) / 1000000)) ms" >&2
ms=$(e2e_wait_marker b during 40) || { e2e_show_logs; e2e_fail "text typed during the stop did not appear after SIGCONT"; }
echo "text typed during the stop appeared ${ms} ms after SIGCONT" >&2
e2e_type_marker b after
e2e_wait_marker b after 15 >/dev/null
e2e_assert_markers b before during after
# Session (a) is still alive too.
e2e_type_marker a last
e2e_wait_marker a last 15 >/dev/null
e2e_assert_markers a before after last

e2e_step "(a) after exit, the terminal is left as it was before mosh"
lab_term_type a exit
for _ in $(seq 1 100); do kill -0 "$relay" 2>/dev/null || break; sleep 0.1; done
kill -0 "$relay" 2>/dev/null && e2e_fail "the relay $relay did not exit after the session ended"
lab_term_type a "stty -g >$LAB_DIR/stty-after"
for _ in $(seq 1 50); do [[ -s $LAB_DIR/stty-after ]] && break; sleep 0.1; done
[[ -s $LAB_DIR/stty-before && -s $LAB_DIR/stty-after ]] || e2e_fail "stty -g did not run in the local shell"
cmp -s "$LAB_DIR/stty-before" "$LAB_DIR/stty-after" ||
	e2e_fail "terminal settings changed: $(cat "$LAB_DIR/stty-before") -> $(cat "$LAB_DIR/stty-after")"
echo "terminal settings after the session: as before ($(cat "$LAB_DIR/stty-after"))" >&2
echo PASS
