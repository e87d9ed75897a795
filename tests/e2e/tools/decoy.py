#!/usr/bin/env python3
"""A decoy session: a loopback UDP socket registered with moshd as a session (this process is its
"mosh-server"), counting every datagram that reaches it. Proves what moshd does NOT deliver.

usage: decoy.py CONTROL_SOCKET SSH_CLIENT_IP COUNT_FILE MAX_SECONDS
Writes the count to COUNT_FILE after each datagram; exits after MAX_SECONDS (bounded)."""
import json, os, secrets, socket, sys, time

ctl, ssh_ip, count_file, max_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
req = {"op": "register", "sid": secrets.token_hex(8), "port": s.getsockname()[1],
       "pid": os.getpid(), "ssh_client": ssh_ip}
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.settimeout(5)
c.connect(ctl)
c.sendall((json.dumps(req) + "\n").encode())
reply = json.loads(c.makefile().readline())
if reply.get("result") != "registered":
    print("decoy: not registered:", reply, file=sys.stderr)
    sys.exit(1)
n = 0
with open(count_file, "w") as f:
    f.write("0\n")
print("decoy: registered", req["sid"], "port", req["port"], flush=True)
deadline = time.monotonic() + max_s
while time.monotonic() < deadline:
    s.settimeout(max(0.05, deadline - time.monotonic()))
    try:
        s.recv(4096)
    except socket.timeout:
        continue
    n += 1
    with open(count_file, "w") as f:
        f.write(f"{n}\n")
