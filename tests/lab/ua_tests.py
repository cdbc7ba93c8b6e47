"""Issue 7 (pinhole-ua) acceptance in the NAT lab. pinhole-ua is taken from next to the daemon
given as --pinhole (same build directory).

- ua_tcp_proxy_lab (acceptance 1): dnsmasq in the wan (tests/lab/lab_dns.py) resolves
  `proxy.lab` round robin to two Kamailio nodes (core 203.0.113.20, coreb 203.0.113.21, each its
  own location); pinhole-ua at ua1 behind nat1 registers over TCP with outbound proxy
  `sip:proxy.lab;transport=tcp`: the name is resolved once, and the first REGISTER and five
  refreshes all reach the same node over the same connection (one binding there, the other node
  sees nothing), Contact keeps transport=tcp, Via carries ;alias, REGISTER carries
  Supported: path, outbound.
- ua_inbound_call_tcp (acceptance 2): a SIPp caller in the wan calls alice through Kamailio,
  which routes by location over the UA's TCP connection (nat1 lets no new connection in; the
  caller's side even has a route to ua1's private address, so a connection attempt would show
  in nat1's DROP counter); pinhole-ua (`register --answer --echo`) answers and echoes the
  caller's RTP, which is counted back at the caller's side (a latching RTP peer, below).
- ua_outbound_edge (acceptance 3): pinhole as registrar with RFC 5626 outbound
  (`outbound_flow_timer: 10s`; keepalives for every flow every 5 s otherwise): the UA is told
  `Require: outbound` and `Flow-Timer: 10`, sends its CRLF pings every 8-10 s, pinhole sends
  none on that flow; nat1 "reboots" (conntrack flushed, new mappings from another port range)
  and the UA notices the dead flow within Flow-Timer + 10 s, registers again on a new
  connection, and the next call from the core reaches it.
- ua_contact_learning (acceptance 4): UDP behind nat2 (--random-fully); the first 401 teaches
  the public address, the authenticated REGISTER carries it, exactly one binding remains.
- ua_bad_server (acceptance 5): a fake registrar (this file, run as a script in the core) that
  (a) sends garbage on the TCP connection after its 200, (b) lists 50 foreign Contacts in a 200,
  (c) answers `Flow-Timer: 0`, (d) never answers (over UDP and TCP): each UA logs a clear line,
  does not crash, and (a-c) keeps or re-establishes its registration; (d) exits 4.

Kamailio's script (written into the workdir) challenges every REGISTER without valid
credentials and logs one line per accepted REGISTER with its node, the TCP connection id, the
Contact, the Via and Supported, which is what the checks read; INVITEs are routed by location.

Run as a script (`python3 ua_tests.py fake-registrar ...` / `rtp-peer ...`) it is the fake
registrar of ua_bad_server or the caller's RTP peer of ua_inbound_call_tcp, inside a namespace.
"""

import json
import os
import re
import secrets
import subprocess
import sys
import time

from lab import ADDR, LabError, wait_until
from labtest import TestFailure, expect, step, test
from lab_dns import Dnsmasq
from keepalive_tests import KeepalivePinhole
from keepalive_tests import events as ua_events  # --json event lines, parsed
from peers import REG_DOMAIN, Kamailio, Sipp, settle

PASSWORD = "ua-lab-secret"
KAM = ADDR["core"]
HERE = os.path.dirname(os.path.abspath(__file__))

KAMAILIO_CFG = r"""#!KAMAILIO
debug=2
children=1
tcp_children=1
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=off
listen=udp:{listen}:5060
listen=tcp:{listen}:5060
alias="lab.example"
tcp_connection_lifetime=3605
loadpath "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "ctl.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "auth.so"
modparam("ctl", "binrpc", CTL_SOCK)
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 1)
request_route {{
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("lab.example", "{password}", "0")) {{
            xlog("L_INFO", "UA-CHALLENGE node={node} conid=$conid src=$si:$sp ct=$ct\n");
            www_challenge("lab.example", "1");
            exit;
        }}
        xlog("L_INFO", "UA-REGISTER node={node} conid=$conid proto=$proto src=$si:$sp ct=$ct via=$hdr(Via) sup=$hdr(Supported)\n");
        if (!save("location")) sl_reply_error();
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            t_relay();
            exit;
        }}
        if (is_method("ACK") && t_check_trans()) t_relay();
        else if (!is_method("ACK")) sl_send_reply("404", "Not Here");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) t_relay();
        exit;
    }}
    if (is_method("INVITE")) {{
        if (!lookup("location")) {{
            sl_send_reply("404", "Not Found");
            exit;
        }}
        record_route();
        xlog("L_INFO", "UA-INVITE node={node} ruri=$ru du=$du\n");
        t_relay();
        exit;
    }}
    if (is_method("OPTIONS")) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    sl_send_reply("404", "Not Found");
}}
"""


def start_kamailio(lab, role="core", name="kamailio-ua"):
    """Kamailio (digest auth, location in memory) listening on role's wan address."""
    cfg = lab.path(f"{name}.cfg")
    with open(cfg, "w") as f:
        f.write(KAMAILIO_CFG.format(listen=ADDR[role], password=PASSWORD, node=role))
    return Kamailio(lab, cfg, name=name, role=role)


def ua_binary(args):
    path = os.path.join(os.path.dirname(os.path.abspath(args.pinhole or "")), "pinhole-ua")
    if not os.access(path, os.X_OK):
        raise LabError(f"pinhole-ua not built next to the daemon: {path}")
    return path


