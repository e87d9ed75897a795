#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# With moshd's roaming probe enabled, a stock mosh-client whose address changes (to one its sshd
# never saw) keeps its session: text typed before, during and after the move all arrives, in order.
. "$(dirname "$0")/lib.sh"

e2e_mux_lab --roaming-probe
c2=$(lab_add_client c2 198.51.100.3)

e2e_marker_cmd "$LAB_ID-r"
e2e_mosh_stock_in "$c2" r root "${E2E_CMD[@]}"
lab_term_wait r "$(e2e_marker "$LAB_ID-r")" 30
# shellcheck disable=SC2016 # expanded by the remote shell
lab_term_type r 'echo before-$((6*7))'
lab_term_wait r '^before-42$' 10

e2e_step "the client host moves from 198.51.100.3 to 198.51.100.77"
lab_client_move "$c2" 198.51.100.77
# shellcheck disable=SC2016
lab_term_type r 'echo during-$((6*7))'
lab_term_wait r '^during-42$' 40
# shellcheck disable=SC2016
lab_term_type r 'echo after-$((6*7))'
lab_term_wait r '^after-42$' 10
screen=$(lab_term_screen r)
grep -n 'before-42\|during-42\|after-42' <<<"$screen" | grep -v echo | cut -d: -f2 | tr '\n' ' ' | grep -q '^before-42 during-42 after-42 $' ||
	e2e_fail "typed text is missing or out of order: $screen"
client=$(e2e_status_json | python3 -c 'import json,sys; s=json.load(sys.stdin)["sessions"][0]; print(s["client_kind"], s["client"])')
[[ $client == "stock 198.51.100.77:"* ]] || e2e_fail "moshd shows the client as: $client"
echo "moshd now shows: $client; probes: $(e2e_counter probes)" >&2
echo PASS
