#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/seeds/<target>/. Run it again after editing.

The seeds are real examples wherever there is one:
- mosh-client datagrams captured on loopback from Debian's mosh-client 1.4.0, run in tmux with
  MOSH_KEY=gflLFw38EcGhIYzas1qLZA (docs/PROTOCOL.md's sid-2 key, sid 71db447e1de5337e) against
  a UDP socket that only listened: real nonce + AES-128-OCB ciphertext + tag, as moshd sees them
  from a stock client, and framed with 0xB1 + sid as mosh-client-mux sends them.
- mosh-server 1.4.0's stdout and stderr, captured from `mosh-server new -i 127.0.0.1 -p 0`,
  `mosh-server new -s -c 256 -l LANG=en_US.UTF-8` and, on a pty (`script`), the combined
  stream `mosh` reads through `ssh -t`. The keys and pids are as printed; those servers are gone.
- control requests from docs/PROTOCOL.md (ctl-1..ctl-6) and responses captured from a real
  moshd (register, refusals, status with a session and counters).
- the header vectors hdr-1..hdr-6 from docs/PROTOCOL.md.
- config files in the shape README.md describes (~/.config/mosh/mux.toml).
"""

import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")

SID2 = bytes.fromhex("71db447e1de5337e")  # key gflLFw38EcGhIYzas1qLZA
MAGIC = b"\xb1"

# Six consecutive datagrams from a real mosh-client 1.4.0 (key gflLFw38EcGhIYzas1qLZA).
REAL_DATAGRAMS = [bytes.fromhex(h) for h in [
    "000000000000000060cf703496a1f7397616f3d2729320c5cedefc7a21b9584e5af6ecb515fcb94d6bc7de97cd8e"
    "ceeb2a3ca205102f04b13f2fd65303c4420821a063c99f442f309f",
    "0000000000000001634711e1e2e905c608bc16e461dfbb27da207032ebadc1df687e6c13e3efbc36123552244eac"
    "254ac09427a148795bd0517a2fd0b0f152f3424b719f31f60aa82b48f80eb134d04f8261308b15",
    "0000000000000002eadbddff6b1abc6fe5be46ff01af29ed4651fac1aa84b1df15c3ad3623bc079eac0dcfc125d8"
    "7c2d10e835e9922d3b8a21331ca03253a80191c20df8",
    "00000000000000039f516e58bb79e1a5a3ceda8d9e0adadfc78127558314729d12c2fff9f8681e72dc8e66600dd0"
    "15951da3fc5e85b3ea8f4ffad61658cdee7f50af5b38b7be88f16916ac16be2d003a1693fb1a02c832",
    "0000000000000004fc39635131e86b6cac7a71c6e9781949875b49672960107a4aa265ce9788fd1c081d47bc00c9"
    "3212bad6b8462f32b534d4715b7e862525de17035441b42b916864046d",
    "00000000000000051190989119fa5ef83b01f029118c6d5dc0e55f3dcb865923924329aa52961171dc842c1d9a7e"
    "20770b81f42928f5154da1a8d277bc04f087e260fd574ea63e71bca4",
]]

BANNER = (
    b"mosh-server (mosh 1.4.0) [build mosh 1.4.0]\n"
    b"Copyright 2012 Keith Winstein <mosh-devel@mit.edu>\n"
    b"License GPLv3+: GNU GPL version 3 or later <http://gnu.org/licenses/gpl.html>.\n"
    b"This is free software: you are free to change and redistribute it.\n"
    b"There is NO WARRANTY, to the extent permitted by law.\n"
)


def framed(sid, dgram):
    return MAGIC + sid + dgram


def header_seeds():
    seeds = {
        # docs/PROTOCOL.md vectors
        "hdr-1": MAGIC + SID2 + bytes(24),
        "hdr-2": bytes([1]) * 24,
        "hdr-3": b"\xb2" + bytes(40),
        "hdr-4": MAGIC + SID2 + bytes(23),
        "hdr-5": MAGIC + SID2 + b"\x80" + bytes(23),
        "hdr-6": bytes([1]) * 23,
    }
    for i, d in enumerate(REAL_DATAGRAMS[:3]):
        seeds[f"real-raw-{i}"] = d
        seeds[f"real-framed-{i}"] = framed(SID2, d)
    return seeds


def control_seeds():
    requests = {
        "ctl-1": b'{"op":"register","sid":"71db447e1de5337e","port":51251,"pid":2012,"ssh_client":"198.51.100.2"}\n',
        "ctl-2": b'{"op":"register","sid":"71db447e1de5337e","port":51251,"pid":2012}\n',
        "ctl-3": b'{"op":"status"}\n',
        "ctl-4": b'{"op":"status","all":true}\n',
        "ctl-5": b'{"op":"unregister","sid":"71db447e1de5337e"}\n',
        "ctl-6": b'{"op":"register","sid":"71DB","port":1,"pid":2}\n',
        "ctl-ipv6": b'{"op":"register","sid":"012eeef2098cb417","port":60001,"pid":99,"ssh_client":"2001:db8::2"}\n',
    }
    # Captured from a real moshd (this machine, loopback).
    responses = {
        "resp-registered": b'{"result":"registered","port":52202}\n',
        "resp-sid-in-use": b'{"result":"refused","reason":"session id is already registered"}\n',
        "resp-no-socket": b'{"result":"refused","reason":"no UDP socket is bound at 127.0.0.1:1"}\n',
        "resp-unknown-op": b'{"result":"refused","reason":"message is not valid: unknown variant `unregister`, expected `register` or `status` at line 1 column 18"}\n',
        "resp-status": (
            b'{"result":"status","listen":["127.0.0.1:52202"],"sessions":[{"sid":"71db447e1de5337e",'
            b'"user":"root","uid":0,"client":null,"client_kind":null,"server_pid":3670,"server_port":34221,'
            b'"since_unix":1795486226,"last_heard_ms":null,"candidates":0,"to_server_packets":0,'
            b'"to_server_bytes":0,"to_client_packets":0,"to_client_bytes":0}],"counters":{'
            b'"global_candidate_rate":0,"probe_global_rate":0,"probe_source_rate":0,"probe_sources_full":0,'
            b'"probes":0,"session_candidate_rate":0,"too_short":0,"unknown_candidate":0,"unknown_magic":0,'
            b'"unknown_sid":0,"unknown_source":0}}\n'
        ),
        # docs/PROTOCOL.md's status example, with a confirmed client.
        "resp-status-doc": (
            b'{"result":"status","listen":["0.0.0.0:60001"],"sessions":[{"sid":"71db447e1de5337e","user":"alice",'
            b'"uid":1001,"client":"198.51.100.2:40123","client_kind":"framed","server_pid":2012,"server_port":51251,'
            b'"since_unix":1795485287,"last_heard_ms":88,"candidates":1,"to_server_packets":5,'
            b'"to_server_bytes":378,"to_client_packets":6,"to_client_bytes":636}]}\n'
        ),
    }
    # Boundary cases moshd must refuse with a reason: the longest line it reads (4096 bytes,
    # newline included), one byte more, and unknown names long enough that serde_json's
    # error text (which quotes them) passes the 200 bytes mux-proto keeps of it.
    status = b'{"op":"status"'
    boundary = {
        "max-len-4096": status + b" " * (4096 - len(status) - 2) + b"}\n",
        "over-len-4097": status + b" " * (4097 - len(status) - 2) + b"}\n",
        "long-unknown-op": b'{"op":"' + b"x" * 300 + b'"}\n',
        "long-unknown-field": b'{"op":"status","' + b"y" * 300 + b'":1}\n',
        # 91 x U+00E9: the error text is exactly 200 bytes up to a character boundary.
        "long-unknown-op-utf8": ('{"op":"' + "\u00e9" * 91 + '"}\n').encode(),
    }
    return {**requests, **responses, **boundary}


def connect_seeds():
    return {
        # `mosh-server new -i 127.0.0.1 -p 0 -- /bin/sleep 5`, stdout then stderr
        "stdout-loopback": b"MOSH CONNECT 43756 8PxcZSznrpFVBqG7CYSW9w\n",
        "stderr-loopback": b"\n" + BANNER + b"\n[mosh-server detached, pid = 25936]\n",
        # `mosh-server new -s -c 256 -l LANG=en_US.UTF-8 -- /bin/true` without SSH_CONNECTION
        "stdout-any": b"MOSH CONNECT 60001 vJi2sXqF+4b7DU62HwkKxg\n",
        "stderr-any": b"Warning: SSH_CONNECTION not found; binding to any interface.\n\n" + BANNER
        + b"\n[mosh-server detached, pid = 25943]\n",
        # the same on a pty: one stream, CRLF, as `mosh` reads it through `ssh -t`
        "pty": b"\r\r\n\r\nMOSH CONNECT 41589 isHn0uozbugSgQN7/L+bTw\r\n\r\n"
        + BANNER.replace(b"\n", b"\r\n") + b"\r\n[mosh-server detached, pid = 3559]\r\n",
        # what mosh-server-mux prints in mux mode (leading zero: moshd's port)
        "mux-line": b"MOSH CONNECT 060001 gflLFw38EcGhIYzas1qLZA\n",
    }


def scan_seeds():
    """The scan target's input: one line per record, a first byte choosing the stream (0 stdout,
    1 stderr). Real start-ups from connect_seeds, interleaved as the two pipes may deliver them."""
    def lines(stream, text):
        return b"".join(bytes([stream]) + l + b"\n" for l in text.split(b"\n") if l)
    c = connect_seeds()
    return {
        "loopback": lines(0, c["stdout-loopback"]) + lines(1, c["stderr-loopback"]),
        "stderr-first": lines(1, c["stderr-any"]) + lines(0, c["stdout-any"]),
        "pty-crlf": lines(0, c["pty"]) + lines(1, b"[mosh-server detached, pid = 3559]\r"),
        "two-connects": lines(0, c["stdout-loopback"] + c["stdout-any"]) + lines(1, c["stderr-loopback"]),
        "connect-on-stderr": lines(1, c["stdout-loopback"] + c["stderr-loopback"]),
    }


def config_seeds():
    return {
        "full.toml": b'# ~/.config/mosh/mux.toml\ncontrol_socket = "/run/moshd/control.sock"\n'
        b'mosh_server = "/usr/bin/mosh-server"\nmosh_client = "/usr/bin/mosh-client"\n',
        "socket-only.toml": b'control_socket = "/run/user/1000/moshd.sock"\n',
        "empty.toml": b"",
        "unknown-key.toml": b'\ncontrol_socket = "/a"\nbogus = 1\n',
        "wrong-type.toml": b"control_socket = 5\n",
        "literal-strings.toml": b"mosh_client = '/opt/mosh/bin/mosh-client'  # comment\n"
        b"mosh_server = \"\"\"/opt/mosh/bin/mosh-server\"\"\"\n",
    }


# The router target's script language (tests/fuzz/src/router.rs): a flags byte, then ops.
def op_raw(src, dgram):
    return bytes([0, src]) + struct.pack("<H", len(dgram)) + dgram


def op_framed(src, session, body):
    return bytes([2, src, session]) + struct.pack("<H", len(body)) + body


def op_reply(key_index, len8):
    return bytes([4, key_index, len8])


def op_sleep(units_50ms):
    return bytes([5, units_50ms])


def op_expire():
    return bytes([6])


def op_end(session):
    return bytes([7, session])


def op_register(sid, port, ssh_pick, uid_pick):
    return bytes([8]) + sid + struct.pack("<H", port) + bytes([ssh_pick, uid_pick])


def op_fail_next_open():
    return bytes([9])


def op_status(uid_pick):
    return bytes([10, uid_pick])


def router_seeds():
    d = REAL_DATAGRAMS
    # Ops pick sessions by index into the sorted sid list: 0 = 012eeef2098cb417 (sshd address
    # 198.51.100.2), 1 = 71db447e1de5337e (the key the datagrams were made with), 2 = f2c5...
    s_71db = 1
    return {
        # A framed client, as mosh-client-mux sends: the real datagrams, whole (raw op) and via
        # the framed op; mosh-server replies; the client keeps going.
        "framed-session": bytes([0]) + op_raw(0, framed(SID2, d[0])) + op_reply(0, 10)
        + op_framed(0, s_71db, d[1]) + op_framed(0, s_71db, d[2]) + op_status(0),
        # The framed client roams to a second address: a new candidate, confirmed by a reply.
        "framed-roam": bytes([0]) + op_raw(0, framed(SID2, d[0])) + op_reply(0, 10)
        + op_raw(2, framed(SID2, d[1])) + op_reply(1, 12) + op_raw(0, framed(SID2, d[2])),
        # A stock mosh-client from the sshd address of session 012e...: probed, confirmed, mapped.
        "stock-probe": bytes([0]) + op_raw(0, d[0]) + op_reply(0, 9) + op_raw(0, d[1]) + op_raw(0, d[2])
        + op_raw(4, d[3]),
        # Roaming probes on: a stock client goes silent, then reappears elsewhere.
        "stock-roam": bytes([1]) + op_raw(0, d[0]) + op_reply(0, 9) + op_raw(0, d[1]) + op_sleep(100) + op_raw(2, d[1])
        + op_reply(1, 9),
        # Tight limits: many sources for one session, caps and rate limits hit, then expiry.
        "tight-caps": bytes([0x12]) + b"".join(op_raw(s, framed(SID2, d[s % 6])) for s in range(8))
        + op_reply(0, 9) + b"".join(op_raw(s | 8, framed(SID2, d[s % 6])) for s in range(8))
        + op_sleep(255) + op_sleep(255) + op_sleep(255) + op_expire(),
        # Sessions come and go: the server exits, a sid is registered, used and replaced.
        "lifecycle": bytes([0]) + op_raw(0, framed(SID2, d[0])) + op_end(s_71db)
        + op_raw(0, framed(SID2, d[1])) + op_register(SID2, 51300, 1, 0) + op_raw(0, framed(SID2, d[2]))
        + op_reply(1, 9) + op_fail_next_open() + op_raw(3, framed(SID2, d[3])) + op_reply(2, 9)
        + op_raw(3, framed(SID2, d[4])) + op_reply(3, 9) + op_status(1),
        # A relay whose session moshd does not know (moshd restarted without its state, say):
        # the real datagrams framed with a sid nobody registered get a small notice, then
        # (over the notice budget) nothing.
        "unknown-sid": bytes([0]) + b"".join(op_raw(i & 7, framed(bytes.fromhex("0123456789abcdef"), d[i % 6]))
                                             for i in range(50)),
        # Junk: the header vectors' malformed shapes, from every source.
        "junk": bytes([2]) + op_raw(5, b"\xb2" + bytes(40)) + op_raw(6, MAGIC + SID2 + bytes(23))
        + op_raw(7, bytes([1]) * 23) + op_raw(3, MAGIC + SID2 + b"\x80" + bytes(23)) + op_raw(1, b""),
    }


# AFL++ dictionaries: tokens worth splicing in, as raw bytes (escaped when written).
DICTS = {
    "control": [
        b"{", b"}", b'":"', b'","', b'"op"', b'"register"', b'"status"', b'"sid"', b'"port"', b'"pid"',
        b'"ssh_client"', b'"result"', b'"registered"', b'"refused"', b'"reason"', b'"listen"',
        b'"sessions"', b'"counters"', b'"user"', b'"uid"', b'"client"', b'"client_kind"',
        b'"server_pid"', b'"server_port"', b'"since_unix"', b'"last_heard_ms"', b'"candidates"',
        b'"to_server_packets"', b'"to_server_bytes"', b'"to_client_packets"', b'"to_client_bytes"',
        b"null", b"true", b"false", b"\\u0000", b"\\ud800", b'"71db447e1de5337e"', b'"198.51.100.2"',
        b'"::ffff:1.2.3.4"', b"65535", b"65536", b"4294967295", b"-1", b"1e3", b"\n",
        "\u00e9".encode(), "\u20ac".encode(), "\U0001f600".encode(),
    ],
    "connect_line": [
        b"MOSH CONNECT ", b"[mosh-server detached, pid = ", b"]", b"\r", b"\n", b"060001", b"65535",
        b"65536", b"gflLFw38EcGhIYzas1qLZA", b"/////////////////////w", b"==",
        "\u2003".encode(), "\u00a0".encode(), "\u00e9".encode(), b"\xff",
    ],
    "scan": [
        b"\x00MOSH CONNECT ", b"\x01[mosh-server detached, pid = ", b"]", b"\r", b"\n\x00",
        b"\n\x01", b"60001", b"gflLFw38EcGhIYzas1qLZA", b"\xff",
    ],
    "config": [
        b"control_socket", b"mosh_server", b"mosh_client", b" = ", b'"""', b"'''", b"[", b"]",
        b"[[", b"]]", b"#", b"\n", b"\r\n", b"\\u00e9", "\u00e9".encode(), b"{ a = 1 }",
        b"1979-05-27T07:32:00Z", b"inf", b"nan", b"0x1f", b"true", b"\xff",
    ],
}


def dict_escape(token):
    out = []
    for b in token:
        if b in (0x22, 0x5C) or b < 0x20 or b > 0x7E:
            out.append("\\x%02x" % b)
        else:
            out.append(chr(b))
    return '"' + "".join(out) + '"'


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    for target, seeds in [
        ("header", header_seeds()),
        ("router", router_seeds()),
        ("control", control_seeds()),
        ("connect_line", connect_seeds()),
        ("config", config_seeds()),
        ("scan", scan_seeds()),
    ]:
        d = os.path.join(SEEDS, target)
        os.makedirs(d)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    ddir = os.path.join(HERE, "dict")
    shutil.rmtree(ddir, ignore_errors=True)
    os.makedirs(ddir)
    for target, words in DICTS.items():
        with open(os.path.join(ddir, target + ".dict"), "w") as f:
            f.write("# AFL++ dictionary for the %s target (written by gen_seeds.py)\n" % target)
            for i, w in enumerate(words):
                f.write("t%d=%s\n" % (i, dict_escape(w)))


if __name__ == "__main__":
    main()
