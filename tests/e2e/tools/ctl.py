#!/usr/bin/env python3
"""Speak moshd's control protocol as whoever runs this (for attack tests).

usage:
  ctl.py SOCK register SID PORT PID          print moshd's one-line answer
  ctl.py SOCK hold SID SECONDS OUTFILE       bind a loopback UDP port, register it with this
                                             process's pid, write "PORT ANSWER" to OUTFILE, count
                                             datagrams received into OUTFILE.count, stay alive
                                             SECONDS (bounded), then exit
  ctl.py SOCK bind PORT SECONDS OUTFILE      bind 127.0.0.1:PORT (no registration), count
                                             datagrams into OUTFILE.count for SECONDS"""
import json, os, socket, sys, time

def ask(sock, req):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(sock)
    c.sendall((json.dumps(req) + "\n").encode())
    return c.makefile().readline().strip()

def count_for(s, seconds, outfile):
    n, deadline = 0, time.monotonic() + seconds
    with open(outfile + ".count", "w") as f:
        f.write("0\n")
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            s.recv(4096)
        except socket.timeout:
            continue
        n += 1
        with open(outfile + ".count", "w") as f:
            f.write(f"{n}\n")

sock, op = sys.argv[1], sys.argv[2]
if op == "register":
    print(ask(sock, {"op": "register", "sid": sys.argv[3], "port": int(sys.argv[4]), "pid": int(sys.argv[5])}))
elif op == "hold":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    answer = ask(sock, {"op": "register", "sid": sys.argv[3], "port": s.getsockname()[1], "pid": os.getpid()})
    with open(sys.argv[5], "w") as f:
        f.write(f"{s.getsockname()[1]} {answer}\n")
    count_for(s, float(sys.argv[4]), sys.argv[5])
elif op == "bind":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", int(sys.argv[3])))
    with open(sys.argv[5], "w") as f:
        f.write("bound\n")
    count_for(s, float(sys.argv[4]), sys.argv[5])
else:
    sys.exit(f"unknown op {op}")
