#!/usr/bin/env python3
"""A raw SIP UA for the keepalive lab tests (tests/lab/keepalive_tests.py), run inside a lab
namespace. It registers over one UDP socket or one TCP connection and then only answers what
keeps a NAT binding alive, printing one JSON event per line on stdout:

    keepalive_ua.py udp|tcp PROXY_IP PROXY_PORT USER DOMAIN EXPIRES ANSWER_FOR LIFETIME
                    [--refresh AT EXPIRES] [--subscribe USER] [--call USER]... [--act-at S]

  registered/answer  {"event": "answer", "status": N, "cseq": N, "t": s}  (final answers to REGISTERs)
  options            {"event": "options", "t": s}   a keepalive OPTIONS/NOTIFY, answered 200
  ping               {"event": "ping", "answered": bool, "t": s}  a CRLF ping (TCP)
  closed             {"event": "closed", "t": s}    the proxy closed the connection

  request            {"event": "request", "method": M, "t": s}  an INVITE/SUBSCRIBE, answered 200
  dialog             {"event": "dialog", "method": M, "status": N, "t": s}  the answer to ours

Pings are answered for ANSWER_FOR seconds, then ignored (the connection stays open). With
--refresh, a second REGISTER (same Call-ID, CSeq 2, Expires EXPIRES) leaves the same socket at
that time. At --act-at seconds the UA SUBSCRIBEs (Expires 300) to --subscribe's user and INVITEs
each --call user (one dialog each), ACKing each 2xx along its Record-Route set. INVITEs and
SUBSCRIBEs it receives are answered 200 (SUBSCRIBE with Expires 300). Exits after LIFETIME s.
"""

import argparse
import json
import re
import secrets
import socket
import sys
import time


