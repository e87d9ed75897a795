#!/usr/bin/env python3
"""Capture one UDP datagram to DST_IP:DST_PORT whose payload starts with byte FIRST (hex), on any
interface of this namespace (AF_PACKET, root). Writes the payload as hex to OUTFILE.
Gives up after MAX_SECONDS (bounded); exit 1 if nothing was captured.

usage: sniff.py DST_IP DST_PORT FIRST MAX_SECONDS OUTFILE"""
import socket, struct, sys, time

dst, dport, first, max_s, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 16), float(sys.argv[4]), sys.argv[5]
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))  # IPv4, no link header
deadline = time.monotonic() + max_s
while time.monotonic() < deadline:
    s.settimeout(max(0.05, deadline - time.monotonic()))
    try:
        pkt = s.recv(65535)
    except socket.timeout:
        continue
    ihl = (pkt[0] & 0x0F) * 4
    if len(pkt) < ihl + 8 or pkt[9] != 17 or socket.inet_ntoa(pkt[16:20]) != dst:
        continue
    sport, port = struct.unpack("!HH", pkt[ihl:ihl + 4])
    payload = pkt[ihl + 8:]
    if port == dport and payload[:1] == bytes([first]):
        with open(out, "w") as f:
            f.write(payload.hex() + "\n")
        sys.exit(0)
sys.exit(1)
