// SDP bodies the SDP unit tests share: the shapes real peers send (the same ones seed
// tests/fuzz/seeds/fuzz_sdp/), written with LF here; crlf() gives the CRLF form phones send.
#pragma once

#include <string>
#include <string_view>

namespace pinhole::sdp::testing {

inline std::string crlf(std::string_view lf_text) {
  std::string out;
  for (char c : lf_text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// SIPp's built-in uac scenario.
inline constexpr std::string_view kSipp = R"(v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
)";

// baresip behind a NAT: private session c=, rtcp-mux on both streams, media-level directions.
inline constexpr std::string_view kBaresip = R"(v=0
o=- 1485813410 2073225622 IN IP4 192.168.1.10
s=-
c=IN IP4 192.168.1.10
t=0 0
a=tool:baresip 3.0.0
m=audio 10390 RTP/AVP 96 0 8 101
b=AS:96
a=rtpmap:96 opus/48000/2
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-mux
a=sendrecv
a=ptime:20
m=video 10392 RTP/AVP 100
b=AS:1500
a=rtpmap:100 VP8/90000
a=rtcp-fb:100 nack pli
a=rtcp-mux
a=sendrecv
)";

// Linphone: a=rtcp without an address (RFC 3605), no rtcp-mux.
inline constexpr std::string_view kLinphone = R"(v=0
o=alice 2105 1432 IN IP4 192.168.1.11
s=Talk
c=IN IP4 192.168.1.11
t=0 0
m=audio 7078 RTP/AVP 96 0 8 101
a=rtpmap:96 opus/48000/2
a=rtpmap:101 telephone-event/8000
a=rtcp:7079
a=rtcp-fb:* trr-int 1000
m=video 9078 RTP/AVP 96 97
a=rtpmap:96 VP8/90000
a=rtcp:9079
)";

// A browser offer: media-level c=, a=rtcp naming 0.0.0.0, host/srflx/tcp/mDNS candidates,
// rtcp-mux, BUNDLE, end-of-candidates on the second stream.
inline constexpr std::string_view kWebrtc = R"(v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic: WMS 9a7c2f
m=audio 54400 UDP/TLS/RTP/SAVPF 111 0 8
c=IN IP4 198.51.100.23
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:3348148302 1 udp 2122260223 192.168.1.20 54400 typ host generation 0 network-id 1
a=candidate:1805396094 1 udp 1686052607 198.51.100.23 54400 typ srflx raddr 192.168.1.20 rport 54400 generation 0
a=candidate:4233069003 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active generation 0
a=candidate:2157334355 1 udp 2113937151 4f3e9a1c-8b2d.local 54401 typ host generation 0
a=ice-ufrag:Y0e+
a=ice-pwd:Zk1k2vF8S4W0cE6n2R5bqLw3
a=ice-options:trickle
a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B
a=setup:actpass
a=mid:0
a=sendrecv
a=rtcp-mux
a=rtpmap:111 opus/48000/2
m=video 54400 UDP/TLS/RTP/SAVPF 96
c=IN IP4 198.51.100.23
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:3348148302 1 udp 2122260223 192.168.1.20 54400 typ host generation 0
a=end-of-candidates
a=ice-ufrag:Y0e+
a=ice-pwd:Zk1k2vF8S4W0cE6n2R5bqLw3
a=mid:1
a=sendrecv
a=rtcp-mux
a=rtpmap:96 VP8/90000
)";

// An IPv6 answer; "s= " is RFC 8866's advice for an empty session name.
inline constexpr std::string_view kIpv6 = R"(v=0
o=bob 2808844564 2808844564 IN IP6 2001:db8::2
s= 
c=IN IP6 2001:db8::2
t=0 0
m=audio 49172 RTP/AVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=rtcp:49173 IN IP6 2001:db8::2
)";

// RFC 2543 hold: c=0.0.0.0 while still saying sendrecv (Grandstream, older Cisco).
inline constexpr std::string_view kHoldZero = R"(v=0
o=GS-Phone 8000 8001 IN IP4 10.0.0.45
s=SIP Call
c=IN IP4 0.0.0.0
t=0 0
m=audio 5004 RTP/AVP 0 8 18 101
a=rtpmap:18 G729/8000
a=ptime:20
a=sendrecv
)";

// RFC 3264 hold: session-level sendonly inherited by audio, video overriding with recvonly.
inline constexpr std::string_view kHoldSendonly = R"(v=0
o=Zoiper 0 2 IN IP4 192.168.0.20
s=Z
c=IN IP4 192.168.0.20
t=0 0
a=sendonly
m=audio 8000 RTP/AVP 0 101
a=rtpmap:101 telephone-event/8000
m=video 8002 RTP/AVP 99
a=rtpmap:99 H264/90000
a=recvonly
)";

// A PBX: no session c=, a disabled video stream, T.38, a port count, an inactive stream.
inline constexpr std::string_view kMultiMedia = R"(v=0
o=pbx 1000 1002 IN IP4 pbx.example.com
s=call
t=0 0
m=audio 20000 RTP/AVP 8 0 101
c=IN IP4 172.16.4.9
a=rtpmap:101 telephone-event/8000
a=rtcp:20001 IN IP4 172.16.4.9
m=video 0 RTP/AVP 34
c=IN IP4 172.16.4.9
m=image 20002 udptl t38
c=IN IP4 172.16.4.9
a=T38FaxVersion:0
a=T38FaxUdpEC:t38UDPRedundancy
m=audio 20004/2 RTP/AVP 0
c=IN IP4 172.16.4.9
b=AS:64
a=inactive
)";

// RFC 3264 §10.1, the offer (host names as connection addresses).
inline constexpr std::string_view kRfc3264Offer = R"(v=0
o=alice 2890844526 2890844526 IN IP4 host.anywhere.com
s=
c=IN IP4 host.anywhere.com
t=0 0
m=audio 49170 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 51372 RTP/AVP 31
a=rtpmap:31 H261/90000
m=video 53000 RTP/AVP 32
a=rtpmap:32 MPV/90000
)";

// RFC 3264 §10.1, the answer: the H.261 stream refused with port 0.
inline constexpr std::string_view kRfc3264Answer = R"(v=0
o=bob 2808844564 2808844564 IN IP4 host.example.com
s=
c=IN IP4 host.example.com
t=0 0
m=audio 49920 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 0 RTP/AVP 31
m=video 53000 RTP/AVP 32
a=rtpmap:32 MPV/90000
)";

// RFC 8866 §5's example: multicast c= with a TTL, i=/u=/e= lines.
inline constexpr std::string_view kMulticast = R"(v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
c=IN IP4 224.2.17.12/127
t=2873397496 2873404696
a=recvonly
m=audio 49170 RTP/AVP 0
m=video 51372 RTP/AVP 99
a=rtpmap:99 h263-1998/90000
)";

}  // namespace pinhole::sdp::testing
