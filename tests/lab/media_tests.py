"""NAT-lab acceptance tests of the media relay `pinhole-media` (issue 6, acceptance 3, 6, 7 and
the relay's side of 1 and 2). Importing this module registers them (labtest.TESTS).

Topology (lab.py): pinhole-media in `pin` (203.0.113.10, ng on UDP 2223, relay ports
30000-30099), Kamailio with its `rtpengine` module and nathelper in `core` (kamailio/media.cfg),
phone ua1 behind nat1 and phone ua2 behind nat2 (MASQUERADE --random-fully). The phones'
signalling is raw SIP from registrar_tests.Agent (one UDP socket per phone, driven from here), so
that the SDP names exactly the private address and port the phone's RTP tool (rtp_tool.py)
uses. ua2 registers (Kamailio keeps its NAT mapping), ua1 calls it through Kamailio; Kamailio
sends offer/answer/delete to pinhole-media; the phones send RTP to the address and port their
received SDP names, the callee first and the caller STAGGER later (as a callee that answered
and a caller that got the 200 would).

What "arrived" means: a NAT drops packets for a phone until that phone has sent its first
packet (the mapping does not exist yet), and the relay cannot know a phone's public port before
that packet either: until then it sends to the SDP address. The relay says how many packets of
each leg it forwarded before the other leg latched ("forwarded unlatched"); the test checks that
number against the phones' own send times and requires >= 99.9 % of the rest to arrive. The
caller starts after the callee's NAT is open, so its stream must arrive whole from its very
first packet (no clipping at the phone). The relay's side of "no clipping" is checked on its
own counters: the first sequence number it forwarded from each leg is the first one the phone
sent (it did not wait to latch).
"""

import json
import os
import re
import secrets
import sys
import time

from lab import ADDR, LabError, wait_until
from labtest import TestFailure, expect, step, test
from peers import Kamailio, PinholeMedia, bdecode
from registrar_tests import Agent, request

HERE = os.path.dirname(os.path.abspath(__file__))
RTP_TOOL = os.path.join(HERE, "rtp_tool.py")
KAM = (ADDR["core"], 5060)
DOMAIN = "lab.example"
RELAY = ADDR["pin"]
PORTS = "30000-30099"
PHONE_RTP = {"ua1": 40000, "ua2": 40002, "ua1b": 40004}  # the private ports the phones' SDPs advertise
PUBLIC = {"ua1": ADDR["nat1"], "ua2": ADDR["nat2"]}
PACKETS = 250  # per phone: 5 s at 50 packets/s
# The caller's RTP starts this long after the callee's (half a packet interval off the callee's
# schedule, so that no callee packet races the caller's first one at the relay).
STAGGER = 0.25
MIN_ARRIVAL = 0.999


def need_media_binary(args):
    binary = getattr(args, "pinhole_media", None)
    if not binary or not os.access(binary, os.X_OK):
        raise TestFailure(f"pinhole-media not built: {binary!r} (--pinhole-media)")
    return binary


