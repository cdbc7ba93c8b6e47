"""The NAT lab: a real Linux NAT built from network namespaces (DESIGN.md section 5).

    ua1 192.168.1.10 --+                              +-- ua2 192.168.2.10
    ua1b 192.168.1.11 -+ nat1 (MASQUERADE            | nat2 (MASQUERADE --random-fully,
                       |  192.168.1.1/203.0.113.101)  |  192.168.2.1/203.0.113.102)
                       +------------ wan 203.0.113.0/24 -----------+
                pinhole 203.0.113.10   core 203.0.113.20   public ua 203.0.113.50
                (on demand: pinhole node B 203.0.113.11, Lab.add_wan_host("pinb"))

Every host is a network namespace named PREFIX<pid>-<role> (e.g. "phl4242-nat1"); the
owner's PID in the name lets a later run sweep what a killed run left behind. The `wan`
namespace holds only the bridge that joins the wan-side hosts. Interfaces have fixed short
names because each namespace has its own interface names (eth0/wan0/lan0 never clash).
Nothing in the lab has a route out of the lab: the NAT boxes have no default route, so a
packet for any address outside 203.0.113.0/24 or 192.168.0.0/16 dies inside the lab.

Stdlib only; must run as root. `Lab` is a context manager: on exit (also on exceptions and
SIGTERM) it stops every process it started and deletes its namespaces.
"""

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PREFIX = "phl"
STATE_DIR = "/run/pinhole-lab"
# `ip netns exec NS` bind-mounts /etc/netns/NS/<file> over /etc/<file> (resolv.conf, hosts):
# how a namespace gets its own DNS server without touching the host's /etc/resolv.conf.
NETNS_ETC = "/etc/netns"

WAN_NET = "203.0.113.0/24"
# role -> address on the wan bridge
WAN_HOSTS = {
    "nat1": "203.0.113.101",
    "nat2": "203.0.113.102",
    "pin": "203.0.113.10",
    "core": "203.0.113.20",
    "pub": "203.0.113.50",
}
# Wan hosts a test adds when it needs them (Lab.add_wan_host), not built in every lab:
# pinb is a second pinhole node (issue 4, two nodes sharing one Redis); coreb a second core
# node (issue 7: `proxy.lab` names core and coreb); dns the lab's DNS server (lab_dns.py).
EXTRA_WAN_HOSTS = {
    "pinb": "203.0.113.11",
    "coreb": "203.0.113.21",
    "dns": "203.0.113.53",
}
# nat role -> (lan gateway address, prefix length, {host role: address})
LANS = {
    "nat1": ("192.168.1.1", 24, {"ua1": "192.168.1.10", "ua1b": "192.168.1.11"}),
    "nat2": ("192.168.2.1", 24, {"ua2": "192.168.2.10"}),
}
# nat2 remaps source ports too (a "symmetric"-looking NAT); nat1 keeps them when it can.
RANDOM_FULLY = {"nat1": False, "nat2": True}

ADDR = dict(WAN_HOSTS)
ADDR.update(EXTRA_WAN_HOSTS)
for _gw, _plen, _hosts in LANS.values():
    ADDR.update(_hosts)
ROLES = ["wan"] + list(WAN_HOSTS) + [h for _, _, hosts in LANS.values() for h in hosts]

SKIP = 77  # ctest SKIP_RETURN_CODE


class LabError(RuntimeError):
    pass


class Terminated(BaseException):
    """Raised from the SIGTERM handler so that `with Lab()` cleans up on ctest's kill."""


# --------------------------------------------------------------------------- preconditions

def can_run_lab():
    """Returns None when the lab can be built here, else the reason why not."""
    if os.geteuid() != 0:
        return "the NAT lab needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "sysctl"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (scripts/install-deps.sh)"
    probe = f"{PREFIX}probe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        return f"cannot create network namespaces: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


def require_lab_or_exit(extra_tools=()):
    """Exits 77 (skip) with the reason when the lab cannot run, or 1 when CI=true.

    In CI the lab is a requirement (DESIGN.md section 5), so a missing precondition is a
    failure there; on a developer machine without root it is a skip with a printed reason.
    """
    reason = can_run_lab()
    if reason is None:
        missing = [t for t in extra_tools if shutil.which(t) is None]
        if missing:
            reason = f"missing tools: {', '.join(missing)} (run scripts/install-deps.sh)"
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        print(f"FAIL: {reason}; CI=true, so the NAT lab must run", file=sys.stderr)
        sys.exit(1)
    print(f"SKIP: {reason}", file=sys.stderr)
    sys.exit(SKIP)


