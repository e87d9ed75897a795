#!/usr/bin/env python3
"""A stand-in for stock mosh-client in mosh-client-mux's tests.

Driven by environment variables:
  FAKE_RECORD  write {"argv", "pid", "ppid", "mosh_key"} as JSON to this file
               (after signal handlers are installed: the file means "ready")
  FAKE_MODE    exit (default) | echo | wait-signal | kill-self
  FAKE_EXIT    exit status for exit and echo modes (default 0)
  FAKE_SIGNALS file to append the names of received signals to
"""
import json
import os
import signal
import socket
import sys
import time


def status_lines():
    """SigBlk and SigIgn after Python started (it ignores a few signals itself)."""
    with open("/proc/self/status") as f:
        return {k: v.strip() for k, v in (l.split(":", 1) for l in f) if k in ("SigBlk", "SigIgn")}


def record(argv):
    path = os.environ.get("FAKE_RECORD")
    if not path:
        return
    with open(path + ".tmp", "w") as f:
        json.dump(
            {
                "argv": argv,
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "mosh_key": os.environ.get("MOSH_KEY"),
                "status": status_lines(),
            },
            f,
        )
    os.rename(path + ".tmp", path)


def echo(ip, port):
    """Sends from two sockets (a, b, a again); each reply must echo the payload
    and come from the relay's address."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.settimeout(10)
    for sock, tag in ((a, 1), (b, 2), (a, 3)):
        payload = bytes([tag]) + b"mosh-datagram-stand-in-" + bytes(range(8))
        sock.sendto(payload, (ip, port))
        data, source = sock.recvfrom(4096)
        if data != payload or source != (ip, port):
            sys.stderr.write(f"fake: bad echo {data!r} from {source}\n")
            return 3
    return int(os.environ.get("FAKE_EXIT", "0"))


def main():
    argv = sys.argv[1:]
    mode = os.environ.get("FAKE_MODE", "exit")
    if mode == "wait-signal":
        def note(signo, _frame):
            with open(os.environ["FAKE_SIGNALS"], "a") as f:
                f.write(signal.Signals(signo).name + "\n")
            sys.exit(9)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, note)
    record(argv)
    if argv == ["-c"]:
        print("256")
        return 0
    if argv in (["--help"], ["--version"]):
        print("fake mosh-client " + argv[0])
        return 0
    if mode == "echo":
        return echo(argv[-2], int(argv[-1]))
    if mode == "wait-signal":
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return 4
    if mode == "kill-self":
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(5)
        return 5
    return int(os.environ.get("FAKE_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
