#!/usr/bin/env bash
# tests/bench/route_cost.sh FILE - append moshd's router cost per datagram (framed, stock client
# after mapping, reply, probe, stranger) to FILE, with the command that measured it. No I/O: it
# isolates the routing work that issue 7's stock-client path adds or saves.
set -euo pipefail
out=$1
table=$(cargo bench -q -p moshd --bench route_cost 2>/dev/null)
{
	echo
	echo "## Router cost per datagram: framed, stock client, probe"
	echo
	echo "Measured by \`cargo bench -p moshd --bench route_cost\` (moshd/benches/route_cost.rs) in the same"
	echo "right after the run above: the router alone, no sockets, so only the lookup work differs between the paths (a"
	echo "datagram's system calls, a few microseconds, are the same for all of them)."
	echo
	echo "$table"
	echo
	echo "A stock client's datagram, once its source is mapped, costs one address lookup where a framed"
	echo "one costs one sid lookup: the same order. A probe (the first datagram of an unmapped stock"
	echo "source) opens a candidate per probed session; probes are rate-limited per source and in all."
} >>"$out"