def sdp_offer(role, port, version=1):
    """A phone's SDP: its PRIVATE address and port, as a phone behind NAT writes it."""
    ip = ADDR[role]
    return (f"v=0\r\no={role} 4242 {version} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


def sdp_media(text):
    """(address, port) of the first m= stream in a SIP message or SDP (media-level c= wins).
    Header lines never start with "m=" or "c=", so the whole text can be scanned."""
    addr, port = None, None
    for line in re.split(r"\r?\n", text):
        if line.startswith("m="):
            if port is not None:
                break
            port = int(line.split()[1])
        elif line.startswith("c=") and (port is not None or addr is None):
            addr = line.split()[2]
    return addr, port


# --------------------------------------------------------------------------- SIP phones

class Phone:
    """A SIP phone at `role` (ua1/ua1b/ua2) on UDP 5060 behind its NAT; `proxy` (Kamailio by
    default) is its outbound proxy and registrar for `domain`."""

    def __init__(self, lab, role, user, proxy=KAM, domain=DOMAIN):
        self.lab, self.role, self.user, self.domain = lab, role, user, domain
        self.agent = Agent(lab, role, f"sip-{role}", port=5060, lifetime=120, remote=proxy)
        self.uri = f"sip:{user}@{domain}"
        self.contact = f"<sip:{user}@{ADDR[role]}:5060>"
        self.tag = secrets.token_hex(4)

    def register(self):
        text = request("REGISTER", f"sip:{self.domain}", via=self.agent.via, from_uri=self.uri,
                       from_tag=self.tag, to_uri=self.uri,
                       call_id=f"{secrets.token_hex(6)}@{ADDR[self.role]}", cseq=1,
                       contact=self.contact, headers=["Expires: 300"])
        final = self.agent.transact(text, what=f"REGISTER of {self.user}")
        expect(final.status == 200, f"{self.user}'s REGISTER got {final.start}")

    def wait_request(self, method, call_id, seen=0, timeout=10):
        def find():
            for m in self.agent.received()[seen:]:
                if m.start.startswith(method + " ") and m.header("call-id") == call_id:
                    return m
            return None
        try:
            return wait_until(find, timeout, f"{method} at {self.role}", interval=0.05)
        except LabError as e:
            raise TestFailure(str(e)) from None

    def wait_response(self, cseq, call_id, status, seen=0, timeout=10):
        def find():
            for m in self.agent.received()[seen:]:
                if m.status is not None and m.header("call-id") == call_id and \
                        m.header("cseq") == cseq:
                    if m.status >= 300:
                        raise TestFailure(f"{cseq} got {m.start}")
                    if m.status == status:
                        return m
            return None
        try:
            return wait_until(find, timeout, f"{status} to {cseq} at {self.role}", interval=0.05)
        except LabError as e:
            raise TestFailure(str(e)) from None

    def respond(self, req, status, reason, to_tag, body=""):
        """A response to `req` carrying its Via, Record-Route, From, Call-ID and CSeq."""
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.values("via")]
        lines += [f"Record-Route: {v}" for v in req.values("record-route")]
        to = req.header("to")
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines += [f"From: {req.header('from')}", f"To: {to}",
                  f"Call-ID: {req.header('call-id')}", f"CSeq: {req.header('cseq')}",
                  f"Contact: {self.contact}"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.agent.send("\r\n".join(lines) + "\r\n\r\n" + body)


class Call:
    """ua1 calls ua2 through Kamailio; the relay is in the SDPs both receive."""

    def __init__(self, caller, callee):
        self.caller, self.callee = caller, callee
        self.call_id = f"media-{secrets.token_hex(6)}@{ADDR[caller.role]}"
        self.from_tag = caller.tag
        self.to_tag = secrets.token_hex(4)
        self.routes = []
        self.remote_target = None
        self.to_header = None

    def establish(self):
        """INVITE -> 180, 200 -> ACK. Returns (caller's relay target, callee's relay target):
        the (address, port) each phone's received SDP names."""
        c, e = self.caller, self.callee
        invite = request("INVITE", e.uri, via=c.agent.via, from_uri=c.uri,
                         from_tag=self.from_tag, to_uri=e.uri, call_id=self.call_id, cseq=1,
                         contact=c.contact, body=sdp_offer(c.role, PHONE_RTP[c.role]))
        seen_c, seen_e = len(c.agent.received()), len(e.agent.received())
        c.agent.send(invite)
        inv = e.wait_request("INVITE", self.call_id, seen_e)
        callee_target = sdp_media(inv.text)
        # The callee's side of the dialog (RFC 3261 12.1.1): route set = Record-Route as received.
        self.callee_routes = [r for v in inv.values("record-route") for r in split_rr(v)]
        self.callee_remote = re.search(r"<([^>]+)>", inv.header("contact")).group(1)
        self.caller_from = inv.header("from")
        e.respond(inv, 180, "Ringing", self.to_tag)
        e.respond(inv, 200, "OK", self.to_tag, sdp_offer(e.role, PHONE_RTP[e.role]))
        ok = c.wait_response("1 INVITE", self.call_id, 200, seen_c)
        caller_target = sdp_media(ok.text)
        # The dialog as RFC 3261 12.1.2 builds it at the UAC: route set = reversed Record-Route.
        self.routes = [r for v in reversed(ok.values("record-route"))
                       for r in reversed(split_rr(v))]
        self.remote_target = re.search(r"<([^>]+)>", ok.header("contact")).group(1)
        self.to_header = ok.header("to")
        c.agent.send(self.in_dialog("ACK", 1))
        e.wait_request("ACK", self.call_id, seen_e)
        return caller_target, callee_target

    def in_dialog(self, method, cseq):
        c = self.caller
        branch = "z9hG4bK" + secrets.token_hex(8)
        lines = [f"{method} {self.remote_target} SIP/2.0",
                 f"Via: SIP/2.0/UDP {c.agent.host}:{c.agent.port};branch={branch};rport",
                 "Max-Forwards: 70", f"From: <{c.uri}>;tag={self.from_tag}",
                 f"To: {self.to_header}", f"Call-ID: {self.call_id}", f"CSeq: {cseq} {method}"]
        lines += [f"Route: {r}" for r in self.routes]
        lines += [f"Contact: {c.contact}", "Content-Length: 0"]
        return "\r\n".join(lines) + "\r\n\r\n"

    def from_callee(self, method, cseq, body=""):
        """An in-dialog request from the callee (a re-INVITE moving its media, say)."""
        e = self.callee
        branch = "z9hG4bK" + secrets.token_hex(8)
        lines = [f"{method} {self.callee_remote} SIP/2.0",
                 f"Via: SIP/2.0/UDP {e.agent.host}:{e.agent.port};branch={branch};rport",
                 "Max-Forwards: 70", f"From: {self.to_header}", f"To: {self.caller_from}",
                 f"Call-ID: {self.call_id}", f"CSeq: {cseq} {method}"]
        lines += [f"Route: {r}" for r in self.callee_routes]
        lines.append(f"Contact: {e.contact}")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def hang_up(self):
        c, e = self.caller, self.callee
        seen_c, seen_e = len(c.agent.received()), len(e.agent.received())
        c.agent.send(self.in_dialog("BYE", 2))
        bye = e.wait_request("BYE", self.call_id, seen_e)
        e.respond(bye, 200, "OK", None)
        c.wait_response("2 BYE", self.call_id, 200, seen_c)


def split_rr(value):
    return [p.strip() for p in re.findall(r"<[^>]*>[^,]*", value)]


# --------------------------------------------------------------------------- media helpers

def start_phone_rtp(lab, role, target, seq, start_at, tag=None, count=PACKETS, linger=2.0,
                    port=None):
    """rtp_tool.py at the phone's advertised private port (or `port`), sending to `target`."""
    argv = [sys.executable, RTP_TOOL, "--local", f"{ADDR[role]}:{port or PHONE_RTP[role]}",
            "--to", f"{target[0]}:{target[1]}", "--count", count, "--seq", seq,
            "--ssrc", hex(0x10000 + seq), "--tag", tag or role, "--start-at", f"{start_at:.6f}",
            "--linger", linger, "--max-seconds", count / 50 + 20]
    return lab.spawn(role, argv, f"rtp-{role}")


def rtp_summary(proc, timeout=40):
    rc = proc.wait(timeout)
    try:
        return json.loads(proc.stdout().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise TestFailure(f"{proc.name} exited {rc} without a summary: {proc.stderr()[-1500:]}")


# Packets a relay may forward to a leg's SDP address after the phone behind it has sent its first
# packet: that packet still has to reach the relay and be handled by a worker (200 ms at 50/s).
STALL_PACKETS = 10


def check_arrival(sender_role, sender, receiver_role, receiver, relay_stats):
    """>= 99.9 % of what the relay sent to the receiver's latched address arrived. The relay
    reports how many of the sender's first packets it forwarded before the receiver's leg had
    latched ("forwarded unlatched": to the SDP address, which the receiver's NAT drops); that
    number must fit the phones' own timing: the packets the sender sent before the receiver's
    first one, plus STALL_PACKETS."""
    unlatched = relay_stats.get("forwarded unlatched")
    expect(isinstance(unlatched, int), f"no 'forwarded unlatched' in the query: {relay_stats}")
    early = sum(1 for i in range(sender["sent"])
                if sender["send_start"] + i * sender["interval"] < receiver["send_start"])
    expect(unlatched <= early + STALL_PACKETS,
           f"{sender_role} -> {receiver_role}: the relay forwarded {unlatched} packets before "
           f"{receiver_role}'s leg latched, but {sender_role} sent only {early} before "
           f"{receiver_role}'s first packet")
    got = receiver["seqs"].get(sender_role, [])
    want = [(sender["first_seq"] + i) & 0xFFFF for i in range(unlatched, sender["sent"])]
    have = set(got)
    arrived = sum(1 for s in want if s in have)
    ratio = arrived / len(want) if want else 0.0
    print(f"    {sender_role} -> {receiver_role}: sent {sender['sent']} ({early} before "
          f"{receiver_role}'s first), forwarded before {receiver_role}'s leg latched {unlatched}, "
          f"after {len(want)}, of those arrived {arrived} ({100 * ratio:.2f} %), received in all "
          f"{len(got)}, duplicates {len(got) - len(have)}", flush=True)
    expect(want and ratio >= MIN_ARRIVAL,
           f"{sender_role} -> {receiver_role}: {arrived} of {len(want)} packets sent to the "
           f"latched address arrived ({100 * ratio:.2f} % < {100 * MIN_ARRIVAL} %)")
    expect(len(got) == len(have), f"{receiver_role} received duplicates of {sender_role}'s packets")
    return unlatched


def rtp_stream(reply, tag):
    """The RTP entry (streams[0] of medias[0]) of `tag` in a query reply."""
    try:
        return reply["tags"][tag]["medias"][0]["streams"][0]
    except (KeyError, IndexError, TypeError):
        raise TestFailure(f"query reply has no stream for tag {tag}: {reply}") from None


def conntrack_mapping(lab, nat, private_ip, private_port):
    """(public ip, port) nat2/nat1 actually gave private_ip:private_port towards the relay."""
    for line in lab.conntrack_list(nat).splitlines():
        m = re.search(rf"src={re.escape(private_ip)} dst={re.escape(RELAY)} "
                      rf"sport={private_port} dport=\d+ .*?src={re.escape(RELAY)} "
                      r"dst=(\S+) sport=\d+ dport=(\d+)", line)
        if m:
            return m.group(1), int(m.group(2))
    return None


def relay_udp_ports(lab):
    """UDP ports of the relay range bound in the relay's namespace (ss), i.e. held by sessions."""
    lo, hi = map(int, PORTS.split("-"))
    out = lab.exec("pin", ["ss", "-Huan"]).stdout
    ports = set()
    for line in out.splitlines():
        m = re.search(rf"{re.escape(RELAY)}:(\d+)\s", line)
        if m and lo <= int(m.group(1)) <= hi:
            ports.add(int(m.group(1)))
    return ports


def both_latched(relay, call):
    reply = relay.ng({"command": "query", "call-id": call.call_id})
    if reply.get("result") != "ok":
        return None
    legs = [rtp_stream(reply, call.from_tag), rtp_stream(reply, call.to_tag)]
    return reply if all("confirmed" in leg.get("flags", []) for leg in legs) else None


def register_and_call(caller, callee, proxy_name, logs):
    """`callee` registers, `caller` calls it through the proxy. Returns (call, {role: (address,
    port) its received SDP names}). `logs()`: the peers' log tails for a failure message."""
    step(f"{callee.user} ({callee.role}) registers with {proxy_name}")
    callee.register()
    step(f"{caller.user} ({caller.role}) calls {callee.user} through {proxy_name}; both SDPs name "
         f"private addresses")
    call = Call(caller, callee)
    try:
        to_caller, to_callee = call.establish()
    except TestFailure as e:
        raise TestFailure(f"{e}\n{logs()}") from None
    return call, {caller.role: to_caller, callee.role: to_callee}


def expect_relay_targets(targets, logs):
    """Each phone was told a relay port of its own."""
    for role, (addr, port) in targets.items():
        expect(addr == RELAY and port and 30000 <= port <= 30099,
               f"{role}'s received SDP names {addr}:{port}, not a relay port on {RELAY}:\n{logs()}")
    to1, to2 = targets["ua1"], targets["ua2"]
    expect(to1 != to2, f"both phones were told the same relay port {to1}")
    print(f"    relay ports: ua1 sends to {to1[1]}, ua2 sends to {to2[1]}", flush=True)


def setup_call(lab, args):
    """pinhole-media + Kamailio (media.cfg); ua2 registers, ua1 calls it. Returns
    (relay, kam, call, targets {role: (relay address, port) its SDP names})."""
    relay = PinholeMedia(lab, need_media_binary(args), ports=PORTS)
    kam = Kamailio(lab, "media.cfg")

    def logs():
        return f"--- kamailio\n{kam.log()[-3000:]}\n--- relay\n{relay.log()[-2000:]}"

    call, targets = register_and_call(Phone(lab, "ua1", "alice"), Phone(lab, "ua2", "bob"),
                                      "Kamailio", logs)
    expect_relay_targets(targets, logs)
    return relay, kam, call, targets


def start_both(lab, targets, lead=3.0):
    """Both phones' RTP tools. The callee starts first (it answered), the caller STAGGER later
    (it got the 200): the caller's stream must then arrive whole from its very first packet,
    and the callee's from the moment the caller's NAT opened (module docstring)."""
    start_at = time.time() + lead
    seqs = {"ua1": 1000 + secrets.randbelow(20000), "ua2": 40000 + secrets.randbelow(25000)}
    starts = {"ua2": start_at, "ua1": start_at + STAGGER}
    return {role: start_phone_rtp(lab, role, targets[role], seqs[role], starts[role])
            for role in ("ua2", "ua1")}


def check_call_media(lab, relay, call, res, query):
    """The verdicts shared by the call and the bleed test (acceptance 1, 2)."""
    step("what the relay sent to a latched leg arrived, both ways")
    legs = {"ua1": rtp_stream(query, call.from_tag), "ua2": rtp_stream(query, call.to_tag)}
    unlatched = {"ua1": check_arrival("ua1", res["ua1"], "ua2", res["ua2"], legs["ua1"]["relay"]),
                 "ua2": check_arrival("ua2", res["ua2"], "ua1", res["ua1"], legs["ua2"]["relay"])}
    # The phone that started second (normally the caller, start_both) sends to a phone whose NAT
    # is already open: its stream must arrive from its very first packet.
    second = max(("ua1", "ua2"), key=lambda r: res[r]["send_start"])
    first = "ua2" if second == "ua1" else "ua1"
    step(f"no clipping at the phone: {first}'s first packet from {second} is the first sent")
    expect(unlatched[second] == 0,
           f"{second} started {res[second]['send_start'] - res[first]['send_start']:.3f} s after "
           f"{first}, yet the relay forwarded {unlatched[second]} of its packets before "
           f"{first}'s leg latched")
    got_first = res[first].get("first_received", {}).get(second)
    expect(got_first == res[second]["first_seq"],
           f"{second} sent {res[second]['first_seq']} first, {first} first received {got_first}")
    for role in ("ua1", "ua2"):
        expect(res[role]["sources"] and set(res[role]["sources"]) <= {
            f"{RELAY}:{p}" for p in range(30000, 30100)},
            f"{role} received packets from outside the relay: {res[role]['sources']}")

    step("the relay latched each leg to the NAT's public address:port (conntrack's mapping)")
    for role, tag in (("ua1", call.from_tag), ("ua2", call.to_tag)):
        leg = rtp_stream(query, tag)
        mapping = conntrack_mapping(lab, {"ua1": "nat1", "ua2": "nat2"}[role], ADDR[role],
                                    PHONE_RTP[role])
        expect(mapping is not None, f"no conntrack entry for {role}'s RTP in its NAT")
        endpoint = leg.get("endpoint", {})
        print(f"    {role}: relay leg latched to {endpoint.get('address')}:"
              f"{endpoint.get('port')}, NAT mapping {mapping[0]}:{mapping[1]}, flags "
              f"{leg.get('flags')}, relay {leg.get('relay')}", flush=True)
        expect((endpoint.get("address"), endpoint.get("port")) == mapping,
               f"{role}'s leg latched to {endpoint}, the NAT used {mapping}")
        expect(mapping[0] == PUBLIC[role], f"{role}'s NAT mapped it to {mapping}")
        expect("confirmed" in leg.get("flags", []), f"{role}'s leg is not locked: {leg}")
        # The lab runs as root, so the relay's eBPF fast path is on: a locked leg whose peer's
        # leg is locked too is forwarded by the kernel (rtpengine's flag word).
        expect("kernelized" in leg.get("flags", []), f"{role}'s leg is not in the kernel fast path: {leg}")

        step(f"no clipping on {role}'s leg: the first packet it sent was the first forwarded")
        relay_stats = leg.get("relay", {})
        sent_first = res[role]["first_seq"]
        expect(relay_stats.get("first seq") == sent_first,
               f"{role} sent {sent_first} first, the relay first received "
               f"{relay_stats.get('first seq')}")
        expect(relay_stats.get("first forwarded seq") == sent_first,
               f"{role} sent {sent_first} first, the relay first forwarded "
               f"{relay_stats.get('first forwarded seq')}")
        expect(relay_stats.get("forwarded") == res[role]["sent"],
               f"{role} sent {res[role]['sent']}, the relay forwarded "
               f"{relay_stats.get('forwarded')}")
    mapped = conntrack_mapping(lab, "nat2", ADDR["ua2"], PHONE_RTP["ua2"])
    print(f"    nat2 mapped ua2:{PHONE_RTP['ua2']} to {mapped[1]}"
          f"{' (remapped)' if mapped[1] != PHONE_RTP['ua2'] else ' (same port)'}", flush=True)


def hang_up_and_check_freed(lab, relay, call):
    step("alice hangs up: the proxy sends delete, the relay forgets the call and frees its ports")
    held = relay_udp_ports(lab)
    expect(len(held) >= 4, f"the call holds only relay ports {sorted(held)} before the BYE")
    call.hang_up()
    try:
        wait_until(lambda: relay.ng({"command": "query", "call-id": call.call_id})
                   .get("result") == "error", 5, "the relay to forget the call after the BYE")
    except LabError as e:
        raise TestFailure(f"{e}: the delete did not end the call\n{relay.log()[-2000:]}")
    gone = relay.ng({"command": "query", "call-id": call.call_id})
    print(f"    query after BYE: {gone}", flush=True)
    listed = relay.ng({"command": "list"})
    expect(listed.get("result") == "ok" and listed.get("calls") == [],
           f"list after the BYE: {listed}")
    wait_until(lambda: not relay_udp_ports(lab), 5, "the call's relay sockets to close")
    expect(relay.proc.running(), "pinhole-media died")


# --------------------------------------------------------------------------- tests

@test("kamailio", "kamcmd", "conntrack", "ss")
def media_kamailio_call(lab, args):
    """Acceptance 6 (+ relay side of 1, 2): Kamailio's rtpengine module drives pinhole-media
    through a NATed call: RTP both ways, legs latched to the NATs' public ports, no clipping,
    BYE frees the ports."""
    relay, kam, call, targets = setup_call(lab, args)
    step(f"both phones send {PACKETS} RTP packets at 50/s to the relay port their SDP names")
    procs = start_both(lab, targets)
    res = {role: rtp_summary(p) for role, p in procs.items()}
    query = relay.ng({"command": "query", "call-id": call.call_id})
    expect(query.get("result") == "ok", f"query: {query}")
    check_call_media(lab, relay, call, res, query)
    for role, tag in (("ua1", call.from_tag), ("ua2", call.to_tag)):
        dropped = rtp_stream(query, tag)["relay"].get("dropped foreign")
        expect(dropped == 0, f"{role}'s leg dropped {dropped} foreign packets in a clean call")
    hang_up_and_check_freed(lab, relay, call)
    check_kernel_forwarded(relay)


def check_kernel_forwarded(relay):
    """The kernel fast path really carried packets between the NATs (FIB lookup, MAC rewrite,
    redirect out of wan0): pinhole-media prints its program's counters when it stops."""
    step("the kernel fast path forwarded the latched packets (pinhole-media's exit report)")
    relay.proc.stop()
    m = re.search(r"fast path forwarded (\d+) packets \((\d+) left to user space, (\d+) redirect errors\)",
                  relay.proc.stderr())
    expect(m is not None, f"no fast path report in pinhole-media's log: {relay.proc.stderr()[-1500:]}")
    forwarded, passed, errors = (int(g) for g in m.groups())
    print(f"    kernel: forwarded {forwarded}, left to user space {passed}, redirect errors {errors}", flush=True)
    expect(forwarded > 0 and errors == 0, f"the kernel forwarded {forwarded} packets, {errors} redirect errors")


@test("kamailio", "kamcmd", "conntrack", "ss")
def media_rtp_bleed(lab, args):
    """Acceptance 3: after latching, a wan host's RTP to the relay's ports reaches neither
    phone and the relay counts every such packet as dropped."""
    relay, kam, call, targets = setup_call(lab, args)
    step(f"both phones send {PACKETS} RTP packets; wait until the relay latched both legs")
    procs = start_both(lab, targets)
    wait_until(lambda: both_latched(relay, call), 15, "both legs confirmed in the ng query")

    step("a host on the wan (pub, 203.0.113.50) sends RTP to both relay ports")
    attackers = {}
    for role in ("ua1", "ua2"):
        port = targets[role][1]
        argv = [sys.executable, RTP_TOOL, "--local", f"{ADDR['pub']}:{45000 + port % 1000}",
                "--to", f"{RELAY}:{port}", "--count", 50, "--rate", 50, "--seq", 1000,
                "--ssrc", "0x0bad0bad", "--tag", "evil", "--linger", 0.5]
        attackers[role] = lab.spawn("pub", argv, f"rtp-attack-{role}")
    attack = {role: rtp_summary(p, 20) for role, p in attackers.items()}
    res = {role: rtp_summary(p) for role, p in procs.items()}
    query = relay.ng({"command": "query", "call-id": call.call_id})
    expect(query.get("result") == "ok", f"query: {query}")

    step("no foreign payload reached either phone")
    for role in ("ua1", "ua2"):
        print(f"    {role} received by tag {res[role]['by_tag']}", flush=True)
        expect("evil" not in res[role]["by_tag"],
               f"{role} received {res[role]['by_tag'].get('evil')} of the wan host's packets")
    step("the relay counted each of the wan host's packets as dropped on the leg it aimed at")
    for role, tag in (("ua1", call.from_tag), ("ua2", call.to_tag)):
        leg = rtp_stream(query, tag)
        dropped = leg["relay"].get("dropped foreign")
        print(f"    {role}'s leg: attacker sent {attack[role]['sent']}, relay dropped foreign "
              f"{dropped}, latched to {leg.get('endpoint')}", flush=True)
        expect(attack[role]["sent"] == 50, f"the attacker sent {attack[role]['sent']} of 50")
        expect(dropped == attack[role]["sent"],
               f"{role}'s leg counted {dropped} foreign drops for {attack[role]['sent']} sent")
        expect(leg["endpoint"]["address"] == PUBLIC[role],
               f"{role}'s leg moved to {leg['endpoint']} during the attack")
    check_call_media(lab, relay, call, res, query)
    hang_up_and_check_freed(lab, relay, call)


def offer_cmd(call_id, sdp, from_tag="ft1", **extra):
    cmd = {"command": "offer", "call-id": call_id, "from-tag": from_tag, "sdp": sdp,
           "received-from": ["IP4", ADDR["pub"]], "replace": ["origin", "session-connection"],
           "flags": ["SIP-source-address"]}
    cmd.update(extra)
    return cmd


def expect_error(reply, what, reason=None):
    print(f"    {what}: {reply}", flush=True)
    expect(reply.get("result") == "error", f"{what}: expected result error, got {reply}")
    text = reply.get("error-reason")
    expect(isinstance(text, str) and text, f"{what}: no error-reason in {reply}")
    if reason:
        expect(reason.lower() in text.lower(), f"{what}: error-reason {text!r}, wanted {reason!r}")


def normal_call_works(relay, call_id):
    good = sdp_offer("pub", 42000)
    offer = relay.ng(offer_cmd(call_id, good))
    expect(offer.get("result") == "ok", f"a normal offer failed: {offer}")
    expect(sdp_media(offer["sdp"])[0] == RELAY, f"offer SDP does not name the relay: {offer}")
    answer = relay.ng({"command": "answer", "call-id": call_id, "from-tag": "ft1",
                       "to-tag": "tt1", "sdp": good.replace("42000", "42002"),
                       "received-from": ["IP4", ADDR["pub"]]})
    expect(answer.get("result") == "ok", f"a normal answer failed: {answer}")
    deleted = relay.ng({"command": "delete", "call-id": call_id, "from-tag": "ft1",
                        "delete-delay": 0})
    expect(deleted.get("result") == "ok" and "warning" not in deleted,
           f"a normal delete failed: {deleted}")
    expect(relay.ng({"command": "ping"}).get("result") == "pong", "no pong")


@test("ss")
def media_bad_input(lab, args):
    """Acceptance 7: malformed SDP, bad bencode, an unknown command and port exhaustion each
    get a clean ng error; the relay keeps serving (offer/answer/delete, ping)."""
    # Two RTP/RTCP pairs: exactly one session (leg A and leg B) fits.
    relay = PinholeMedia(lab, need_media_binary(args), ports="30000-30003", workers=1)

    step("ping")
    expect(relay.ng({"command": "ping"}).get("result") == "pong", "no pong")

    step("offers with malformed SDP")
    for i, bad in enumerate(["this is not SDP at all",
                             "v=0\r\nm=audio notaport RTP/AVP 0\r\n",
                             "v=0\r\no=- 1 1 IN IP4 203.0.113.50\r\ns=-\r\nc=IN IP4 999.1.2.3\r\n"
                             "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
                             "v=0\r\n" + "a=" + "x" * 3000 + "\r\n" * 2,
                             ""]):
        expect_error(relay.ng(offer_cmd(f"bad-sdp-{i}", bad)), f"malformed SDP #{i}")
    expect(relay.ng({"command": "list"}).get("calls") == [], "a failed offer left a call")
    expect(not relay_udp_ports(lab), f"a failed offer holds ports {relay_udp_ports(lab)}")

    step("bad bencode (with a cookie: answered with an error)")
    for i, body in enumerate([b"d7:command4:pi", b"d7:command4:pingi3e", b"l4:pinge",
                              b"d7:commandi5ee", b"d999999:commande", b"x" * 200, b""]):
        raw = relay.send_raw(f"badb{i} ".encode() + body)
        expect(raw is not None, f"no reply to bad bencode #{i} {body[:30]!r}")
        cookie, _, rest = raw.partition(b" ")
        expect(cookie == f"badb{i}".encode(), f"reply to #{i} has cookie {cookie!r}")
        expect_error(bdecode(rest), f"bad bencode #{i} {body[:30]!r}")
    step("no cookie at all: nothing to answer to, and the relay is still there")
    expect(relay.send_raw(b"nospace", timeout=1.0) is None, "a reply to a message with no cookie?")
    expect(relay.ng({"command": "ping"}).get("result") == "pong", "no pong after the bad input")

    step("unknown ng command")
    expect_error(relay.ng({"command": "frobnicate", "call-id": "x"}), "unknown command")

    step("port exhaustion: a second call does not fit, a clean error; freeing makes room")
    first = relay.ng(offer_cmd("fits", sdp_offer("pub", 42000)))
    expect(first.get("result") == "ok", f"the one call that fits failed: {first}")
    expect(len(relay_udp_ports(lab)) == 4, f"one call holds {sorted(relay_udp_ports(lab))}")
    for i in range(3):
        expect_error(relay.ng(offer_cmd(f"nofit-{i}", sdp_offer("pub", 42010))),
                     f"offer #{i} beyond the port range", "Ran out of ports")
    expect(relay.ng({"command": "list"}).get("calls") == ["fits"],
           "a refused offer left a call behind")
    expect(len(relay_udp_ports(lab)) == 4, "refused offers changed the ports held")
    deleted = relay.ng({"command": "delete", "call-id": "fits", "from-tag": "ft1",
                        "delete-delay": 0})
    expect(deleted.get("result") == "ok", f"delete: {deleted}")
    wait_until(lambda: not relay_udp_ports(lab), 5, "the deleted call's ports to close")

    step("afterwards a normal offer/answer/delete and a ping work; the daemon is alive")
    normal_call_works(relay, "after-bad-input")
    expect(relay.ng({"command": "list"}).get("calls") == [], "calls left over")
    expect(relay.proc.running(), "pinhole-media died")
