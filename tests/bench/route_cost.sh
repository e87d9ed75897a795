#!/usr/bin/env bash
# tests/bench/route_cost.sh - moshd's router cost per datagram, without I/O: a framed datagram, a
# stock client's datagram once its source is mapped, a reply, a probe, a stranger's datagram
# (`cargo bench -p moshd --bench route_cost`, moshd/benches/route_cost.rs). It isolates the
# routing work that issue 7's stock-client path adds or saves; report.py shows it next to the
# end-to-end stock-client measurements of synthetic.sh.
#
# Run by scripts/bench with BENCH_OUT (see synthetic.sh). Writes route-cost.txt (the bench's
# output) and route-cost.json (its rows) there, and the command to commands.jsonl. Any failure
# (the bench does not build, does not run, or prints a table this script does not recognise)
# stops it with the reason on stderr and a non-zero status.
set -euo pipefail
: "${BENCH_OUT:?}"
R=$BENCH_OUT
cd "$(dirname "$0")/../.."
cmd=(cargo bench -q -p moshd --bench route_cost)
python3 -c 'import json,sys; print(json.dumps({"name": "route-cost", "cmd": " ".join(sys.argv[1:])}))' \
	"${cmd[@]}" >>"$R/commands.jsonl"
echo "bench: router cost per datagram (${cmd[*]})" >&2
rc=0
"${cmd[@]}" >"$R/route-cost.txt" 2>"$R/route-cost.log" || rc=$?
if ((rc != 0)); then
	echo "bench: route_cost: '${cmd[*]}' failed (exit status $rc):" >&2
	cat "$R/route-cost.log" >&2
	exit 1
fi
# The bench prints a heading line naming its setup, then a Markdown table: | path | ns per datagram |.
python3 - "$R/route-cost.txt" >"$R/route-cost.json" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
head = next((l.strip() for l in text.splitlines() if l.strip() and not l.startswith("|")), "")
rows = []
for line in text.splitlines():
    m = re.fullmatch(r"\|\s*(.+?)\s*\|\s*([0-9.]+)\s*\|", line.strip())
    if m:
        rows.append({"path": m.group(1), "ns": float(m.group(2))})
m = re.search(r"([\d,]+) sessions", head)
if not m or len(rows) < 4:
    sys.exit(f"route_cost: unrecognised output of the bench (want a heading naming the sessions and "
             f"a table of at least 4 rows):\n{text}")
print(json.dumps({"heading": head.rstrip(":"), "sessions": int(m.group(1).replace(",", "")), "rows": rows}))
PY
