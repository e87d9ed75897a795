#!/usr/bin/env python3
"""Count UDP/IPv4 packets by ECN codepoint, seen on one interface (or all) of this namespace, for
a bounded time. Only packets to PORT (DIR "to"), from PORT ("from") or either ("any") count;
PORT 0 means any port.

usage: ecncount.py IFACE|any PORT SECONDS [to|from|any]
prints e.g. {"not_ect": 0, "ect1": 0, "ect0": 12, "ce": 3}"""
import json, socket, struct, sys, time

iface, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
direction = sys.argv[4] if len(sys.argv) > 4 else "any"
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
if iface != "any":
    s.bind((iface, 0))
names = ["not_ect", "ect1", "ect0", "ce"]
counts = dict.fromkeys(names, 0)
seen = set()
deadline = time.monotonic() + secs
while time.monotonic() < deadline:
    s.settimeout(max(0.05, deadline - time.monotonic()))
    try:
        pkt, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING and iface == "lo":
        continue  # on lo every packet is seen twice: count it once
    ihl = (pkt[0] & 0x0F) * 4
    if len(pkt) < ihl + 8 or pkt[9] != 17:
        continue
    sport, dport = struct.unpack("!HH", pkt[ihl:ihl + 4])
    if port and not {"to": dport == port, "from": sport == port, "any": port in (sport, dport)}[direction]:
        continue
    counts[names[pkt[1] & 0x03]] += 1
print(json.dumps(counts))
