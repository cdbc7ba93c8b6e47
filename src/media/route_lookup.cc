// rtnetlink RTM_GETROUTE for one destination (route_lookup.h).
#include "media/route_lookup.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cstring>

namespace pinhole::media {
namespace {

constexpr size_t kRequestSpace = 128;
constexpr size_t kReplySpace = 8192;
// Netlink's 4-byte alignment, spelled out: the header macros use C casts our warnings refuse.
constexpr size_t align4(size_t n) { return (n + 3) & ~size_t{3}; }
constexpr size_t kHeader = align4(sizeof(nlmsghdr));
constexpr size_t kRouteBody = align4(sizeof(rtmsg));
constexpr size_t kAttrHeader = align4(sizeof(rtattr));

// Appends one attribute to the request; false when it does not fit.
bool add_attribute(nlmsghdr& header, size_t capacity, uint16_t type, const void* data, size_t size) {
  size_t at = align4(header.nlmsg_len);
  size_t length = kAttrHeader + size;
  if (at + align4(length) > capacity) return false;
  char* base = reinterpret_cast<char*>(&header) + at;
  rtattr attr{static_cast<uint16_t>(length), type};
  std::memcpy(base, &attr, sizeof attr);
  std::memcpy(base + kAttrHeader, data, size);
  header.nlmsg_len = static_cast<uint32_t>(at + align4(length));
  return true;
}

// The netlink socket, closed on every return (this library does not link media's UniqueFd).
struct NetlinkSocket {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  NetlinkSocket() = default;
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;
  ~NetlinkSocket() {
    if (fd >= 0) ::close(fd);
  }
};

bool unspecified(const net::Address& a) {
  for (uint8_t b : a.bytes()) {
    if (b != 0) return false;
  }
  return true;
}

}  // namespace

Result<RouteChoice> lookup_route(const net::Address& source_in, const net::Address& destination_in) {
  net::Address source = source_in.unmapped();
  net::Address destination = destination_in.unmapped();
  if (!unspecified(source) && source.family() != destination.family()) {
    return Error{400, "route lookup: source and destination differ in family"};
  }
  NetlinkSocket socket;
  if (socket.fd < 0) return Error{503, "route lookup: no netlink socket"};
  timeval timeout{1, 0};
  (void)::setsockopt(socket.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

  alignas(nlmsghdr) std::array<char, kRequestSpace> request{};
  auto& header = *reinterpret_cast<nlmsghdr*>(request.data());
  header.nlmsg_len = static_cast<uint32_t>(kHeader + sizeof(rtmsg));
  header.nlmsg_type = RTM_GETROUTE;
  header.nlmsg_flags = NLM_F_REQUEST;
  header.nlmsg_seq = 1;
  auto* route = reinterpret_cast<rtmsg*>(request.data() + kHeader);
  bool v4 = destination.is_v4();
  route->rtm_family = v4 ? AF_INET : AF_INET6;
  route->rtm_dst_len = v4 ? 32 : 128;
  auto dst = destination.bytes();
  if (!add_attribute(header, request.size(), RTA_DST, dst.data(), dst.size())) {
    return Error{500, "route lookup: request too small"};
  }
  if (!unspecified(source)) {
    // The source selects the route under policy routing, as the relay's own send would.
    route->rtm_src_len = v4 ? 32 : 128;
    auto src = source.bytes();
    if (!add_attribute(header, request.size(), RTA_SRC, src.data(), src.size())) {
      return Error{500, "route lookup: request too small"};
    }
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(socket.fd, request.data(), header.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) <
      0) {
    return Error{503, "route lookup: netlink send failed"};
  }

  alignas(nlmsghdr) std::array<char, kReplySpace> reply{};
  ssize_t n = ::recv(socket.fd, reply.data(), reply.size(), 0);
  if (n <= 0) return Error{503, "route lookup: no netlink reply"};
  nlmsghdr answer{};
  auto length = static_cast<size_t>(n);
  if (length < kHeader) return Error{503, "route lookup: malformed netlink reply"};
  std::memcpy(&answer, reply.data(), sizeof answer);
  if (answer.nlmsg_len > length || answer.nlmsg_len < kHeader) {
    return Error{503, "route lookup: malformed netlink reply"};
  }
  if (answer.nlmsg_type == NLMSG_ERROR) return Error{503, "route lookup: no route to the destination"};
  if (answer.nlmsg_type != RTM_NEWROUTE || answer.nlmsg_len < kHeader + kRouteBody) {
    return Error{503, "route lookup: unexpected netlink reply"};
  }
  rtmsg found{};
  std::memcpy(&found, reply.data() + kHeader, sizeof found);
  if (found.rtm_type == RTN_LOCAL) return RouteChoice{true, 0};
  if (found.rtm_type != RTN_UNICAST) return Error{503, "route lookup: the destination is not reachable"};
  // The attributes after the rtmsg: (length, type, value) records, each 4-byte aligned.
  size_t at = kHeader + kRouteBody;
  while (at + kAttrHeader <= answer.nlmsg_len) {
    rtattr attr{};
    std::memcpy(&attr, reply.data() + at, sizeof attr);
    if (attr.rta_len < kAttrHeader || at + attr.rta_len > answer.nlmsg_len) break;
    if (attr.rta_type == RTA_OIF && attr.rta_len >= kAttrHeader + sizeof(uint32_t)) {
      uint32_t ifindex = 0;
      std::memcpy(&ifindex, reply.data() + at + kAttrHeader, sizeof ifindex);
      return RouteChoice{false, ifindex};
    }
    at += align4(attr.rta_len);
  }
  return Error{503, "route lookup: the route names no interface"};
}

}  // namespace pinhole::media