# --------------------------------------------------------------------------- small helpers

def sh(argv, timeout=15, check=True, **kw):
    """Runs a host command (only `ip`/`iptables` aimed at lab namespaces go through here)."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(argv)} -> {r.returncode}: {r.stderr.strip()}")
    return r


def _proc_start_time(pid):
    """Field 22 of /proc/PID/stat; tells a live owner from a recycled PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM if the test process dies (even by SIGKILL),
    so a daemon in a namespace never outlives a test that ctest killed on timeout."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()  # own process group: we can signal the child and its children together


def _ns_pids(ns):
    r = sh(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in r.stdout.split()]


def _kill_ns_processes(ns):
    """Stops whatever still runs inside a namespace: TERM, a short grace, then KILL."""
    pids = _ns_pids(ns)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and _ns_pids(ns):
            time.sleep(0.05)
        pids = _ns_pids(ns)
        if not pids:
            return


def _delete_ns(ns):
    _kill_ns_processes(ns)
    sh(["ip", "netns", "del", ns], check=False)


def _lab_namespaces():
    """{owner pid: [namespace names]} of every lab namespace on this machine."""
    out = sh(["ip", "netns", "list"], check=False).stdout
    owners = {}
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{PREFIX}(\d+)-\w+", name)
        if m:
            owners.setdefault(int(m.group(1)), []).append(name)
    return owners


def sweep_stale():
    """Deletes namespaces of earlier runs whose owner is dead (or whose PID was recycled)."""
    swept = []
    for pid, names in _lab_namespaces().items():
        state = os.path.join(STATE_DIR, f"{pid}.json")
        recorded = None
        with contextlib.suppress(OSError, ValueError):
            with open(state) as f:
                recorded = json.load(f).get("start")
        alive = _proc_start_time(pid)
        if alive is not None and (recorded is None or recorded == alive):
            continue  # a live run (or one too young to have written its state file)
        for ns in names:
            _delete_ns(ns)
        swept += names
        with contextlib.suppress(OSError):
            os.unlink(state)
    # /etc/netns/<ns> directories (Lab.set_resolv_conf) of owners that are gone, with or without
    # a namespace left: `ip netns del` does not remove them.
    with contextlib.suppress(OSError):
        for name in os.listdir(NETNS_ETC):
            m = re.fullmatch(rf"{PREFIX}(\d+)-\w+", name)
            if m and _proc_start_time(int(m.group(1))) is None:
                shutil.rmtree(os.path.join(NETNS_ETC, name), ignore_errors=True)
                swept.append(os.path.join(NETNS_ETC, name))
    return swept


# --------------------------------------------------------------------------- processes

