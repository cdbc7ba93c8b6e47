"""Tiny network tools that lab tests run inside a namespace (`ip netns exec NS python3
nshelper.py TOOL ...`): Python 3.11 has no os.setns, so code that must use a namespace's
sockets runs as a child process in it. Stdlib only; every tool is bounded in time.

  echo-udp ADDR PORT SECONDS     answer each datagram with "seen <src-ip> <src-port>";
                                 print the same line on stdout; exit after SECONDS
  probe-udp DST PORT [SRCPORT]   send one datagram, print the echo's answer (2 s timeout)
  sip-udp DST PORT FILE [WAIT]   send FILE's bytes as one datagram; print the first line of
                                 each answer received within WAIT seconds (default 3)
  sip-tcp DST PORT FILE [WAIT]   same over one TCP connection (answers split by Content-Length)
  netstring HOST PORT JSON       send JSON as a netstring (baresip ctrl_tcp), print the reply
"""

import json
import socket
import sys
import time


def echo_udp(addr, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    deadline = time.monotonic() + float(seconds)
    print("ready", flush=True)
    while (left := deadline - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            data, src = s.recvfrom(2048)
        except socket.timeout:
            break
        line = f"seen {src[0]} {src[1]}"
        print(line, flush=True)
        s.sendto(line.encode(), src)


def _udp_socket(srcport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if srcport:
        s.bind(("0.0.0.0", int(srcport)))
    s.settimeout(2)
    return s


def probe_udp(dst, port, srcport=None):
    s = _udp_socket(srcport)
    s.sendto(b"probe", (dst, int(port)))
    try:
        print(s.recv(2048).decode())
    except socket.timeout:
        print("none")
        sys.exit(3)


# After the first final answer, listen this much longer for anything else (a second final, a
# retransmission) and stop: waiting the full WAIT for every message made the torture run slow.
AFTER_FINAL = 0.3


def _is_final(chunk):
    parts = chunk.split(b" ", 2)
    return len(parts) > 1 and parts[0] == b"SIP/2.0" and parts[1].isdigit() and int(parts[1]) >= 200


def _first_lines(chunks):
    """Prints each answer's status line, tagged " [pinhole]" when pinhole itself generated it
    (its Server header), so the tests can tell pinhole's verdicts from the upstream's."""
    for c in chunks:
        head = c.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        ours = any(l.lower().startswith(b"server: pinhole") for l in head[1:])
        print(head[0].decode(errors="replace") + (" [pinhole]" if ours else ""), flush=True)


def _print_answers(sock, wait, split):
    """Prints the answers arriving on `sock` for up to `wait` seconds (AFTER_FINAL after the first
    final one). `split` turns received bytes into whole messages plus the unfinished rest."""
    buf = b""
    deadline = time.monotonic() + float(wait)
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65535)
        except socket.timeout:
            break
        if not chunk and split is not _one_datagram:
            print("closed", flush=True)
            break
        msgs, buf = split(buf + chunk)
        _first_lines(msgs)
        if any(_is_final(m) for m in msgs):
            deadline = min(deadline, time.monotonic() + AFTER_FINAL)


def _one_datagram(data):
    return [data], b""


def sip_udp(dst, port, path, wait=3):
    with open(path, "rb") as f:
        data = f.read()
    s = _udp_socket(None)
    s.sendto(data, (dst, int(port)))
    _print_answers(s, wait, _one_datagram)


def _split_sip_stream(buf):
    """Splits a TCP byte stream into SIP messages by Content-Length (RFC 3261 18.3)."""
    msgs = []
    while b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"content-length", b"l"):
                length = int(value.strip() or 0)
        if len(rest) < length:
            break
        msgs.append(head)
        buf = rest[length:]
    return msgs, buf


def sip_tcp(dst, port, path, wait=3):
    with open(path, "rb") as f:
        data = f.read()
    s = socket.create_connection((dst, int(port)), timeout=3)
    s.sendall(data)
    _print_answers(s, wait, _split_sip_stream)
    s.close()


def netstring(host, port, payload):
    json.loads(payload)  # fail early on a typo rather than confuse baresip
    body = payload.encode()
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.sendall(str(len(body)).encode() + b":" + body + b",")
        s.settimeout(3)
        try:
            print(s.recv(65535).decode(errors="replace"))
        except socket.timeout:
            print("no reply")


TOOLS = {"echo-udp": echo_udp, "probe-udp": probe_udp,
         "sip-udp": sip_udp, "sip-tcp": sip_tcp, "netstring": netstring}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TOOLS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    TOOLS[sys.argv[1]](*sys.argv[2:])
