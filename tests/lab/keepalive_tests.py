#!/usr/bin/env python3
"""NAT-lab acceptance tests of pinhole's NAT keepalive engine (issue 5, acceptance 1, 2, 4, 5, 6).

pinhole runs as the registrar of lab.test (no upstream, digest auth off: these tests are about
the NAT mapping, not credentials). SIPp UAs behind nat1 register and then stay silent; nat1's
conntrack UDP timeouts are shortened so that an unrefreshed mapping really disappears, and a
call from the core 60-75 s later proves whether pinhole kept the mapping open. Importing this
module registers its tests (labtest.TESTS) for run_test.py.
"""

import json
import os
import secrets
import subprocess

from lab import ADDR, LabError, wait_until
from labtest import expect, step, test
from peers import REG_DOMAIN, Sipp, settle, shared_call_id

PIN = ADDR["pin"]


def keepalive_config(lab, name, sip_port, admin_port, keepalive=None):
    """Registrar mode on PIN:<sip_port> with its own SQLite store; `keepalive` maps keys of the
    `keepalive:` section to YAML values (None: no section at all, the defaults). The registrar's
    short lease for NATed UDP phones is off: these UAs are silent on purpose, and only the
    keepalives may keep their NAT mapping open."""
    section = ""
    if keepalive is not None:
        section = "keepalive:\n" + "".join(f"  {k}: {v}\n" for k, v in keepalive.items())
    text = f"""workers: 2
listen:
  - {{ transport: udp, address: {PIN}, port: {sip_port} }}
  - {{ transport: tcp, address: {PIN}, port: {sip_port} }}
registrar:
  domains: [{REG_DOMAIN}]
  min_expires: 10s
  max_expires: 3600s
  nat_udp_lease: 0s
auth: {{ enabled: false }}
store: sqlite://{lab.path(name + '.db')}
flow_tokens: {{ secret: "hex:{secrets.token_hex(16)}" }}
admin: {{ listen: 127.0.0.1:{admin_port} }}
node_id: {name}
log: {{ level: debug }}
{section}"""
    path = lab.path(f"{name}.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


class KeepalivePinhole:
    """One pinhole registrar in the `pin` namespace on its own SIP and admin ports; start()
    after stop() restarts it on the same config and store (an operator's restart)."""

    def __init__(self, lab, binary, name, sip_port=5060, admin_port=9060, keepalive=None,
                 config=None):
        """`config`: a config file written by the caller (with the same SIP and admin ports)
        instead of keepalive_config's."""
        if not binary or not os.path.exists(binary):
            raise LabError(f"pinhole daemon not built: {binary!r}")
        self.lab, self.binary, self.name = lab, binary, name
        self.sip_port, self.admin_port, self.starts = sip_port, admin_port, 0
        self.config = config or keepalive_config(lab, name, sip_port, admin_port, keepalive)
        check = subprocess.run([binary, "--check-config", self.config], capture_output=True,
                               text=True, timeout=20)
        if check.returncode != 0:
            raise LabError(f"--check-config rejected {self.config}: {check.stdout}{check.stderr}")
        self.start()

    @property
    def sip(self):
        return f"{PIN}:{self.sip_port}"

    def start(self):
        self.starts += 1
        self.proc = self.lab.spawn("pin", [self.binary, "--config", self.config],
                                   f"{self.name}-{self.starts}")
        wait_until(self._ready, 15, f"{self.name}'s admin /health")

    def stop(self, kill=False):
        if kill:
            self.proc.kill()
        else:
            self.proc.stop()

    def admin(self, path):
        code = ("import sys,urllib.request;"
                "print(urllib.request.urlopen(sys.argv[1],timeout=3).read().decode())")
        r = self.lab.exec("pin", ["python3", "-c", code,
                                  f"http://127.0.0.1:{self.admin_port}{path}"],
                          check=False, timeout=10)
        return r.stdout if r.returncode == 0 else None

    def _ready(self):
        if not self.proc.running():
            raise LabError(f"{self.name} exited: {self.proc.stderr()[-3000:]}")
        return self.admin("/health") is not None

    def metric(self, name):
        total = 0.0
        for line in (self.admin("/metrics") or "").splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rpartition(" ")[2])
        return total

    def endpoints(self):
        body = self.admin("/keepalive")
        return json.loads(body) if body else None

    def log(self, n=4000):
        return self.proc.stderr()[-n:]


