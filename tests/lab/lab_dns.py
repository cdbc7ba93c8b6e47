"""The NAT lab's DNS server (issue 7, acceptance 1): dnsmasq in a wan namespace (default `dns`,
203.0.113.53) answering for the lab's own names only, from a hosts file in the workdir: no
upstream servers, no /etc/hosts, no DHCP. A name listed with several addresses gets all of them
in every answer, in rotating order (dnsmasq's default round robin), like a DNS name in front of a
cluster. Queries are logged to dnsmasq's stderr (<name>.err in the workdir).

Also a tiny stub resolver, run as `python3 lab_dns.py query SERVER NAME` inside a namespace: one A
query over UDP, the addresses in answer order as JSON. The tests use it to see the round robin
through the NAT the UAs sit behind (the UA itself resolves with c-ares via the namespace's
/etc/netns resolv.conf, Lab.set_resolv_conf).
"""

import json
import os
import random
import re
import socket
import struct
import sys

from lab import ADDR, LabError, wait_until

LAB_DOMAIN = "lab"  # answered locally (NXDOMAIN for unknown names), never forwarded


class Dnsmasq:
    """dnsmasq in `role` serving `records` ({name: [IPv4, ...]}) on ADDR[role]:53. The Lab
    stops it at the latest on exit; nothing is written outside the workdir."""

    def __init__(self, lab, records, role="dns", name="dnsmasq"):
        self.lab, self.role, self.name, self.address = lab, role, name, ADDR[role]
        if role not in ("core", "pub", "pin") and lab.ns(role) not in lab.created:
            lab.add_wan_host(role)
        self.hosts = lab.path(f"{name}.hosts")
        with open(self.hosts, "w") as f:
            for host, addrs in records.items():
                for a in addrs:
                    f.write(f"{a} {host}\n")
        os.chmod(self.hosts, 0o644)  # read after dnsmasq dropped to `nobody`
        argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--no-poll", f"--addn-hosts={self.hosts}",
                f"--local=/{LAB_DOMAIN}/", "--domain-needed", "--bogus-priv",
                f"--listen-address={self.address}", "--bind-interfaces", "--port=53",
                "--local-ttl=1", "--cache-size=0", "--pid-file=", "--log-queries",
                "--log-facility=-"]
        self.proc = lab.spawn(role, argv, name)
        wait_until(self._ready, 10, f"{name} answering on {self.address}:53")

    def _ready(self):
        if not self.proc.running():
            raise LabError(f"dnsmasq exited: {self.proc.stderr()[-2000:]}")
        first = next(iter(_read_hosts(self.hosts)), None)
        return first is None or bool(self.query(self.role, first))

    def query(self, role, qname):
        """The A records of `qname` as dnsmasq answers a stub in `role`, in answer order."""
        me = os.path.abspath(__file__)
        r = self.lab.exec(role, [sys.executable, me, "query", self.address, qname], check=False,
                          timeout=10)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return []

    def queries(self, qtype="A", qname=None):
        """(name, source address) of each query dnsmasq logged, e.g. to count the UA's."""
        out = []
        for m in re.finditer(r"query\[(\w+)\] (\S+) from (\S+)", self.log()):
            if m.group(1) == qtype and (qname is None or m.group(2) == qname):
                out.append((m.group(2), m.group(3)))
        return out

    def log(self):
        return self.proc.stderr() + self.proc.stdout()


def _read_hosts(path):
    with open(path) as f:
        return [line.split()[1] for line in f if line.strip()]


# --------------------------------------------------------------------------- stub resolver

def a_query(server, qname, timeout=2.0):
    """One A query over UDP to server:53; the answer's IPv4 addresses in order (RFC 1035)."""
    qid = random.randrange(65536)
    question = b"".join(bytes([len(p)]) + p.encode() for p in qname.split(".")) + b"\0"
    msg = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.sendto(msg, (server, 53))
    data = s.recv(4096)
    rid, flags, qd, an = struct.unpack("!HHHH", data[:8])
    if rid != qid or flags & 0x000F:
        return []
    i = 12
    for _ in range(qd):
        i = _skip_name(data, i) + 4
    addrs = []
    for _ in range(an):
        i = _skip_name(data, i)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(data[i:i + 4]))
        i += rdlen
    return addrs


def _skip_name(data, i):
    while True:
        n = data[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "query":
        try:
            print(json.dumps(a_query(sys.argv[2], sys.argv[3])))
        except OSError as e:
            print(json.dumps([]))
            print(f"query failed: {e}", file=sys.stderr)
    else:
        print("usage: lab_dns.py query SERVER NAME", file=sys.stderr)
        sys.exit(2)
