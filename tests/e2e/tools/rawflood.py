#!/usr/bin/env python3
"""A bounded flood of raw (unframed, first byte < 0x80) mosh-like UDP datagrams with spoofed
source addresses, sent with a raw socket (root). Only for the namespace lab.

usage: rawflood.py [--ports N] [--rate PPS] [--tos T] [--json] DST_IP DST_PORT COUNT MAX_SECONDS
                   SRC_IP [SRC_IP ...]
Each datagram takes the next source IP in turn. Its source port is random (a new one for every
datagram), or with --ports N one of N ports fixed per source IP (random at start, used in turn),
so that only N client addresses per source IP exist. --rate paces the whole flood to PPS datagrams
a second (default: as fast as it goes). --tos sets the IP TOS byte (e.g. 0x20, DSCP CS1), so that
the receiver can count the flood's datagrams apart from other traffic. Stops after COUNT
datagrams or MAX_SECONDS, whichever comes first. Prints how many it sent, or with --json one
object: {"sent": N, "elapsed": SECONDS between the first and the last datagram sent,
"ports": {SRC_IP: [PORT, ...]} (with --ports)}."""
import argparse, ipaddress, json, os, random, socket, struct, sys, time

TEST_NETS = [ipaddress.ip_network(n) for n in ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24")]

p = argparse.ArgumentParser(usage=__doc__)
p.add_argument("--ports", type=int, default=0)
p.add_argument("--rate", type=float, default=0.0)
p.add_argument("--tos", type=lambda s: int(s, 0), default=0)
p.add_argument("--json", action="store_true")
p.add_argument("dst")
p.add_argument("dport", type=int)
p.add_argument("count", type=int)
p.add_argument("max_seconds", type=float)
p.add_argument("srcs", nargs="+")
a = p.parse_args()
for addr in [a.dst] + a.srcs:  # never anything but TEST-NET addresses
    ip = ipaddress.ip_address(addr)
    assert any(ip in n for n in TEST_NETS), addr
assert 0 <= a.ports <= 1000 and 0 <= a.tos <= 255 and a.max_seconds <= 600, "bounds"

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
payload = bytes([0x00]) + os.urandom(47)
ports = {src: random.sample(range(1024, 65536), a.ports) for src in a.srcs} if a.ports else {}


def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack(f"!{len(b)//2}H", b))
    t = (t >> 16) + (t & 0xFFFF)
    t += t >> 16
    return ~t & 0xFFFF


sent, first, last = 0, None, None
start = time.monotonic()
deadline = start + a.max_seconds
while sent < a.count:
    now = time.monotonic()
    if now >= deadline:
        break
    if a.rate > 0:
        due = start + sent / a.rate
        if due > now:
            time.sleep(min(due - now, deadline - now))
            continue
    i = sent // len(a.srcs)
    src = a.srcs[sent % len(a.srcs)]
    sport = ports[src][i % a.ports] if a.ports else random.randint(1024, 65535)
    ulen = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, a.dport, ulen, 0) + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(a.dst) + struct.pack("!BBH", 0, 17, ulen)
    udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xFFFF) + udp[8:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, a.tos, 20 + ulen, sent & 0xFFFF, 0, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(a.dst))
    try:
        s.sendto(iph + udp, (a.dst, 0))
    except (BlockingIOError, OSError):
        time.sleep(0.001)
        continue
    last = time.monotonic()
    if first is None:
        first = last
    sent += 1
if a.json:
    print(json.dumps({"sent": sent, "elapsed": round((last - first) if sent else 0.0, 3), "ports": ports}))
else:
    print(sent)
