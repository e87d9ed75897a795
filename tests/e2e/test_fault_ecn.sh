#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# ECN through the mux: outer datagrams carry ECT(0) both ways, as mosh's own do; a CE mark set on
# the outer path reaches mosh on the inner hop in both directions (into mosh-server on the server's
# loopback, into mosh-client on the client's loopback).
. "$(dirname "$0")/lib.sh"

e2e_mux_lab
py=/usr/bin/python3
count() { # NS IFACE PORT SECONDS [DIR]
	lab_ns_exec "$1" "$py" "$E2E_DIR/tools/ecncount.py" "${@:2}"
}
field() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
# Keep the session busy: a counter printing several lines a second, for SECONDS.
busy() { lab_term_type e "for i in \$(seq 1 $1); do echo tick-\$i; sleep 0.1; done"; }

e2e_marker_cmd "$LAB_ID-e"
e2e_mosh_muxd e root "${E2E_CMD[@]}"
lab_term_wait e "$(e2e_marker "$LAB_ID-e")" 30

e2e_step "outer datagrams carry ECT(0) in both directions"
busy 30
count router any "$E2E_MOSHD_PORT" 3 from >"$LAB_DIR/from.json" &
to=$(count router any "$E2E_MOSHD_PORT" 3 to)
wait
from=$(cat "$LAB_DIR/from.json")
echo "router, no marking: to moshd $to; from moshd $from" >&2
for d in "$to" "$from"; do
	(($(field "$d" ect0) >= 5)) || e2e_fail "too few ECT(0) datagrams on the outer path: $d"
	(($(field "$d" not_ect) == 0)) || e2e_fail "outer datagrams without ECT: $d"
done
lab_term_wait e '^tick-30$' 15

e2e_step "the router marks CE: the mark reaches mosh-server and mosh-client on their loopback hops"
ce0=$(e2e_counter ce_to_server)
lab_router_ce on
busy 40
spid=$(e2e_status_json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["server_port"])')
count server lo "$spid" 3 to >"$LAB_DIR/server_lo.json" &
client_lo=$(count client lo 0 3)
wait
server_lo=$(cat "$LAB_DIR/server_lo.json")
lab_router_ce off
lab_term_wait e '^tick-40$' 15
ce1=$(e2e_counter ce_to_server)
echo "server loopback (moshd -> mosh-server): $server_lo; client loopback (relay -> mosh-client): $client_lo; moshd counted $((ce1 - ce0)) CE marks carried" >&2
(($(field "$server_lo" ce) > 0)) || e2e_fail "no CE mark reached mosh-server: $server_lo"
(($(field "$client_lo" ce) > 0)) || e2e_fail "no CE mark reached mosh-client: $client_lo"
((ce1 > ce0)) || e2e_fail "moshd counted no CE mark carried to mosh-server"
echo PASS