def register_silent_ua(lab, pin, user, port, timeout):
    """A SIPp UA at ua1 (behind nat1) that registers (expires 300) and then only answers: an
    INVITE (the test's call) and, with -aa, keepalive OPTIONS. Returns (sipp, call_id)."""
    cid = shared_call_id(user)
    ua = Sipp(lab, "ua1", "ua_answer.xml", pin.sip, user, f"ua-{user}", domain=REG_DOMAIN,
              call_id=cid, port=port, timeout=timeout, expires=300)
    wait_until(lambda: ua.received("SIP/2.0 200"), 15, f"{user}'s REGISTER answered 200")
    return ua, cid


def call_from_core(lab, pin, user, cid, port, timeout=12):
    """SIPp in the core calls user@lab.test through `pin` (same Call-ID as the UA's run)."""
    return Sipp(lab, "core", "uac_call.xml", pin.sip, user, f"uac-{user}", domain=REG_DOMAIN,
                call_id=cid, port=port, timeout=timeout)


def reached(ua, uac):
    """Waits for the caller to finish; True when the INVITE reached the UA."""
    uac.wait()
    return ua.received("INVITE ")


# --------------------------------------------------------------------------- acceptance 1

@test("sipp", "conntrack")
def keepalive_default_nat20(lab, args):
    """Acceptance 1: nat1 forgets idle UDP mappings after 20 s; with no keepalive settings at all,
    a UA registered over UDP still gets a call after 75 s of silence."""
    lab.set_conntrack_timeouts("nat1", 20)
    pin = KeepalivePinhole(lab, args.pinhole, "pin-default")
    ua, cid = register_silent_ua(lab, pin, "alice", 5060, timeout=140)
    step("75 s of silence from the UA")
    settle(75)
    sent = pin.metric("pinhole_keepalive_sent_total")
    expect(sent >= 4, f"only {sent} keepalives sent in 75 s with the default 15 s interval\n{pin.log()}")
    step("a call from the core reaches the UA through nat1")
    uac = call_from_core(lab, pin, "alice", cid, 5070, timeout=20)
    expect(reached(ua, uac), f"the INVITE never reached alice after 75 s\n{uac.explain()}\n"
                             f"{ua.explain()}\n{pin.log()}")
    expect(ua.wait() == 0, f"alice's call did not complete\n{ua.explain()}")


# --------------------------------------------------------------------------- acceptance 2 + 5

def two_pinholes(lab, args):
    on = KeepalivePinhole(lab, args.pinhole, "pin-on", 5060, 9060,
                          {"udp_interval": "5s", "min_interval": "5s"})
    off = KeepalivePinhole(lab, args.pinhole, "pin-off", 5062, 9062, {"enabled": "false"})
    return on, off


def expect_on_reached_off_not(lab, on, off, ua_on, cid_on, ua_off, cid_off):
    uac_on = call_from_core(lab, on, "alice", cid_on, 5070, timeout=20)
    uac_off = call_from_core(lab, off, "bob", cid_off, 5080, timeout=12)  # RTP ports apart
    got_on, got_off = reached(ua_on, uac_on), reached(ua_off, uac_off)
    expect(got_on, f"with keepalives the INVITE never reached alice\n{uac_on.explain()}\n"
                   f"{ua_on.explain()}\n{on.log()}")
    expect(not got_off, "without keepalives the INVITE still reached bob: the lab NAT did not "
                        "expire the mapping, so this test proves nothing\n" + off.log())


@test("sipp", "conntrack")
def keepalive_nat10(lab, args):
    """Acceptance 2: nat1 forgets idle UDP mappings after 10 s. Two UAs at ua1 register (expires
    300) to two pinholes, one with keepalives every 5 s and one with keepalives off, then stay
    silent; 60 s later a call to each: only the kept-alive UA is reached."""
    lab.set_conntrack_timeouts("nat1", 10)
    on, off = two_pinholes(lab, args)
    ua_on, cid_on = register_silent_ua(lab, on, "alice", 5060, timeout=120)
    ua_off, cid_off = register_silent_ua(lab, off, "bob", 5064, timeout=120)
    step("60 s of silence from both UAs")
    settle(60)
    expect_on_reached_off_not(lab, on, off, ua_on, cid_on, ua_off, cid_off)


