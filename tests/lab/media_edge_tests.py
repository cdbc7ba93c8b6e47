"""NAT-lab acceptance of media anchored by the pinhole edge itself (issue 6, acceptance 1, 2, 4
and 5 through pinhole). Importing this module registers the tests (labtest.TESTS).

pinhole runs in registrar mode in `pin` with `media:` on, using pinhole-media (also in `pin`)
as its remote relay over ng: the edge decides offer/answer/delete from the SIP it routes, and
the relay's ng `query` shows what each leg latched to. The phones are media_tests.Phone (raw SIP
from one UDP socket, the SDP naming the private address and port their RTP tool uses) with
pinhole as their proxy: ua1 behind nat1, ua1b beside it on the same LAN, ua2 behind nat2
(--random-fully).
"""

import time

from lab import ADDR, LabError, wait_until
from labtest import TestFailure, expect, step, test
from media_tests import (PHONE_RTP, PORTS, RELAY, Phone, check_call_media, expect_relay_targets,
                         hang_up_and_check_freed, need_media_binary, register_and_call,
                         relay_udp_ports, rtp_stream, rtp_summary, sdp_media, sdp_offer, start_both,
                         start_phone_rtp)
from peers import NG_PORT, PIN, REG_DOMAIN, PinholeMedia, RegistrarPinhole

MEDIA_CONFIG = f"""media:
  enabled: true
  relay: auto
  relays:
    - {{ address: "udp:{RELAY}:{NG_PORT}", weight: 1 }}
"""
PROXY = (PIN, 5060)


def start_edge(lab, args):
    relay = PinholeMedia(lab, need_media_binary(args), ports=PORTS)
    pin = RegistrarPinhole(lab, args.pinhole, auth={"register": "false", "requests": "false"},
                           extra=MEDIA_CONFIG)
    return relay, pin


def phone(lab, role, user):
    return Phone(lab, role, user, proxy=PROXY, domain=REG_DOMAIN)


def edge_call(lab, args, callee_role, callee_user):
    """pinhole-media + pinhole; the callee registers with pinhole, alice (ua1) calls it."""
    relay, pin = start_edge(lab, args)

    def logs():
        return f"--- pinhole\n{pin.proc.stderr()[-4000:]}\n--- relay\n{relay.log()[-2000:]}"

    caller, callee = phone(lab, "ua1", "alice"), phone(lab, callee_role, callee_user)
    call, targets = register_and_call(caller, callee, "pinhole", logs)
    return relay, pin, call, targets, logs


def anchored_call(lab, args):
    """bob (ua2, behind nat2) is called: both SDPs must name relay ports."""
    relay, pin, call, targets, logs = edge_call(lab, args, "ua2", "bob")
    expect_relay_targets(targets, logs)
    return relay, pin, call, targets


@test("conntrack", "ss")
def media_edge_call(lab, args):
    """Acceptance 1 and 2 through pinhole: the edge anchors a NATed call on its own; RTP both
    ways, >= 99.9 % arrives, both legs latched to the NATs' public ports, no clipping; BYE
    deletes the session and frees the ports."""
    relay, pin, call, targets = anchored_call(lab, args)
    step("both phones send RTP at 50/s to the relay port their SDP names")
    procs = start_both(lab, targets)
    res = {role: rtp_summary(p) for role, p in procs.items()}
    query = relay.ng({"command": "query", "call-id": call.call_id})
    expect(query.get("result") == "ok", f"query: {query}")
    check_call_media(lab, relay, call, res, query)
    hang_up_and_check_freed(lab, relay, call)
    metrics = pin.metrics()
    for name in ("pinhole_media_offers_total", "pinhole_media_answers_total",
                 "pinhole_media_deletes_total"):
        expect(metrics.get(name, 0) >= 1, f"{name} = {metrics.get(name)}")