def spawn_ua(lab, args, role, proxy, name, extra=(), aor="sip:alice@lab.example"):
    argv = [ua_binary(args), "--log-level", "debug", "register", "--aor", aor,
            "--password", PASSWORD, "--outbound-proxy", proxy, "--json",
            "--instance-file", lab.path(f"{name}.instance"), *extra]
    return lab.spawn(role, argv, name)


def ua_has_flag(args, flag):
    """Whether `pinhole-ua register --help` lists `flag` (the call flags arrive separately)."""
    r = subprocess.run([ua_binary(args), "register", "--help"], capture_output=True, text=True,
                       timeout=10)
    return flag in r.stdout + r.stderr


def require_call_flags(args):
    missing = [f for f in ("--answer", "--echo") if not ua_has_flag(args, f)]
    if missing:
        raise TestFailure(f"pinhole-ua register has no {' '.join(missing)} yet (the call half "
                          "of issue 7): the inbound call cannot be answered")


def registers(kam):
    return re.findall(r"UA-REGISTER (.*)", kam.log())


def field(line, name):
    m = re.search(rf"\b{name}=(\S+)", line)
    return m.group(1) if m else None


def count_tcp_inbound_drops(lab, nat):
    """Gives nat's "no new inbound" rule a TCP-only twin in front of it, so that TCP packets it
    drops are counted apart from UDP (e.g. RTP sent to a private SDP address before latching)."""
    lab.iptables(nat, "-I", "FORWARD", "2", "-i", "wan0", "-p", "tcp", "-j", "DROP")


def tcp_inbound_drops(lab, nat):
    """Inbound TCP packets nat dropped (see count_tcp_inbound_drops)."""
    out = lab.iptables(nat, "-L", "FORWARD", "-v", "-n", "-x").stdout
    return sum(int(l.split()[0]) for l in out.splitlines()
               if " DROP " in f" {l} " and l.split()[3] in ("tcp", "6"))


# --------------------------------------------------------------------------- acceptance 4

@test("kamailio", "kamcmd")
def ua_contact_learning(lab, args):
    """Acceptance 4: UDP behind nat2 --random-fully, the 401 teaches the public address."""
    kam = start_kamailio(lab)
    step("pinhole-ua at ua2 registers over UDP through nat2")
    ua = spawn_ua(lab, args, "ua2", f"udp:{KAM}:5060", "ua-alice", ["--duration", "6"])
    kam.wait_registered("alice", timeout=10)
    challenges = re.findall(r"UA-CHALLENGE (.*)", kam.log())
    expect(challenges, "Kamailio never challenged the REGISTER")
    expect(f"@{ADDR['ua2']}:" in challenges[0],
           f"the first REGISTER should carry the private address:\n{challenges[0]}")
    accepted = registers(kam)
    expect(accepted, "no authenticated REGISTER reached Kamailio")
    public = ADDR["nat2"]
    expect(f"@{public}:" in accepted[0],
           f"the authenticated REGISTER does not carry the learned address {public}:\n"
           f"{accepted[0]}")
    src = field(accepted[0], "src")
    expect(f"@{src};" in accepted[0] or f"@{src}>" in accepted[0],
           f"Contact is not the mapped source {src}:\n{accepted[0]}")
    contacts = kam.contacts("alice")
    expect(len(contacts) == 1, f"expected exactly one binding, got {contacts}")
    step("pinhole-ua exits after --duration and unregisters")
    rc = ua.wait(20)
    expect(rc == 0, f"pinhole-ua exit code {rc}:\n{ua.stderr()[-3000:]}")
    expect(ua_events(ua, "contact_changed"), "no contact_changed event from the 401")
    wait_until(lambda: not kam.contacts("alice"), 5, "the binding removed by the unregister")


# --------------------------------------------------------------------------- acceptance 1

PROXY_NAME = "proxy.lab"