class Proc:
    """A process started in a namespace; output goes to <workdir>/<name>.out/.err."""

    def __init__(self, name, popen, out_path, err_path):
        self.name, self.popen, self.out_path, self.err_path = name, popen, out_path, err_path

    @property
    def pid(self):
        return self.popen.pid

    def running(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        """Exit code, or raises LabError when the process is still running after timeout."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"{self.name} still running after {timeout}s") from None

    def stop(self, grace=3.0):
        """SIGTERM to the process group, SIGKILL after `grace` seconds."""
        if self.popen.poll() is not None:
            return self.popen.returncode
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                return self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return self.popen.poll()

    def kill(self):
        """Abrupt death (SIGKILL): used to kill a UA's flow on purpose."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=5)

    def stdout(self):
        return _read(self.out_path)

    def stderr(self):
        return _read(self.err_path)


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# --------------------------------------------------------------------------- the lab

class Lab:
    """Builds the topology on enter, tears it down on exit.

    conntrack: {nat role: (udp_timeout, udp_stream_timeout)} in seconds, e.g. short UDP
        mappings so that keepalive behaviour shows in seconds.
    inbound_firewall: NAT boxes drop NEW connections arriving on their wan side, like a home
        router. MASQUERADE alone only rewrites sources: a wan host that had a route to
        192.168.1.0/24 via nat1 could otherwise reach ua1 directly.
    workdir: where process output, configs and traces go (created; kept after the run).
    """

    def __init__(self, workdir=None, conntrack=None, inbound_firewall=True, log=print):
        self.tag = f"{PREFIX}{os.getpid()}"
        self.workdir = workdir or tempfile.mkdtemp(prefix="pinhole-lab-")
        os.makedirs(self.workdir, exist_ok=True)
        self.conntrack = conntrack or {}
        self.inbound_firewall = inbound_firewall
        self.log = log
        self.procs = []
        self.created = []
        self._old_sigterm = None

    # -- lifecycle

    def __enter__(self):
        self._old_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        swept = sweep_stale()
        if swept:
            self.log(f"lab: swept stale namespaces {' '.join(swept)}")
        self._write_state()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _on_sigterm(self, signum, frame):
        raise Terminated("SIGTERM")

    def close(self):
        """Stops every process, deletes every namespace; safe to call twice."""
        for p in reversed(self.procs):
            with contextlib.suppress(Exception):
                p.stop(grace=2)
        self.procs.clear()
        for ns in reversed(self.created):
            _delete_ns(ns)
            shutil.rmtree(os.path.join(NETNS_ETC, ns), ignore_errors=True)
        self.created.clear()
        with contextlib.suppress(OSError):
            os.unlink(self._state_path())
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def _state_path(self):
        return os.path.join(STATE_DIR, f"{os.getpid()}.json")

    def _write_state(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        with open(self._state_path(), "w") as f:
            json.dump({"start": _proc_start_time(os.getpid()), "workdir": self.workdir}, f)

    # -- topology

    def ns(self, role):
        return f"{self.tag}-{role}"

    def _add_ns(self, role):
        sh(["ip", "netns", "add", self.ns(role)])
        self.created.append(self.ns(role))
        self.ip(role, "link", "set", "lo", "up")

    def ip(self, role, *args):
        return sh(["ip", "-n", self.ns(role), *args])

    def _veth(self, role_a, name_a, role_b, name_b):
        """A veth pair created inside role_a with its peer born inside role_b: the host's
        own namespace never sees either end."""
        self.ip(role_a, "link", "add", name_a, "type", "veth",
                "peer", "name", name_b, "netns", self.ns(role_b))
        self.ip(role_a, "link", "set", name_a, "up")
        self.ip(role_b, "link", "set", name_b, "up")

    def _build(self):
        for role in ROLES:
            self._add_ns(role)
        self.ip("wan", "link", "add", "br0", "type", "bridge")
        self.ip("wan", "link", "set", "br0", "up")
        for role, addr in WAN_HOSTS.items():
            self._veth("wan", f"p-{role}", role, "wan0")
            self.ip("wan", "link", "set", f"p-{role}", "master", "br0")
            self.ip(role, "addr", "add", f"{addr}/24", "dev", "wan0")
        for nat, (gw, plen, hosts) in LANS.items():
            self._build_lan(nat, gw, plen, hosts)
            self._build_nat(nat)

    def add_wan_host(self, role):
        """Adds one of EXTRA_WAN_HOSTS to the built lab: a namespace with its address on the
        wan bridge, like the wan hosts every lab has. Deleted with the lab."""
        if role not in EXTRA_WAN_HOSTS:
            raise LabError(f"{role!r} is not one of the extra wan hosts {sorted(EXTRA_WAN_HOSTS)}")
        if self.ns(role) in self.created:
            return
        self._add_ns(role)
        self._veth("wan", f"p-{role}", role, "wan0")
        self.ip("wan", "link", "set", f"p-{role}", "master", "br0")
        self.ip(role, "addr", "add", f"{EXTRA_WAN_HOSTS[role]}/24", "dev", "wan0")

    def set_resolv_conf(self, role, nameserver, port=53):
        """Points the resolver of everything later started in `role` (lab.spawn/exec go through
        `ip netns exec`) at `nameserver`: writes /etc/netns/<ns>/resolv.conf, which `ip netns
        exec` mounts over /etc/resolv.conf, and a hosts file with only localhost likewise, so the
        host's /etc/hosts cannot answer a lab name. Removed with the namespace."""
        if port != 53:
            raise LabError("resolv.conf has no port: the lab's DNS server must listen on 53")
        d = os.path.join(NETNS_ETC, self.ns(role))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write(f"nameserver {nameserver}\noptions timeout:1 attempts:2\n")
        with open(os.path.join(d, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n")

    def _build_lan(self, nat, gw, plen, hosts):
        self.ip(nat, "link", "add", "lan0", "type", "bridge")
        self.ip(nat, "addr", "add", f"{gw}/{plen}", "dev", "lan0")
        self.ip(nat, "link", "set", "lan0", "up")
        for host, addr in hosts.items():
            self._veth(nat, f"l-{host}", host, "eth0")
            self.ip(nat, "link", "set", f"l-{host}", "master", "lan0")
            self.ip(host, "addr", "add", f"{addr}/{plen}", "dev", "eth0")
            self.ip(host, "route", "add", "default", "via", gw)

    def _build_nat(self, nat):
        self.sysctl(nat, "net.ipv4.ip_forward", 1)
        masq = ["-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"]
        if RANDOM_FULLY[nat]:
            masq.append("--random-fully")
        self.iptables(nat, *masq)
        if self.inbound_firewall:
            self.iptables(nat, "-A", "FORWARD", "-i", "wan0", "-m", "conntrack",
                          "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
            self.iptables(nat, "-A", "FORWARD", "-i", "wan0", "-j", "DROP")
        udp, stream = self.conntrack.get(nat, (None, None))
        if udp is not None:
            self.set_conntrack_timeouts(nat, udp, stream)

    # -- knobs used by tests

    def sysctl(self, role, key, value):
        """Per-namespace sysctl (ip_forward and the conntrack timeouts are per netns)."""
        return self.exec(role, ["sysctl", "-q", "-w", f"{key}={value}"])

    def iptables(self, role, *args):
        return self.exec(role, ["iptables", "-w", "5", *args])

    def set_conntrack_timeouts(self, nat, udp, udp_stream=None):
        """UDP mapping lifetimes inside a NAT box: `udp` for one-way/unreplied flows,
        `udp_stream` for flows that saw traffic both ways (defaults to `udp`)."""
        self.sysctl(nat, "net.netfilter.nf_conntrack_udp_timeout", int(udp))
        self.sysctl(nat, "net.netfilter.nf_conntrack_udp_timeout_stream",
                    int(udp_stream if udp_stream is not None else udp))

    def conntrack_flush(self, nat):
        """Forgets every mapping of a NAT box (the next packet gets a new mapping)."""
        return self.exec(nat, ["conntrack", "-F"], check=False)

    def conntrack_list(self, nat):
        return self.exec(nat, ["conntrack", "-L"], check=False).stdout

    def route_private_via_nats(self, role):
        """Gives a wan host routes to the private LANs via their NAT boxes, so that what
        stops a new inbound connection is the NAT box, not the lack of a route."""
        for nat, (gw, plen, _) in LANS.items():
            net = gw.rsplit(".", 1)[0] + ".0"
            self.ip(role, "route", "add", f"{net}/{plen}", "via", WAN_HOSTS[nat])

    # -- running things inside namespaces

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def exec(self, role, argv, timeout=30, check=True, input=None):
        """Runs argv in a namespace to completion; returns CompletedProcess (text)."""
        full = ["ip", "netns", "exec", self.ns(role), *map(str, argv)]
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input,
                           preexec_fn=_die_with_parent)
        if check and r.returncode != 0:
            raise LabError(f"[{role}] {' '.join(map(str, argv))} -> {r.returncode}: "
                           f"{r.stderr.strip()}")
        return r

    def spawn(self, role, argv, name, cwd=None, stdin=subprocess.DEVNULL, env=None):
        """Starts argv in a namespace in the background; stdout/stderr go to files named
        after `name` in the workdir. The lab stops it on exit at the latest."""
        out, err = self.path(f"{name}.out"), self.path(f"{name}.err")
        full = ["ip", "netns", "exec", self.ns(role), *map(str, argv)]
        with open(out, "wb") as fo, open(err, "wb") as fe:
            popen = subprocess.Popen(full, stdout=fo, stderr=fe, stdin=stdin, cwd=cwd, env=env,
                                     preexec_fn=_die_with_parent)
        self.log(f"lab: [{role}] {name}: {' '.join(map(str, argv))}")
        proc = Proc(name, popen, out, err)
        self.procs.append(proc)
        return proc

    def helper(self, role, *args, timeout=30, check=True):
        """Runs one of nshelper.py's small tools (UDP echo/probe, netstring...) in a ns."""
        me = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nshelper.py")
        return self.exec(role, [sys.executable, me, *args], timeout=timeout, check=check)

    def spawn_helper(self, role, name, *args):
        me = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nshelper.py")
        return self.spawn(role, [sys.executable, me, *args], name)


def wait_until(predicate, timeout, what, interval=0.1):
    """Polls predicate() until truthy; returns its value or raises LabError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


if __name__ == "__main__":
    # `python3 lab.py sweep`: remove namespaces left by killed runs (safe any time).
    if sys.argv[1:] == ["sweep"]:
        print("\n".join(sweep_stale()) or "nothing to sweep")
    else:
        print("usage: lab.py sweep", file=sys.stderr)
        sys.exit(2)
