"""Issue 7 (pinhole-ua) acceptance in the NAT lab, against Kamailio as registrar with digest auth:

- ua_contact_learning (acceptance 4): pinhole-ua at ua2 behind nat2 (--random-fully) over UDP;
  the first 401 teaches the public address, the authenticated REGISTER carries it, exactly one
  binding remains.
- ua_tcp_pinned (acceptance 1, without dnsmasq: the proxy is given by address): over TCP from
  ua1 behind nat1, five refreshes all on the same connection, Contact keeps transport=tcp, Via
  carries ;alias, REGISTER carries Supported: path, outbound; one binding.

Kamailio's script (written into the workdir) challenges every REGISTER without valid
credentials and logs one line per accepted REGISTER with the TCP connection id, the Contact,
the Via and Supported, which is what the checks read.
"""

import os
import re

from lab import ADDR, LabError, wait_until
from labtest import TestFailure, expect, step, test
from peers import Kamailio

PASSWORD = "ua-lab-secret"
KAM = ADDR["core"]

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
            xlog("L_INFO", "UA-CHALLENGE conid=$conid src=$si:$sp ct=$ct\n");
            www_challenge("lab.example", "1");
            exit;
        }}
        xlog("L_INFO", "UA-REGISTER conid=$conid proto=$proto src=$si:$sp ct=$ct via=$hdr(Via) sup=$hdr(Supported)\n");
        if (!save("location")) sl_reply_error();
        exit;
    }}
    if (is_method("OPTIONS")) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    sl_send_reply("404", "Not Found");
}}
"""


def start_kamailio(lab):
    cfg = lab.path("ua-kamailio.cfg")
    with open(cfg, "w") as f:
        f.write(KAMAILIO_CFG.format(listen=KAM, password=PASSWORD))
    return Kamailio(lab, cfg, name="kamailio-ua")


def ua_binary(args):
    path = os.path.join(os.path.dirname(os.path.abspath(args.pinhole or "")), "pinhole-ua")
    if not os.access(path, os.X_OK):
        raise LabError(f"pinhole-ua not built next to the daemon: {path}")
    return path


def spawn_ua(lab, args, role, proxy, name, extra=()):
    argv = [ua_binary(args), "--log-level", "debug", "register", "--aor", "sip:alice@lab.example",
            "--password", PASSWORD, "--outbound-proxy", proxy, "--json",
            "--instance-file", lab.path(f"{name}.instance"), *extra]
    return lab.spawn(role, argv, name)


def registers(kam):
    return re.findall(r"UA-REGISTER (.*)", kam.log())


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
           f"the authenticated REGISTER does not carry the learned address {public}:\n{accepted[0]}")
    src = re.search(r"src=(\S+)", accepted[0]).group(1)
    expect(f"@{src};" in accepted[0] or f"@{src}>" in accepted[0],
           f"Contact is not the mapped source {src}:\n{accepted[0]}")
    contacts = kam.contacts("alice")
    expect(len(contacts) == 1, f"expected exactly one binding, got {contacts}")
    step("pinhole-ua exits after --duration and unregisters")
    rc = ua.wait(20)
    expect(rc == 0, f"pinhole-ua exit code {rc}:\n{ua.stderr()[-3000:]}")
    expect('"event":"contact_changed"' in ua.stdout(), "no contact_changed event from the 401")
    wait_until(lambda: not kam.contacts("alice"), 5, "the binding removed by the unregister")


@test("kamailio", "kamcmd")
def ua_tcp_pinned(lab, args):
    """Acceptance 1 (address, no dnsmasq): TCP from ua1, 5 refreshes on one connection."""
    kam = start_kamailio(lab)
    step("pinhole-ua at ua1 registers over TCP for 10 s bindings (refresh every 5 s)")
    ua = spawn_ua(lab, args, "ua1", f"tcp:{KAM}:5060", "ua-alice",
                  ["--expires", "10", "--duration", "32"])
    try:
        wait_until(lambda: len(registers(kam)) >= 6, 40, "the first REGISTER and 5 refreshes")
    except LabError:
        raise TestFailure(f"only {len(registers(kam))} REGISTERs accepted:\n{ua.stderr()[-3000:]}")
    accepted = registers(kam)[:6]
    conids = {re.search(r"conid=(\S+)", r).group(1) for r in accepted}
    srcs = {re.search(r"src=(\S+)", r).group(1) for r in accepted}
    expect(len(conids) == 1 and len(srcs) == 1,
           f"REGISTERs came over several connections: conid {conids}, sources {srcs}")
    for r in accepted:
        expect("transport=tcp" in r, f"Contact lost transport=tcp:\n{r}")
        expect(re.search(r"via=SIP/2.0/TCP [^ ]*;alias", r) or ";alias" in r.split("via=", 1)[1],
               f"Via without ;alias:\n{r}")
        expect("sup=path, outbound" in r, f"no Supported: path, outbound:\n{r}")
        expect(f"@{ADDR['nat1']}:" in r, f"Contact is not nat1's public address:\n{r}")
    contacts = kam.contacts("alice")
    expect(len(contacts) == 1, f"expected one binding, got {contacts}")
    rc = ua.wait(40)
    expect(rc == 0, f"pinhole-ua exit code {rc}:\n{ua.stderr()[-3000:]}")
