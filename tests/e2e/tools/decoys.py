#!/usr/bin/env python3
"""Many decoy sessions in one process: one loopback UDP socket per SSH_CLIENT_IP given (repeat an
IP for several sessions claiming it), each registered with moshd as a session whose sshd saw that
IP (this process is their "mosh-server"). Counts what reaches each one; never answers. Proves what
moshd delivers, and to how many sessions.

usage: decoys.py CONTROL_SOCKET OUT_JSON MAX_SECONDS SSH_CLIENT_IP [SSH_CLIENT_IP ...]
Prints "decoys: registered N" once every session is registered (exit 1 if one is refused). After
every batch of datagrams, OUT_JSON is replaced (atomically) by a list, in the order given:
  [{"ip": SSH_CLIENT_IP, "sid": ..., "port": ..., "received": datagrams,
    "candidates": distinct moshd candidate sockets (source ports) they came from}, ...]
Exits after MAX_SECONDS (bounded)."""
import json, os, secrets, select, socket, sys, time

ctl, out, max_s, ips = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
assert 1 <= len(ips) <= 256 and max_s <= 3600, "bounds"


def register(req):
    """moshd's answer to a registration; retried (bounded, 10 s) while moshd refuses new control
    connections for coming too fast (10 a second per user) or closes them for that reason."""
    deadline = time.monotonic() + 10
    while True:
        try:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(5)
            c.connect(ctl)
            c.sendall((json.dumps(req) + "\n").encode())
            line = c.makefile().readline()
            c.close()
            reply = json.loads(line) if line.strip() else {"error": "connection closed"}
        except (OSError, ValueError) as e:
            reply = {"error": str(e)}
        if reply.get("result") == "registered" or time.monotonic() > deadline:
            return reply
        if "error" not in reply and "try again" not in json.dumps(reply):
            return reply
        time.sleep(0.2)


decoys = []
for ip in ips:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    req = {"op": "register", "sid": secrets.token_hex(8), "port": s.getsockname()[1],
           "pid": os.getpid(), "ssh_client": ip}
    reply = register(req)
    if reply.get("result") != "registered":
        print("decoys: not registered:", ip, reply, file=sys.stderr)
        sys.exit(1)
    decoys.append({"sock": s, "ip": ip, "sid": req["sid"], "port": req["port"], "received": 0,
                   "sources": set()})


def write():
    rows = [{"ip": d["ip"], "sid": d["sid"], "port": d["port"], "received": d["received"],
             "candidates": len(d["sources"])} for d in decoys]
    with open(out + ".tmp", "w") as f:
        json.dump(rows, f)
    os.replace(out + ".tmp", out)


write()
print("decoys: registered", len(decoys), flush=True)
by_fd = {d["sock"].fileno(): d for d in decoys}
poll = select.poll()
for fd in by_fd:
    poll.register(fd, select.POLLIN)
deadline = time.monotonic() + max_s
while time.monotonic() < deadline:
    ready = poll.poll(max(50, int((deadline - time.monotonic()) * 1000)))
    for fd, _ in ready:
        d = by_fd[fd]
        while True:
            try:
                _, src = d["sock"].recvfrom(4096)
            except BlockingIOError:
                break
            d["received"] += 1
            d["sources"].add(src[1])
    if ready:
        write()