@test("kamailio", "kamcmd", "dnsmasq")
def ua_tcp_proxy_lab(lab, args):
    """Acceptance 1: `proxy.lab` is two Kamailio nodes (round robin); pinhole-ua over TCP pins
    one of them: 5 refreshes on one node, one connection, transport=tcp, ;alias, Supported."""
    lab.add_wan_host("coreb")
    nodes = {"core": start_kamailio(lab, "core", "kamailio-a"),
             "coreb": start_kamailio(lab, "coreb", "kamailio-b")}
    dns = Dnsmasq(lab, {PROXY_NAME: [ADDR["core"], ADDR["coreb"]]})

    step(f"dnsmasq answers {PROXY_NAME} through nat1 with both nodes, rotating their order")
    answers = [dns.query("ua1", PROXY_NAME) for _ in range(4)]
    expect(all(sorted(a) == sorted([ADDR["core"], ADDR["coreb"]]) for a in answers),
           f"{PROXY_NAME} should resolve to both nodes every time: {answers}")
    expect(len({a[0] for a in answers}) == 2,
           f"dnsmasq did not rotate the order (no round robin): {answers}")
    lab.set_resolv_conf("ua1", dns.address)
    asked_before = len(dns.queries("A", PROXY_NAME))

    step("pinhole-ua at ua1 registers over TCP via proxy.lab, 10 s bindings (refresh every 5 s)")
    ua = spawn_ua(lab, args, "ua1", f"sip:{PROXY_NAME};transport=tcp", "ua-alice",
                  ["--expires", "10", "--duration", "32"])

    def all_registers():
        return {role: registers(k) for role, k in nodes.items()}

    try:
        wait_until(lambda: sum(map(len, all_registers().values())) >= 6, 40,
                   "the first REGISTER and 5 refreshes")
    except LabError:
        raise TestFailure(f"only {all_registers()} REGISTERs accepted:\n{ua.stderr()[-3000:]}")
    seen = all_registers()
    pinned = [role for role, regs in seen.items() if regs]
    expect(len(pinned) == 1, f"REGISTERs went to both nodes of {PROXY_NAME}: {seen}")
    pinned = pinned[0]
    other = "coreb" if pinned == "core" else "core"
    pin_log = re.search(r"pinned to (\S+) over tcp", ua.stderr())
    expect(pin_log and pin_log.group(1) == f"{ADDR[pinned]}:5060",
           f"the UA's log does not name the node it pinned ({ADDR[pinned]}):\n"
           f"{ua.stderr()[-2000:]}")
    a_queries = dns.queries("A", PROXY_NAME)[asked_before:]
    expect([src for _, src in a_queries] == [ADDR["nat1"]],
           f"the UA should ask for {PROXY_NAME} once, through nat1: {a_queries}")

    accepted = seen[pinned][:6]
    conids = {field(r, "conid") for r in accepted}
    srcs = {field(r, "src") for r in accepted}
    expect(len(conids) == 1 and len(srcs) == 1,
           f"REGISTERs came over several connections: conid {conids}, sources {srcs}")
    expect(all(field(r, "proto") == "tcp" for r in accepted), f"not all over TCP: {accepted}")
    for r in accepted:
        expect("transport=tcp" in r.split("via=", 1)[0], f"Contact lost transport=tcp:\n{r}")
        via = r.split("via=", 1)[1].split(" sup=", 1)[0]
        expect(via.startswith("SIP/2.0/TCP ") and ";alias" in via, f"Via without ;alias:\n{r}")
        expect("sup=path, outbound" in r, f"no Supported: path, outbound:\n{r}")
        expect(f"@{ADDR['nat1']}:" in r, f"Contact is not nat1's public address:\n{r}")
    contacts = nodes[pinned].contacts("alice")
    expect(len(contacts) == 1 and "transport=tcp" in contacts[0],
           f"expected one TCP binding at {pinned}, got {contacts}")
    binding = nodes[pinned].binding("alice")
    socket = re.search(r"Socket:\s*(\S+)", binding)
    expect(socket and socket.group(1) == f"tcp:{ADDR[pinned]}:5060",
           f"the binding is not on {pinned}'s TCP socket:\n{binding}")
    expect(not nodes[other].contacts("alice") and "UA-" not in nodes[other].log(),
           f"{other} saw the UA although it is not the pinned node:\n{nodes[other].log()[-1500:]}")
    rc = ua.wait(40)
    expect(rc == 0, f"pinhole-ua exit code {rc}:\n{ua.stderr()[-3000:]}")
    wait_until(lambda: not nodes[pinned].contacts("alice"), 5,
               "the binding removed by the unregister")


# --------------------------------------------------------------------------- acceptance 2

RTP_PORT = 7078  # the caller's RTP port (its SDP); SIPp's own media port is elsewhere