@test("sipp", "conntrack")
def keepalive_restart(lab, args):
    """Acceptance 5: as keepalive_nat10, with the kept-alive pinhole restarted (SIGTERM) 20 s into
    the silence: the endpoint is reloaded from the store and still kept alive."""
    lab.set_conntrack_timeouts("nat1", 10)
    on, off = two_pinholes(lab, args)
    ua_on, cid_on = register_silent_ua(lab, on, "alice", 5060, timeout=120)
    ua_off, cid_off = register_silent_ua(lab, off, "bob", 5064, timeout=120)
    settle(20)
    step("restart the kept-alive pinhole")
    on.stop()
    on.start()
    shown = on.endpoints()
    expect(len(endpoint_list(shown)) == 1,
           f"the endpoint was not reloaded after the restart: {shown}\n{on.log()}")
    settle(40)
    expect_on_reached_off_not(lab, on, off, ua_on, cid_on, ua_off, cid_off)


# --------------------------------------------------------------------------- raw UA

UA_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keepalive_ua.py")


def raw_ua(lab, pin, transport, user, expires, answer_for, lifetime, refresh=None, role="ua1",
           extra=()):
    """keepalive_ua.py at `role` (ua1: behind nat1); `refresh`: (at seconds, expires) of a second
    REGISTER; `extra`: more keepalive_ua.py options (--subscribe, --call)."""
    argv = ["python3", UA_SCRIPT, transport, PIN, str(pin.sip_port), user, REG_DOMAIN,
            str(expires), str(answer_for), str(lifetime), *extra]
    if refresh:
        argv += ["--refresh", str(refresh[0]), str(refresh[1])]
    return lab.spawn(role, argv, f"raw-ua-{user}")


def events(proc, kind=None):
    """The --json event lines a process printed (parsed), optionally only those named `kind`."""
    out = []
    for line in proc.stdout().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if kind is None or e.get("event") == kind:
            out.append(e)
    return out


def endpoint_list(shown):
    """The endpoints of a GET /keepalive answer (a list, or an object holding one)."""
    if isinstance(shown, dict):
        shown = shown.get("endpoints", [])
    return shown or []


# --------------------------------------------------------------------------- acceptance 3

@test("conntrack", "tshark")
def keepalive_one_stream(lab, args):
    """Acceptance 3: a UA registered, subscribed and in two dialogs (four reasons on one flow)
    gets exactly one keepalive per interval (5 s): counted by a capture at pinhole's socket."""
    pin = KeepalivePinhole(lab, args.pinhole, "pin-one",
                           keepalive={"udp_interval": "5s", "min_interval": "5s"})
    bob = raw_ua(lab, pin, "udp", "bob", 300, answer_for=120, lifetime=60, role="ua2")
    wait_until(lambda: events(bob, "answer"), 15, "bob's REGISTER answered")
    alice = raw_ua(lab, pin, "udp", "alice", 300, answer_for=120, lifetime=60,
                   extra=["--subscribe", "bob", "--call", "bob", "--call", "bob", "--act-at", "1"])
    wait_until(lambda: len(events(alice, "dialog")) >= 3, 15,
               "alice's SUBSCRIBE and two INVITEs answered")
    got = {(e["method"], e["status"]) for e in events(alice, "dialog")}
    expect(got == {("SUBSCRIBE", 200), ("INVITE", 200)}, f"alice's dialogs: {events(alice, 'dialog')}")
    shown = [e for e in endpoint_list(pin.endpoints()) if e.get("remote", "").startswith(ADDR["nat1"])]
    expect(len(shown) == 1, f"alice's flow should be one endpoint: {shown}")
    kinds = sorted(r["kind"] for r in shown[0]["reasons"])
    expect(kinds == ["dialog", "dialog", "registration", "subscription"],
           f"alice's endpoint reasons: {kinds}")
    step("capture 30 s at pinhole's SIP socket: keepalives to alice's public address")
    pcap = lab.path("one-stream.pcap")
    cap = lab.spawn("pin", ["tshark", "-i", "any", "-a", "duration:30", "-w", pcap, "-f",
                            f"udp and src port {pin.sip_port} and dst host {ADDR['nat1']}"],
                    "tshark-one")
    cap.wait(45)
    r = subprocess.run(["tshark", "-r", pcap, "-Y", "sip.Method == \"OPTIONS\"", "-T", "fields",
                        "-e", "frame.time_relative"], capture_output=True, text=True, timeout=30)
    times = [float(t) for t in r.stdout.split()]
    # One stream every 5 s over 30 s: 6 (the capture's edges may hold 5 or 7), never 4 streams' worth.
    expect(5 <= len(times) <= 7, f"{len(times)} keepalives to alice in 30 s (one stream every 5 s "
                                 f"expected): {times}\n{r.stderr}")
    gaps = [b - a for a, b in zip(times, times[1:])]
    expect(all(4.0 <= g <= 6.0 for g in gaps), f"keepalives not evenly spaced: gaps {gaps}")