@test("ss")
def media_edge_same_lan(lab, args):
    """Acceptance 4: ua1 calls ua1b, both behind nat1 (one public address): under relay: auto
    no relay is engaged and each phone gets the other's own SDP."""
    relay, pin, call, targets, _ = edge_call(lab, args, "ua1b", "carol")
    to1, to1b = targets["ua1"], targets["ua1b"]
    expect(to1b == (ADDR["ua1"], PHONE_RTP["ua1"]),
           f"carol's INVITE names {to1b}, not alice's own SDP address")
    expect(to1 == (ADDR["ua1b"], PHONE_RTP["ua1b"]),
           f"alice's 200 names {to1}, not carol's own SDP address")
    listed = relay.ng({"command": "list"})
    expect(listed.get("calls") == [], f"the relay holds calls: {listed}")
    expect(not relay_udp_ports(lab), f"relay ports in use: {relay_udp_ports(lab)}")
    metrics = pin.metrics()
    expect(metrics.get("pinhole_media_not_relayed_total", 0) >= 1,
           f"not counted as left direct: {metrics.get('pinhole_media_not_relayed_total')}")
    expect(metrics.get("pinhole_media_offers_total", 0) == 0, "an offer went to the relay")
    call.hang_up()


@test("conntrack", "ss")
def media_edge_reinvite(lab, args):
    """Acceptance 5: bob (the callee) re-INVITEs to move his media to a new port; after it the
    RTP from the new port reaches alice and alice's reaches it; BYE frees every port."""
    relay, pin, call, targets = anchored_call(lab, args)
    step("a first burst of RTP both ways latches both legs")
    procs = start_both(lab, targets)
    for p in procs.values():
        rtp_summary(p)
    new_port = PHONE_RTP["ua2"] + 10
    step(f"bob re-INVITEs with his media moved to port {new_port}")
    ua1, ua2 = call.caller, call.callee
    seen1, seen2 = len(ua1.agent.received()), len(ua2.agent.received())
    ua2.agent.send(call.from_callee("INVITE", 10, sdp_offer("ua2", new_port, version=2)))
    reinv = ua1.wait_request("INVITE", call.call_id, seen1)
    to_alice = sdp_media(reinv.text)
    expect(to_alice == targets["ua1"],
           f"the re-INVITE tells alice {to_alice}, before {targets['ua1']}")
    ua1.respond(reinv, 200, "OK", None, sdp_offer("ua1", PHONE_RTP["ua1"], version=2))
    ok = ua2.wait_response("10 INVITE", call.call_id, 200, seen2)
    to_bob = sdp_media(ok.text)
    expect(to_bob == targets["ua2"], f"the 200 tells bob {to_bob}, before {targets['ua2']}")
    ua2.agent.send(call.from_callee("ACK", 10))
    step("RTP again: bob from the new port")
    start_at = time.time() + 2.0
    p2 = start_phone_rtp(lab, "ua2", to_bob, 20000, start_at, port=new_port, count=150)
    p1 = start_phone_rtp(lab, "ua1", to_alice, 3000, start_at + 0.25, count=150)
    res = {"ua2": rtp_summary(p2), "ua1": rtp_summary(p1)}
    query = relay.ng({"command": "query", "call-id": call.call_id})
    leg2 = rtp_stream(query, call.to_tag)
    print(f"    bob's leg after the re-INVITE: {leg2.get('endpoint')} {leg2.get('flags')}",
          flush=True)
    expect(leg2.get("endpoint", {}).get("address") == ADDR["nat2"],
           f"bob's leg is latched to {leg2.get('endpoint')}")
    got_from_bob = len(set(res["ua1"]["seqs"].get("ua2", [])))
    got_from_alice = len(set(res["ua2"]["seqs"].get("ua1", [])))
    expect(got_from_bob >= 140, f"alice got {got_from_bob} of bob's 150 packets from his new port")
    expect(got_from_alice >= 140,
           f"bob got {got_from_alice} of alice's 150 packets at his new port")
    hang_up_and_check_freed(lab, relay, call)
