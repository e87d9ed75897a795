#!/usr/bin/env python3
"""Measurements on real mosh sessions in the namespace lab (used by tests/bench/lab.sh).

Terminals are tmux panes on the lab's socket ($LAB_TMUX_SOCK); the screen is read with
capture-pane, so every time here is coarse: it includes tmux's own latency and the polling
interval (POLL_S). Subcommands, each printing one JSON value:

  wait NAME TEXT TIMEOUT         seconds since the epoch when TEXT first showed on NAME's screen
  keystrokes NAME COUNT          milliseconds from send-keys of a letter until it shows, COUNT times
  idle SECONDS LABEL=PID ...     RSS and wake-ups a second (context switches of all threads) of
                                 each process over SECONDS
"""
import json
import os
import random
import string
import subprocess
import sys
import time

POLL_S = 0.002


def tmux(*args):
    return subprocess.run(
        ["tmux", "-S", os.environ["LAB_TMUX_SOCK"], *args],
        check=True, capture_output=True, text=True, env={**os.environ, "TMUX": ""},
    ).stdout


def screen(name):
    return tmux("capture-pane", "-p", "-J", "-t", f"={name}:")


def wait(name, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in screen(name):
            return time.time()
        time.sleep(POLL_S)
    raise SystemExit(f"labmeasure: timeout waiting for {text!r} on {name}")


def last_line(name):
    lines = [l for l in screen(name).splitlines() if l.strip()]
    return lines[-1] if lines else ""


def keystrokes(name, count):
    out = []
    typed = ""
    for i in range(count):
        if len(typed) >= 20:  # keep the line short: C-c, and wait for a fresh prompt
            tmux("send-keys", "-t", f"={name}:", "C-c")
            deadline = time.monotonic() + 10
            while last_line(name).strip() != "$":
                if time.monotonic() > deadline:
                    raise SystemExit(f"labmeasure: no fresh prompt on {name} after C-c")
                time.sleep(POLL_S)
            typed = ""
        ch = random.choice(string.ascii_lowercase)
        typed += ch
        t0 = time.monotonic()
        tmux("send-keys", "-t", f"={name}:", "-l", ch)
        deadline = t0 + 10
        while not last_line(name).endswith(typed):
            if time.monotonic() > deadline:
                raise SystemExit(f"labmeasure: keystroke {i} never echoed on {name}")
            time.sleep(POLL_S)
        out.append((time.monotonic() - t0) * 1e3)
        time.sleep(0.05)  # let mosh settle, as between a person's keystrokes
    return out


def proc_sample(pid):
    switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except FileNotFoundError:
            pass
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return switches, rss


def idle(seconds, specs):
    pids = dict(s.split("=", 1) for s in specs)
    start = {k: proc_sample(int(p)) for k, p in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    end = {k: proc_sample(int(p)) for k, p in pids.items()}
    dt = time.monotonic() - t0
    return {
        k: {
            "pid": int(pids[k]),
            "rss_kb": end[k][1],
            "wakeups": end[k][0] - start[k][0],
            "wakeups_per_s": (end[k][0] - start[k][0]) / dt,
            "seconds": dt,
        }
        for k in pids
    }


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "wait":
        print(json.dumps(wait(args[0], args[1], float(args[2]))))
    elif cmd == "keystrokes":
        print(json.dumps(keystrokes(args[0], int(args[1]))))
    elif cmd == "idle":
        print(json.dumps(idle(float(args[0]), args[1:])))
    else:
        raise SystemExit(f"labmeasure: unknown command {cmd}")


if __name__ == "__main__":
    main()
