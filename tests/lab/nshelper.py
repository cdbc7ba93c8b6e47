"""Tiny network tools that lab tests run inside a namespace (`ip netns exec NS python3
nshelper.py TOOL ...`): Python 3.11 has no os.setns, so code that must use a namespace's
sockets runs as a child process in it. Stdlib only; every tool is bounded in time.

  echo-udp ADDR PORT SECONDS     answer each datagram with "seen <src-ip> <src-port>";
                                 print the same line on stdout; exit after SECONDS
  probe-udp DST PORT [SRCPORT]   send one datagram, print the echo's answer (2 s timeout)
  sip-udp DST PORT FILE [WAIT]   send FILE's bytes as one datagram; print the first line of
                                 each answer received within WAIT seconds (default 3); ACK a
                                 non-2xx final answer to an INVITE (UDP); an answer for another
                                 Call-ID is printed as "foreign CALL-ID: STATUS LINE"
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


def _header_values(msg, long_name, short_name):
    """Values of one header (long or compact form) in a message's header section."""
    head = msg.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    names = (long_name.lower(), short_name.lower())
    return [l.partition(b":")[2].strip() for l in head[1:] if l.partition(b":")[0].strip().lower() in names]


def _call_ids(data):
    return set(_header_values(data, b"call-id", b"i"))


def _first_lines(chunks, sent_call_ids):
    """Prints each answer's status line, tagged " [pinhole]" when pinhole itself generated it
    (its Server header), so the tests can tell pinhole's verdicts from the upstream's. An answer
    carrying a Call-ID we did not send is not an answer to this message (a late retransmission for
    an earlier socket that had the same port): printed as "foreign ..." so it is seen, not judged."""
    for c in chunks:
        head = c.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        ours = any(l.lower().startswith(b"server: pinhole") for l in head[1:])
        line = head[0].decode(errors="replace") + (" [pinhole]" if ours else "")
        ids = _call_ids(c)
        if sent_call_ids and ids and not ids & sent_call_ids:
            line = f"foreign {b','.join(ids).decode(errors='replace')}: {line}"
        print(line, flush=True)


def _ack_for(request, response):
    """The hop-by-hop ACK for a non-2xx final response to our INVITE (RFC 3261 §17.1.1.3), or None.
    Without it the server transaction would retransmit that response for 32 s (Timer H) to a port
    this tool no longer listens on, which the next run of the tool may have been given."""
    status = response.split(b" ", 2)
    if len(status) < 2 or not status[1].isdigit() or int(status[1]) < 300:
        return None
    cseq = _header_values(response, b"cseq", b"")
    if not cseq or not cseq[0].upper().endswith(b"INVITE"):
        return None
    parts = request.split(b"\r\n", 1)[0].split(b" ")
    vias = _header_values(response, b"via", b"v")
    if len(parts) != 3 or not vias:
        return None
    lines = [b"ACK " + parts[1] + b" SIP/2.0", b"Via: " + vias[0].split(b",")[0]]
    for long_name, short_name in ((b"From", b"f"), (b"To", b"t"), (b"Call-ID", b"i")):
        values = _header_values(response, long_name, short_name)
        if not values:
            return None
        lines.append(long_name + b": " + values[0])
    lines += [b"CSeq: " + cseq[0].split(b" ")[0] + b" ACK", b"Max-Forwards: 70", b"Content-Length: 0"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _print_answers(sock, wait, split, sent=b"", reply=None):
    """Prints the answers arriving on `sock` for up to `wait` seconds (AFTER_FINAL after the first
    final one). `split` turns received bytes into whole messages plus the unfinished rest; `sent`
    is what we sent (its Call-IDs tell answers from strays); `reply(bytes)` sends on the socket
    (for the ACK of a non-2xx final response to an INVITE)."""
    # a stream may carry several messages (dblreq): the Call-IDs of all of them
    heads = _split_sip_stream(sent)[0] if split is not _one_datagram else []
    sent_call_ids = set().union(_call_ids(sent), *(_call_ids(h) for h in heads))
    finished = set()  # sent Call-IDs that got a final answer
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
        _first_lines(msgs, sent_call_ids)
        for m in msgs:
            ack = _ack_for(sent, m) if reply and _call_ids(m) & sent_call_ids else None
            if ack:
                reply(ack)
        finals = [m for m in msgs if _is_final(m)]
        for m in finals:
            finished |= _call_ids(m) & sent_call_ids
        # stop soon after every message we sent has its final answer (any final one when the
        # Call-IDs cannot tell: a message without one)
        if finals and (finished == sent_call_ids or not sent_call_ids):
            deadline = min(deadline, time.monotonic() + AFTER_FINAL)


def _one_datagram(data):
    return [data], b""


def sip_udp(dst, port, path, wait=3):
    with open(path, "rb") as f:
        data = f.read()
    s = _udp_socket(None)
    s.sendto(data, (dst, int(port)))
    _print_answers(s, wait, _one_datagram, data, lambda b: s.sendto(b, (dst, int(port))))


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
    # no ACK here: over a stream nothing is retransmitted, and an ACK would be read as the rest
    # of whatever unfinished message the file left on the connection
    _print_answers(s, wait, _split_sip_stream, data)
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