# The caller: INVITE with an SDP naming the RTP peer's port, 200, ACK, media for a few seconds,
# BYE. Written into the workdir with RTP_PORT and the call's length filled in (SIPp's
# [media_port] is its own echo socket; here the media is the RTP peer's).
UAC_MEDIA_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="lab UAC: call with media, send BYE">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:caller@[local_ip]>;tag=[pid]uac[call_number]
      To: <sip:[service]@[domain]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=uac 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [local_ip]
      t=0 0
      m=audio @RTP_PORT@ RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      Max-Forwards: 70
      From: <sip:caller@[local_ip]>;tag=[pid]uac[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="@MEDIA_MS@"/>
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      Max-Forwards: 70
      From: <sip:caller@[local_ip]>;tag=[pid]uac[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


def uac_media_scenario(lab, media_ms):
    path = lab.path("uac_media_call.xml")
    with open(path, "w") as f:
        f.write(UAC_MEDIA_XML.replace("@RTP_PORT@", str(RTP_PORT))
                .replace("@MEDIA_MS@", str(media_ms)))
    return path


def answer_sdp(sipp):
    """(address, port) of the SDP in the 200 OK SIPp received, or None."""
    for m in re.finditer(r"message received \[\d+\] bytes :\s*\n(.*?)(?=\n-{10,}|\Z)",
                         sipp.trace(), re.S):
        block = m.group(1).lstrip()
        if not block.startswith("SIP/2.0 200"):
            continue
        c = re.search(r"^\s*c=IN IP4 (\S+)", block, re.M)
        a = re.search(r"^\s*m=audio (\d+)", block, re.M)
        if c and a:
            return c.group(1), int(a.group(1))
    return None


def spawn_rtp_peer(lab, role, name, target_file, count=150):
    """The caller's media: see rtp_peer() below."""
    return lab.spawn(role, [sys.executable, os.path.abspath(__file__), "rtp-peer",
                            f"{ADDR[role]}:{RTP_PORT}", target_file, str(count)], name)


def tcp_flows(lab, nat, dport=5060):
    """nat's established TCP connections to port dport, as a sorted list of their address and
    port fields (the lines' countdown and counters change between two reads)."""
    flows = []
    for line in lab.conntrack_list(nat).splitlines():
        if line.startswith("tcp") and f"dport={dport} " in line and "ESTABLISHED" in line:
            flows.append(" ".join(f for f in line.split() if f.startswith(("src=", "dst=", "sport=", "dport="))))
    return sorted(flows)


def call_with_media(lab, ua, remote, user, domain, role="pub", media_ms=4000):
    """A SIPp caller at `role` calls user@domain via `remote`; its RTP peer sends 150 numbered
    packets once the 200's SDP is known (and to wherever the UA's RTP comes from). Returns
    (sipp exit code, sipp, peer summary dict)."""
    target = lab.path(f"rtp-target-{user}")
    peer = spawn_rtp_peer(lab, role, f"rtp-peer-{user}", target)
    uac = Sipp(lab, role, uac_media_scenario(lab, media_ms), remote, user, f"uac-{user}",
               port=5070, domain=domain, timeout=25)
    try:
        sdp = wait_until(lambda: answer_sdp(uac) or (not uac.running() and "gone"), 15,
                         "the UA's 200 OK with SDP at the caller")
    except LabError:
        sdp = None
    if sdp and sdp != "gone":
        with open(target + ".tmp", "w") as f:
            f.write(f"{sdp[0]}:{sdp[1]}")
        os.rename(target + ".tmp", target)
    rc = uac.wait()
    try:
        peer.wait(20)
    except LabError:
        peer.stop()
    try:
        summary = json.loads(peer.stdout().strip().splitlines()[-1])
    except (ValueError, IndexError):
        summary = {"error": peer.stderr()[-1000:]}
    summary["answer_sdp"] = sdp
    return rc, uac, summary


@test("kamailio", "kamcmd", "sipp", "conntrack")
def ua_inbound_call_tcp(lab, args):
    """Acceptance 2: a call from the wan reaches pinhole-ua over its own TCP connection and
    completes with media both ways."""
    require_call_flags(args)
    kam = start_kamailio(lab)
    # A route to 192.168.1.0/24 via nat1 for the core and the caller: a connection attempt to
    # ua1's private Contact would then die at nat1's "no new inbound" rule (and be counted)
    # instead of failing for want of a route.
    lab.route_private_via_nats("core")
    lab.route_private_via_nats("pub")
    count_tcp_inbound_drops(lab, "nat1")

    step("pinhole-ua at ua1 registers over TCP and waits for calls (--answer --echo)")
    ua = spawn_ua(lab, args, "ua1", f"tcp:{KAM}:5060", "ua-alice",
                  ["--duration", "45", "--answer", "--echo"])
    try:
        kam.wait_registered("alice", timeout=10)
    except LabError:
        raise TestFailure(f"pinhole-ua did not register:\n{ua.stderr()[-3000:]}")
    flows_before = tcp_flows(lab, "nat1")
    expect(len(flows_before) == 1, f"expected ua1's one TCP connection in nat1: {flows_before}")
    drops_before = tcp_inbound_drops(lab, "nat1")

    step("SIPp at pub calls alice via Kamailio; its RTP peer sends 150 packets, counts echoes")
    rc, uac, media = call_with_media(lab, ua, f"{KAM}:5060", "alice", "lab.example")
    print(f"media: {json.dumps(media)}", flush=True)
    expect("error" not in media, f"the caller's RTP peer failed: {media.get('error')}")
    expect("UA-INVITE" in kam.log(), "Kamailio did not route the INVITE by location")
    expect(rc == 0 and uac.received("SIP/2.0 200"),
           f"the call to alice failed (SIPp exit {rc})\n{uac.explain()}\n"
           f"--- UA\n{ua.stderr()[-3000:]}")
    expect(tcp_flows(lab, "nat1") == flows_before,
           f"the call used another TCP connection through nat1:\n{tcp_flows(lab, 'nat1')}")
    expect(tcp_inbound_drops(lab, "nat1") == drops_before,
           "something tried to open a new TCP connection to ua1 through nat1 (DROP counted)")
    expect(ua.running(), f"pinhole-ua died during the call:\n{ua.stderr()[-3000:]}")
    for kind in ("incoming_call", "answered", "call_ended"):
        expect(ua_events(ua, kind), f"no {kind} event from the UA: {ua_events(ua)}")
    stats = wait_until(lambda: ua_events(ua, "media_stats"), 5, "the UA's media_stats event")[-1]
    print(f"UA media: {stats.get('text')}", flush=True)
    expect(stats.get("packets_received", 0) > 0 and stats.get("packets_sent", 0) > 0,
           f"the UA's own counters show one-way media: {stats}")
    sent, echoed = media.get("sent", 0), media.get("echoed", 0)
    expect(media.get("received_from_ua", 0) > 0,
           f"no RTP from the UA reached the caller (media UA -> caller): {media}")
    expect(sent >= 100 and echoed >= 0.8 * sent,
           f"the UA echoed {echoed} of the caller's {sent} RTP packets (media both ways): {media}")
    ua.stop()


# --------------------------------------------------------------------------- acceptance 3

FLOW_TIMER = 10  # s: pinhole's outbound_flow_timer; the UA pings every 8-10 s
EDGE_ADMIN = 9060


def outbound_registrar_config(lab):
    """pinhole as the registrar of lab.test with RFC 5626 outbound (Flow-Timer: 10), auth off.
    Keepalives target every flow every 5 s: were pinhole to ignore that the client keeps its
    flow alive itself, the test would see its pings."""
    text = f"""workers: 2
listen:
  - {{ transport: udp, address: {ADDR['pin']}, port: 5060 }}
  - {{ transport: tcp, address: {ADDR['pin']}, port: 5060 }}
registrar:
  domains: [{REG_DOMAIN}]
  min_expires: 10s
  max_expires: 3600s
  default_expires: 600s
  nat_udp_lease: 0s
  outbound_flow_timer: {FLOW_TIMER}s
auth: {{ enabled: false }}
store: sqlite://{lab.path('pinhole-edge.db')}
flow_tokens: {{ secret: "hex:{secrets.token_hex(16)}" }}
admin: {{ listen: 127.0.0.1:{EDGE_ADMIN} }}
node_id: ua-edge
log: {{ level: debug }}
keepalive:
  stream_interval: 5s
  udp_interval: 5s
  targets: all
"""
    path = lab.path("pinhole-edge.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


class Capture:
    """tshark on pin's wan0 (TCP port 5060), printing one line per segment with payload as it
    goes (-l: a capture file would be flushed too late to read during the test)."""

    def __init__(self, lab, name="edge"):
        self.lab = lab
        self.proc = lab.spawn("pin", ["tshark", "-l", "-i", "wan0", "-f", "tcp port 5060",
                                      "-Y", "tcp.len > 0", "-T", "fields",
                                      "-e", "frame.time_epoch", "-e", "ip.src",
                                      "-e", "tcp.payload"], f"tshark-{name}")
        wait_until(lambda: "Capturing on" in self.proc.stderr() or not self.proc.running(), 10,
                   "tshark capturing")
        expect(self.proc.running(), f"tshark exited: {self.proc.stderr()[-1000:]}")

    def rows(self):
        """(time, source address, payload hex) of each segment seen so far."""
        out = []
        for line in self.proc.stdout().splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                out.append((float(parts[0]), parts[1], parts[2].replace(":", "").lower()))
        return out


def crlf_pings(rows, src):
    """Times of CRLF CRLF keepalives (RFC 5626 §4.4.1) sent by `src`."""
    return [t for t, s, payload in rows if s == src and payload == "0d0a0d0a"]


@test("sipp", "conntrack", "tshark")
def ua_outbound_edge(lab, args):
    """Acceptance 3: through pinhole with outbound: Require: outbound, Flow-Timer honoured, no
    server pings; nat1 reboots -> the UA re-registers within Flow-Timer + 10 s; a call reaches
    it."""
    pin = KeepalivePinhole(lab, args.pinhole, "pinhole-edge", admin_port=EDGE_ADMIN,
                           config=outbound_registrar_config(lab))
    cap = Capture(lab)
    aor = f"sip:alice@{REG_DOMAIN}"
    call_flags = ["--answer", "--echo"] if ua_has_flag(args, "--answer") else []

    step("pinhole-ua at ua1 registers over TCP through nat1 with outbound")
    ua = spawn_ua(lab, args, "ua1", f"tcp:{ADDR['pin']}:5060", "ua-alice",
                  ["--duration", "80", *call_flags], aor=aor)
    try:
        wait_until(lambda: ua_events(ua, "registered"), 10, "the UA's registered event")
    except LabError:
        raise TestFailure(f"pinhole-ua did not register:\n{ua.stderr()[-3000:]}\n{pin.log()}")
    step(f"the 200 OK says Require: outbound and Flow-Timer: {FLOW_TIMER}")
    ok = wait_until(lambda: [bytes.fromhex(p).decode("latin-1") for _, s, p in cap.rows()
                             if s == ADDR["pin"] and p.startswith("5349502f322e302032303020")],
                    5, "the 200 OK (\"SIP/2.0 200 \") in pin's capture")
    expect(re.search(r"^Require:\s*outbound\s*$", ok[0], re.M | re.I),
           f"the 200 OK has no Require: outbound:\n{ok[0]}")
    expect(re.search(rf"^Flow-Timer:\s*{FLOW_TIMER}\s*$", ok[0], re.M | re.I),
           f"the 200 OK has no Flow-Timer: {FLOW_TIMER}:\n{ok[0]}")

    step("for 24 s: the UA pings every 80-100 % of Flow-Timer, pinhole sends no keepalive")
    registered_at = time.time()
    wait_until(lambda: len(crlf_pings(cap.rows(), ADDR["nat1"])) >= 2, 3 * FLOW_TIMER,
               "two CRLF pings from the UA")
    settle(max(0.0, registered_at + 24 - time.time()))
    rows = cap.rows()
    pings = crlf_pings(rows, ADDR["nat1"])
    gaps = [round(b - a, 2) for a, b in zip(pings, pings[1:])]
    expect(gaps and all(0.8 * FLOW_TIMER - 0.3 <= g <= FLOW_TIMER + 0.3 for g in gaps),
           f"ping intervals {gaps} s are not 80-100 % of Flow-Timer {FLOW_TIMER} s")
    pongs = [t for t, s, p in rows if s == ADDR["pin"] and p == "0d0a"]
    expect(len(pongs) >= len(pings) - 1, f"pinhole did not pong the pings: {pings} / {pongs}")
    expect(not crlf_pings(rows, ADDR["pin"]), "pinhole sent CRLF keepalives on the UA's flow")
    expect(pin.metric("pinhole_keepalive_sent_total") == 0,
           f"pinhole counts keepalives sent: {pin.metric('pinhole_keepalive_sent_total')}\n"
           f"{pin.admin('/keepalive')}")

    # A strict NAT after a reboot: it forgot the connection, and a segment of a connection it
    # does not know (conntrack INVALID once tcp_loose is off) is dropped, so nothing tells the
    # UA: no RST, no FIN. Only its own ping and the missing pong can show the flow is dead.
    step("nat1 reboots: conntrack flushed, segments of forgotten connections dropped silently")
    before = json.loads(pin.admin("/registrations") or "{}").get("bindings", [])
    old_received = before[0].get("received") if before else None
    lab.sysctl("nat1", "net.netfilter.nf_conntrack_tcp_loose", 0)
    lab.iptables("nat1", "-I", "FORWARD", "1", "-m", "conntrack", "--ctstate", "INVALID",
                 "-j", "DROP")
    flows_before = len(ua_events(ua, "flow_failed"))
    regs_before = len(ua_events(ua, "registered"))
    lab.conntrack_flush("nat1")
    flushed = time.monotonic()
    try:
        wait_until(lambda: len(ua_events(ua, "flow_failed")) > flows_before, FLOW_TIMER + 12,
                   "the UA's flow_failed event")
    except LabError:
        raise TestFailure(f"the UA did not notice its dead flow:\n{ua.stderr()[-3000:]}")
    detected = time.monotonic() - flushed
    print(f"flow failure detected {detected:.1f} s after the flush", flush=True)
    # Worst case by design: the flush right after a ping, the next one Flow-Timer later, then
    # the 10 s pong timeout. The 0.5 s on top is this test's polling and log reading.
    expect(detected <= FLOW_TIMER + 10 + 0.5,
           f"detected after {detected:.1f} s > Flow-Timer + 10 s")
    wait_until(lambda: len(ua_events(ua, "registered")) > regs_before, 20,
               "the UA registered again")
    ups = ua_events(ua, "flow_up")
    expect(len(ups) >= 2 and ups[-1]["text"] != ups[0]["text"],
           f"no new connection after the failure: {ups}")
    try:
        listed = json.loads(pin.admin("/registrations") or "{}").get("bindings", [])
    except ValueError:
        listed = []
    expect(len(listed) == 1 and old_received and listed[0].get("received") != old_received,
           f"expected alice's one binding, on a new connection (not {old_received}): {listed}")

    step("the core calls alice through pinhole: the call reaches the UA on its new flow")
    require_call_flags(args)
    uac = Sipp(lab, "core", "uac_call.xml", f"{ADDR['pin']}:5060", "alice", "uac-alice",
               domain=REG_DOMAIN, port=5070, timeout=15)
    rc = uac.wait()
    expect(rc == 0, f"the call after the re-registration failed (SIPp exit {rc})\n"
                    f"{uac.explain()}\n--- UA\n{ua.stderr()[-3000:]}\n--- pinhole\n{pin.log()}")
    expect(ua.running(), f"pinhole-ua died:\n{ua.stderr()[-3000:]}")
    ua.stop()


# --------------------------------------------------------------------------- acceptance 5

FAKE = ADDR["core"]
# case -> (transport, fake registrar port, mode)
BAD_CASES = {
    "garbage": ("tcp", 5071, "garbage"),
    "foreign": ("udp", 5072, "foreign"),
    "flowtimer0": ("tcp", 5073, "flowtimer0"),
    "silent-udp": ("udp", 5074, "silent"),
    "silent-tcp": ("tcp", 5075, "silent"),
}


@test()
def ua_bad_server(lab, args):
    """Acceptance 5: garbage on the TCP connection, 50 foreign Contacts, Flow-Timer: 0, an
    unanswered REGISTER (UDP and TCP): a clear log line each, no crash, registration kept."""
    fakes, uas = {}, {}
    for case, (transport, port, mode) in BAD_CASES.items():
        fakes[case] = lab.spawn("core", [sys.executable, os.path.abspath(__file__),
                                         "fake-registrar", transport, f"{FAKE}:{port}", mode],
                                f"fake-{case}")
    for case in BAD_CASES:
        wait_until(lambda: ua_events(fakes[case], "ready") or not fakes[case].running(), 10,
                   f"the fake registrar for {case}")
        expect(fakes[case].running(), f"fake registrar {case} died:\n{fakes[case].stderr()}")

    step("one pinhole-ua per case at ua1 (20 s, 10 s bindings: at least one refresh; against "
         "the silent ones 60 s, longer than the 32 s REGISTER timeout)")
    for case, (transport, port, mode) in BAD_CASES.items():
        duration = "60" if mode == "silent" else "20"
        uas[case] = spawn_ua(lab, args, "ua1", f"{transport}:{FAKE}:{port}", f"ua-{case}",
                             ["--expires", "10", "--duration", duration])

    step("(a) garbage after the 200 on TCP: a clear line, the registration re-established")
    ua, fake = uas["garbage"], fakes["garbage"]
    wait_until(lambda: ua_events(fake, "garbage_sent"), 10, "the fake sending garbage")
    wait_until(lambda: [e for e in ua_events(fake, "register")
                        if e["after_garbage"] and e["expires"] > 0], 15,
               "a REGISTER after the garbage")

    def registered_after_garbage():
        """A registered event after the first line about the garbage (on the same connection
        when the UA could skip it, on a new one when it failed the flow)."""
        events = ua_events(ua)
        first = next((i for i, e in enumerate(events) if e["event"] in ("warning", "flow_failed")
                      and re.search(r"unframeable|unparseable", e["text"])), None)
        return first is not None and any(e["event"] == "registered" for e in events[first:])

    try:
        wait_until(registered_after_garbage, 10, "a clear line about the garbage, then registered")
    except LabError:
        raise TestFailure(f"no clear line about the garbage and a registration after it: "
                          f"{ua_events(ua)}\n{ua.stderr()[-2000:]}")
    expect(ua.running(), f"pinhole-ua died after the garbage:\n{ua.stderr()[-2000:]}")

    step("(b) 50 foreign Contacts over UDP: one warning, ours kept on refresh")
    ua, fake = uas["foreign"], fakes["foreign"]
    wait_until(lambda: len([e for e in ua_events(fake, "register") if e["expires"] > 0]) >= 2,
               15, "a refresh after the crowded 200")
    warns = [e["text"] for e in ua_events(ua, "warning")]
    expect(any("50 bindings of other devices" in w for w in warns),
           f"no warning about the 50 foreign Contacts: {warns}\n{ua.stderr()[-2000:]}")
    for e in ua_events(fake, "register"):
        expect(e["contacts"] and all("foreign" not in c for c in e["contacts"]),
               f"the UA sent a foreign Contact back: {e}")
        expect(len([c for c in e["contacts"] if "expires=0" not in c]) <= 1,
               f"the UA registered more than its own Contact: {e}")

    step("(c) Flow-Timer: 0 on TCP: a warning, registered, refreshes go on")
    ua, fake = uas["flowtimer0"], fakes["flowtimer0"]
    wait_until(lambda: len([e for e in ua_events(fake, "register") if e["expires"] > 0]) >= 2,
               15, "a refresh after Flow-Timer: 0")
    warns = [e["text"] for e in ua_events(ua, "warning")]
    expect(any("Flow-Timer: 0" in w for w in warns),
           f"no warning about Flow-Timer: 0: {warns}\n{ua.stderr()[-2000:]}")
    expect(ua_events(ua, "registered"), "not registered with Flow-Timer: 0")

    step("(a-c) each UA ends after --duration, unregistered, exit 0")
    for case in ("garbage", "foreign", "flowtimer0"):
        rc = uas[case].wait(30)
        expect(rc == 0, f"{case}: pinhole-ua exit {rc}:\n{uas[case].stderr()[-2000:]}")
        expect([e for e in ua_events(fakes[case], "register") if e["expires"] == 0],
               f"{case}: no unregister reached the fake")

    step("(d) unanswered REGISTER (UDP, TCP): timeout logged, exit 4 (first registration failed)")
    for case in ("silent-udp", "silent-tcp"):
        ua = uas[case]
        rc = ua.wait(45)
        expect(rc == 4, f"{case}: pinhole-ua exit {rc}, documented 4:\n{ua.stderr()[-2000:]}")
        timeouts = ua_events(ua, "timeout")
        expect(timeouts, f"{case}: no timeout event: {ua_events(ua)}")
        expect(re.search(r"unanswered|no answer|timed out|timeout", ua.stderr(), re.I),
               f"{case}: no clear log line:\n{ua.stderr()[-2000:]}")
        regs = ua_events(fakes[case], "register")
        expect(regs, f"{case}: the REGISTER never reached the fake")
        if case == "silent-udp":
            expect(len(regs) >= 3, f"{case}: no UDP retransmissions ({len(regs)} REGISTERs)")
    for case, fake in fakes.items():
        expect(fake.running(), f"fake {case} died:\n{fake.stderr()[-1000:]}")


# --------------------------------------------------------------------------- script modes

def _headers(msg):
    head = msg.split("\r\n\r\n", 1)[0].split("\r\n")
    return head[0], head[1:]


def _values(headers, *names):
    names = tuple(n.lower() for n in names)
    out = []
    for h in headers:
        k, _, v = h.partition(":")
        if k.strip().lower() in names:
            out.append(v.strip())
    return out


def _split_contacts(value):
    parts, depth, cur = [], 0, ""
    for ch in value:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _register_reply(msg, src, mode, extra_contacts):
    """(200 OK bytes, the request's Contact values, the expires asked) for a REGISTER: Via with
    received/rport, the request's Contacts with their expires, plus the mode's oddity."""
    _, headers = _headers(msg)
    vias = _values(headers, "via", "v")
    via = vias[0]
    via = re.sub(r";rport(?=;|$)", f";rport={src[1]}", via) + f";received={src[0]}"
    expires_hdr = _values(headers, "expires")
    default = int(expires_hdr[0]) if expires_hdr else 3600
    contacts = []
    expires = default
    for value in _values(headers, "contact", "m"):
        for c in _split_contacts(value):
            m = re.search(r";expires=(\d+)", c)
            e = int(m.group(1)) if m else default
            expires = e
            if e > 0:
                contacts.append(re.sub(r";expires=\d+", "", c) + f";expires={e}")
    lines = ["SIP/2.0 200 OK", f"Via: {via}"] + [f"Via: {v}" for v in vias[1:]]
    lines += [f"From: {_values(headers, 'from', 'f')[0]}",
              f"To: {_values(headers, 'to', 't')[0]};tag=fake{os.getpid()}",
              f"Call-ID: {_values(headers, 'call-id', 'i')[0]}",
              f"CSeq: {_values(headers, 'cseq')[0]}"]
    lines += [f"Contact: {c}" for c in contacts + (extra_contacts if expires > 0 else [])]
    if mode == "flowtimer0":
        lines += ["Require: outbound", "Flow-Timer: 0"]
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode(), [c for c in _values(headers, "contact", "m")], expires


def fake_registrar(transport, listen, mode):
    """A registrar that misbehaves as `mode` says (garbage, foreign, flowtimer0, silent); prints
    one JSON line per event on stdout (ready, register, garbage_sent, closed)."""
    import socket
    host, _, port = listen.rpartition(":")
    foreign = [f"<sip:foreign{i}@198.51.100.{i + 1}:5060>;expires=3600;"
               f"+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-{i:012d}>\";reg-id=1"
               for i in range(50)] if mode == "foreign" else []
    state = {"after_garbage": False, "conns": 0}

    def emit(**kw):
        print(json.dumps(kw), flush=True)

    def handle(msg, src, conn_no):
        start = msg.split("\r\n", 1)[0]
        if not start.startswith("REGISTER "):
            return None
        reply, contacts, expires = _register_reply(msg, src, mode, foreign)
        emit(event="register", conn=conn_no, src=f"{src[0]}:{src[1]}", expires=expires,
             contacts=contacts, after_garbage=state["after_garbage"])
        return None if mode == "silent" else reply

    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, int(port)))
        emit(event="ready")
        while True:
            data, src = s.recvfrom(65535)
            reply = handle(data.decode("latin-1"), src, 0)
            if reply:
                s.sendto(reply, src)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(8)
    emit(event="ready")
    import threading

    def serve(conn, src, conn_no):
        buf = b""
        while True:
            try:
                data = conn.recv(65535)
            except OSError:
                data = b""
            if not data:
                emit(event="closed", conn=conn_no)
                return
            buf += data
            while True:
                if buf.startswith(b"\r\n\r\n"):  # an RFC 5626 CRLF ping: pong it
                    conn.sendall(b"\r\n")
                    buf = buf[4:]
                    continue
                buf = buf.lstrip(b"\r\n")
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                m = re.search(rb"\r\n(?:Content-Length|l)\s*:\s*(\d+)", buf[:end], re.I)
                total = end + 4 + (int(m.group(1)) if m else 0)
                if len(buf) < total:
                    break
                msg, buf = buf[:total], buf[total:]
                reply = handle(msg.decode("latin-1"), src, conn_no)
                if reply:
                    conn.sendall(reply)
                    if mode == "garbage" and not state["after_garbage"]:
                        time.sleep(0.5)
                        # First a blob that frames (a header block) but is not SIP, then bytes
                        # with a Content-Length that no framer can accept.
                        conn.sendall(b"\x16\x03\x01\x00\xff\xfe GARBAGE \x00\x01\x02\r\n\r\n")
                        conn.sendall(b"NOT/SIP \x80\x81\r\nContent-Length: -7\r\n\r\n"
                                     + bytes(range(256)))
                        state["after_garbage"] = True
                        emit(event="garbage_sent", conn=conn_no)

    while True:
        conn, src = srv.accept()
        state["conns"] += 1
        threading.Thread(target=serve, args=(conn, src, state["conns"]), daemon=True).start()


def rtp_peer(local, target_file, count):
    """The caller's RTP side: binds `local`, sends `count` numbered RTP packets at 50 pps to the
    address in `target_file` (the callee's SDP, written by the test once the 200 arrived) and,
    from the first packet received on, to that packet's source (latching, as a relay or SBC in
    front of a NATed phone does). Counts what comes back; prints one JSON summary."""
    import socket
    import struct
    host, _, port = local.rpartition(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, int(port)))
    s.setblocking(False)
    target, latched = None, None
    sent, received, echoed, sources = 0, 0, 0, {}
    ssrc = 0x7E57
    deadline = time.monotonic() + 25
    next_send = None
    last_rx = None
    while time.monotonic() < deadline:
        if target is None and os.path.exists(target_file):
            with open(target_file) as f:
                h, _, p = f.read().strip().rpartition(":")
                target = (h, int(p))
        now = time.monotonic()
        dest = latched or target
        if dest and next_send is None:
            next_send = now  # sending starts with the first place to send to
        if dest and sent < count and now >= next_send:
            pkt = struct.pack("!BBHII", 0x80, 0, sent + 1, 160 * sent, ssrc)
            pkt += f"peer:{sent + 1}:".encode().ljust(160, b"\0")
            try:
                s.sendto(pkt, dest)
            except OSError:
                pass  # e.g. no route to a private SDP address: latching may still save us
            sent += 1
            next_send += 0.02
        try:
            data, src = s.recvfrom(2048)
            received += 1
            last_rx = time.monotonic()
            key = f"{src[0]}:{src[1]}"
            sources[key] = sources.get(key, 0) + 1
            if latched is None:
                latched = src
            if data[12:17] == b"peer:":
                echoed += 1
        except BlockingIOError:
            time.sleep(0.002)
        if sent >= count and (last_rx is None or time.monotonic() - last_rx > 1.5) \
                and time.monotonic() - (next_send or 0) > 1.5:
            break
    print(json.dumps({"sent": sent, "received_from_ua": received, "echoed": echoed,
                      "sources": sources, "target": target and f"{target[0]}:{target[1]}",
                      "latched": latched and f"{latched[0]}:{latched[1]}"}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "fake-registrar":
        fake_registrar(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "rtp-peer":
        rtp_peer(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print("usage: ua_tests.py fake-registrar udp|tcp IP:PORT MODE | "
              "rtp-peer IP:PORT TARGET_FILE COUNT", file=sys.stderr)
        sys.exit(2)
