#!/usr/bin/env python3
"""The NAT lab's RTP tool: one UDP socket that sends a numbered RTP stream and/or receives one,
then prints a JSON summary on stdout. The media tests (media_tests.py) run it inside a lab
namespace as a phone (send and receive on the port its SDP names) or as a third party aiming at
a relay port (send only).

    rtp_tool.py --local IP:PORT [--to IP:PORT] [--count N] [--rate PPS] [--seq S] [--ssrc X]
                [--tag TEXT] [--start-at UNIX_TIME] [--linger SECONDS] [--max-seconds SECONDS]

Packets are RTP version 2, payload type 0, `count` of them at `rate` per second (50: one 20 ms
frame each) with consecutive sequence numbers from `seq` (wrapping at 65536) and timestamps
stepping by 8000/rate; the payload starts with `tag` and ':' so that a receiver can tell whose
packet it got. Sending starts at `start-at` (wall clock, shared by every namespace), so two
phones can start together. The tool receives the whole time and stops `linger` seconds after its
last send (or after `max-seconds` in all).

The summary: sent, first_seq/last_seq sent, send_start (UNIX time of the first send) and
interval; received (all datagrams), by_tag {tag: count}, sources {"ip:port": count}, and for each
tag the received sequence numbers in arrival order (seqs) plus first/last of them.
"""

import argparse
import json
import select
import socket
import struct
import sys
import time


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def packet(seq, timestamp, ssrc, tag):
    header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
    body = f"{tag}:{seq & 0xFFFF}:".encode()
    return header + body + b"\0" * max(0, 160 - len(body))  # a 20 ms PCMU frame's size


def parse(data):
    """(seq, tag) of an RTP packet from this tool, or (seq or None, None) for anything else."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None, None
    seq = struct.unpack("!H", data[2:4])[0]
    tag, sep, _ = data[12:76].partition(b":")
    return seq, (tag.decode("latin-1") if sep else None)


def run(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(endpoint(args.local))
    sock.setblocking(False)
    dest = endpoint(args.to) if args.to else None
    count = args.count if dest else 0
    interval = 1.0 / args.rate
    step = int(8000 / args.rate)
    start = max(args.start_at or 0.0, time.time())
    began = time.monotonic()
    # Absolute schedule on the monotonic clock, anchored to the wall-clock start.
    t0 = began + (start - time.time())
    summary = {"local": args.local, "to": args.to, "sent": 0, "send_errors": 0,
               "first_seq": None, "last_seq": None, "send_start": None, "interval": interval,
               "received": 0, "by_tag": {}, "sources": {}, "seqs": {}}
    sent = 0
    end = None
    while True:
        now = time.monotonic()
        if sent < count and now >= t0 + sent * interval:
            seq = (args.seq + sent) & 0xFFFF
            try:
                sock.sendto(packet(seq, args.seq * 7 + sent * step, args.ssrc, args.tag), dest)
            except OSError:
                summary["send_errors"] += 1
            if sent == 0:
                summary["send_start"] = time.time()
                summary["first_seq"] = seq
            summary["last_seq"] = seq
            sent += 1
            summary["sent"] = sent
            continue
        if end is None and sent >= count:
            end = now + args.linger
        if (end is not None and now >= end) or now - began >= args.max_seconds:
            break
        wake = min(x for x in (t0 + sent * interval if sent < count else None, end,
                               began + args.max_seconds) if x is not None)
        ready, _, _ = select.select([sock], [], [], max(0.0, min(wake - now, 0.5)))
        if not ready:
            continue
        while True:
            try:
                data, src = sock.recvfrom(2048)
            except BlockingIOError:
                break
            except OSError:  # an ICMP error for an earlier send (port unreachable...)
                summary["icmp_errors"] = summary.get("icmp_errors", 0) + 1
                continue
            summary["received"] += 1
            key = f"{src[0]}:{src[1]}"
            summary["sources"][key] = summary["sources"].get(key, 0) + 1
            seq, tag = parse(data)
            tag = tag if tag is not None else "?"
            summary["by_tag"][tag] = summary["by_tag"].get(tag, 0) + 1
            if seq is not None:
                summary["seqs"].setdefault(tag, []).append(seq)
    for tag, seqs in summary["seqs"].items():
        summary.setdefault("first_received", {})[tag] = seqs[0]
        summary.setdefault("last_received", {})[tag] = seqs[-1]
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--local", required=True, help="IP:PORT to bind (PORT 0: any)")
    ap.add_argument("--to", help="IP:PORT to send to (none: receive only)")
    ap.add_argument("--count", type=int, default=250)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seq", type=int, default=1)
    ap.add_argument("--ssrc", type=lambda s: int(s, 0), default=0x1234)
    ap.add_argument("--tag", default="rtp")
    ap.add_argument("--start-at", type=float, default=0.0)
    ap.add_argument("--linger", type=float, default=1.0)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