def register(local, transport, proxy, user, domain, call_id, cseq, expires):
    return (f"REGISTER sip:{domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport.upper()} {local[0]}:{local[1]};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=ka{cseq}\r\nTo: <sip:{user}@{domain}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{user}@{local[0]}:{local[1]};transport={transport}>\r\nExpires: {expires}\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


def answer_200(request):
    """A 200 to a keepalive request: its Via, From, To (+tag), Call-ID and CSeq."""
    head = request.split("\r\n\r\n", 1)[0].split("\r\n")
    keep = [l for l in head[1:] if re.match(r"(?i)(via|v|from|f|to|t|call-id|i|cseq)\s*:", l)]
    keep = [l + ";tag=ua" if re.match(r"(?i)(to|t)\s*:", l) and "tag=" not in l else l for l in keep]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()


def emit(start, **event):
    event["t"] = round(time.monotonic() - start, 2)
    print(json.dumps(event), flush=True)


def dialog_request(method, local, transport, user, domain, target, call_id, cseq, extra=""):
    return (f"{method} sip:{target}@{domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport.upper()} {local[0]}:{local[1]};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=d{cseq}{call_id[-4:]}\r\n"
            f"To: <sip:{target}@{domain}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:{user}@{local[0]}:{local[1]};transport={transport}>\r\n{extra}"
            f"Content-Length: 0\r\n\r\n").encode()


def ack_for(response, local, transport):
    """The ACK of a 2xx (RFC 3261 §13.2.2.4): To with the tag, the Record-Route set reversed."""
    head = response.split("\r\n\r\n", 1)[0].split("\r\n")

    def field(name):
        return [l.split(":", 1)[1].strip() for l in head[1:] if re.match(rf"(?i){name}\s*:", l)]
    routes = [r.strip() for v in field("record-route") for r in v.split(",")][::-1]
    contact = (field("contact") or field("m") or [""])[0]
    target = re.search(r"<([^>]+)>", contact)
    ruri = target.group(1) if target else contact
    cseq = field("cseq")[0].split()[0]
    lines = [f"ACK {ruri} SIP/2.0",
             f"Via: SIP/2.0/{transport.upper()} {local[0]}:{local[1]};branch=z9hG4bK{secrets.token_hex(6)};rport",
             "Max-Forwards: 70", f"From: {field('from')[0]}", f"To: {field('to')[0]}",
             f"Call-ID: {field('call-id')[0]}", f"CSeq: {cseq} ACK"]
    lines += [f"Route: {r}" for r in routes]
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def main():
    ap = argparse.ArgumentParser()
    for name in ("transport", "proxy_ip", "proxy_port", "user", "domain"):
        ap.add_argument(name)
    ap.add_argument("expires", type=int)
    ap.add_argument("answer_for", type=float)
    ap.add_argument("lifetime", type=float)
    ap.add_argument("--refresh", nargs=2, type=float)
    ap.add_argument("--subscribe")
    ap.add_argument("--call", action="append", default=[])
    ap.add_argument("--act-at", type=float, default=1.0)
    a = ap.parse_args()
    transport, proxy_ip, proxy_port, user, domain = a.transport, a.proxy_ip, a.proxy_port, a.user, a.domain
    expires, answer_for, lifetime = a.expires, a.answer_for, a.lifetime
    refresh_at = a.refresh[0] if a.refresh else None
    refresh_expires = int(a.refresh[1]) if a.refresh else 0
    act_at = a.act_at if (a.subscribe or a.call) else None
    proxy = (proxy_ip, int(proxy_port))
    if transport == "tcp":
        sock = socket.create_connection(proxy, timeout=5)
        send = sock.sendall
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(proxy)
        send = sock.send
    local = sock.getsockname()
    call_id = f"ka-{secrets.token_hex(6)}"
    start = time.monotonic()
    send(register(local, transport, proxy, user, domain, call_id, 1, expires))
    sock.settimeout(0.2)
    buf = b""
    while time.monotonic() - start < lifetime:
        if refresh_at is not None and time.monotonic() - start >= refresh_at:
            send(register(local, transport, proxy, user, domain, call_id, 2, refresh_expires))
            refresh_at = None
        if act_at is not None and time.monotonic() - start >= act_at:
            act_at = None
            if a.subscribe:
                send(dialog_request("SUBSCRIBE", local, transport, user, domain, a.subscribe,
                                    f"sub-{secrets.token_hex(6)}", 1, "Event: presence\r\nExpires: 300\r\n"))
            for target in a.call:
                send(dialog_request("INVITE", local, transport, user, domain, target,
                                    f"inv-{secrets.token_hex(6)}", 1))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            data = b""
        if not data:
            emit(start, event="closed")
            return
        buf = buf + data if transport == "tcp" else data
        while buf:
            if buf.startswith(b"\r\n\r\n"):  # RFC 5626 CRLF ping
                buf = buf[4:]
                answering = time.monotonic() - start < answer_for
                emit(start, event="ping", answered=answering)
                if answering:
                    send(b"\r\n")
                continue
            if buf.startswith(b"\r\n"):
                buf = buf[2:]
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].decode(errors="replace")
            length = re.search(r"(?im)^(content-length|l)\s*:\s*(\d+)", head)
            total = end + 4 + (int(length.group(2)) if length else 0)
            if len(buf) < total:
                break
            message, buf = buf[:total].decode(errors="replace"), buf[total:]
            first = message.split("\r\n", 1)[0]
            if first.startswith("SIP/2.0"):
                status = int(first.split()[1])
                cseq = re.search(r"(?im)^cseq\s*:\s*(\d+)", message)
                method = re.search(r"(?im)^cseq\s*:\s*\d+\s+(\w+)", message)
                method = method.group(1).upper() if method else ""
                if status >= 200 and method == "REGISTER":
                    emit(start, event="answer", status=status, cseq=int(cseq.group(1)) if cseq else 0)
                elif status >= 200 and method in ("INVITE", "SUBSCRIBE"):
                    emit(start, event="dialog", method=method, status=status)
                    if method == "INVITE" and status < 300:
                        send(ack_for(message, local, transport))
            elif first.startswith(("INVITE", "SUBSCRIBE")):
                method = first.split()[0]
                emit(start, event="request", method=method)
                reply = answer_200(message)
                contact = f"Contact: <sip:{user}@{local[0]}:{local[1]};transport={transport}>\r\n"
                extra = contact + ("Expires: 300\r\n" if method == "SUBSCRIBE" else "")
                rr = "".join(l + "\r\n" for l in message.split("\r\n\r\n", 1)[0].split("\r\n")
                             if re.match(r"(?i)record-route\s*:", l))
                send(reply.replace(b"Content-Length: 0", (rr + extra + "Content-Length: 0").encode()))
            elif first.startswith(("OPTIONS", "NOTIFY")):
                answering = time.monotonic() - start < answer_for
                emit(start, event="options", answered=answering)
                if answering:
                    send(answer_200(message))


if __name__ == "__main__":
    main()
