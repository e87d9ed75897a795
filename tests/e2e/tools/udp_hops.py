#!/usr/bin/env python3
"""Summarise UDP socket samples taken with `ss -Huanp` in the client namespace.

Usage: udp_hops.py SAMPLES RELAY_PID CLIENT_PID

SAMPLES holds blocks, each starting with a line "# N TIME_NS" followed by the
output of `ss -Huanp` at that moment. The script prints one JSON object:
  client_ports: mosh-client's (CLIENT_PID) local UDP ports, in order of first sight,
                each with the time (ns) it was first seen;
  outer_ports:  the relay's (RELAY_PID) sockets bound to the wildcard address (its outer
                sockets, which talk to moshd; like mosh-client's they are not connected), likewise;
  inner_ports:  the relay's sockets bound to 127.0.0.1 (its loopback socket for mosh-client);
  samples:      how many samples were read.
A socket is attributed by the pid in ss's users:(...) column.
"""
import json
import re
import sys

USERS = re.compile(r'\("([^"]*)",pid=(\d+),fd=\d+\)')


def main():
    path, relay_pid, client_pid = sys.argv[1], sys.argv[2], sys.argv[3]
    client, outer, inner = {}, {}, {}
    samples = 0
    now = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("# "):
                parts = line.split()
                samples += 1
                now = int(parts[2]) if len(parts) > 2 else 0
                continue
            fields = line.split()
            if len(fields) < 6:
                continue
            local, users = fields[3], " ".join(fields[5:])
            port = int(local.rsplit(":", 1)[1])
            pids = {pid for _, pid in USERS.findall(users)}
            if client_pid in pids:
                client.setdefault(port, now)
            if relay_pid in pids:
                if local.startswith("127.0.0.1:"):
                    inner.setdefault(port, now)
                else:
                    outer.setdefault(port, now)

    def ordered(d):
        return [{"port": p, "first_ns": t} for p, t in sorted(d.items(), key=lambda kv: (kv[1], kv[0]))]

    print(json.dumps({"samples": samples, "client_ports": ordered(client),
                      "outer_ports": ordered(outer), "inner_ports": ordered(inner)}))


if __name__ == "__main__":
    main()