# --------------------------------------------------------------------------- acceptance 4

@test("conntrack")
def keepalive_expiry(lab, args):
    """Acceptance 4: a registration of 20 s, keepalives every 5 s: they stop within one interval
    after the registration expired; a refresh from the same socket answered 423 (5 s is below
    min_expires) changes nothing."""
    pin = KeepalivePinhole(lab, args.pinhole, "pin-expiry",
                           keepalive={"udp_interval": "5s", "min_interval": "5s"})
    ua = raw_ua(lab, pin, "udp", "carol", 20, answer_for=60, lifetime=45, refresh=(3, 5))
    wait_until(lambda: len(events(ua, "answer")) >= 2, 15, "carol's REGISTER and refresh answered")
    answers = {e["cseq"]: e["status"] for e in events(ua, "answer")}
    expect(answers == {1: 200, 2: 423}, f"REGISTER answers {answers} (expected 200, then 423)")
    shown = endpoint_list(pin.endpoints())
    expect(len(shown) == 1, f"carol is not kept alive after the 423: {shown}")
    ua.wait(50)
    pings = [e["t"] for e in events(ua, "options")]
    expect(len([t for t in pings if t <= 20]) >= 3, f"keepalives while registered: {pings}")
    late = [t for t in pings if t > 20 + 5 + 1]
    expect(not late, f"keepalives after the registration expired (+ one interval): {late}\n"
                     f"{pin.log()}")
    expect(not endpoint_list(pin.endpoints()), "the endpoint outlived its registration")


# --------------------------------------------------------------------------- acceptance 6

@test("conntrack")
def keepalive_tcp(lab, args):
    """Acceptance 6: a UA registered over TCP gets CRLF pings (every 5 s) and its pongs count;
    when it stops answering, pinhole closes the flow after max_misses (2) and counts it."""
    pin = KeepalivePinhole(lab, args.pinhole, "pin-tcp", keepalive={
        "stream_interval": "5s", "pong_timeout": "2s", "max_misses": "2"})
    ua = raw_ua(lab, pin, "tcp", "dave", 300, answer_for=14, lifetime=60)
    wait_until(lambda: events(ua, "answer"), 15, "dave's TCP REGISTER answered")
    wait_until(lambda: events(ua, "closed") or not ua.running(), 50,
               "pinhole closing the silent TCP flow")
    pings = events(ua, "ping")
    answered = [e for e in pings if e["answered"]]
    unanswered = [e for e in pings if not e["answered"]]
    expect(len(answered) >= 2, f"CRLF pings while answering: {pings}")
    expect(len(unanswered) >= 2, f"the flow was closed before max_misses unanswered pings: {pings}")
    expect(events(ua, "closed"), f"pinhole never closed the flow: {events(ua)}")
    expect(pin.metric("pinhole_keepalive_dead_total") == 1,
           f"dead endpoints counted: {pin.metric('pinhole_keepalive_dead_total')}")
    expect(pin.metric("pinhole_keepalive_replies_total") >= 2, "pongs not counted as replies")
    expect(pin.metric("pinhole_keepalive_bindings_removed_total") == 1,
           f"dave's binding stayed after his flow died\n{pin.log()}")
