// The reuseport steering program and its user-space twin (see udp_steering.h).
#include "transport/udp_steering.h"

#include <linux/filter.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <vector>

namespace pinhole::transport {
namespace {

constexpr uint32_t kGolden = 0x9E3779B1U;  // 2^32 / phi: spreads nearby addresses and ports apart

uint32_t word_at(std::span<const uint8_t> b, size_t i) {
  return (static_cast<uint32_t>(b[i]) << 24) | (static_cast<uint32_t>(b[i + 1]) << 16) |
         (static_cast<uint32_t>(b[i + 2]) << 8) | b[i + 3];
}

uint32_t finish(uint32_t mixed, size_t workers) { return ((mixed * kGolden) >> 16) % static_cast<uint32_t>(workers); }

sock_filter stmt(uint16_t code, uint32_t k) { return sock_filter{code, 0, 0, k}; }

}  // namespace

uint32_t udp_steering_worker(const net::Endpoint& source, size_t workers) {
  if (workers <= 1) return 0;
  auto b = source.address.bytes();
  uint32_t mixed = word_at(b, 0);
  for (size_t i = 4; i < b.size(); i += 4) mixed ^= word_at(b, i);
  return finish(mixed ^ source.port, workers);
}

Status attach_udp_steering(int fd, size_t workers, bool ipv6) {
  if (workers <= 1) return Status::Ok();
  // The program runs with the packet's data at the UDP payload; SKF_NET_OFF reaches the IP
  // header. Loads are big-endian, as word_at() reads.
  constexpr uint32_t kNet = static_cast<uint32_t>(SKF_NET_OFF);
  std::vector<sock_filter> code;
  if (ipv6) {
    // Source address at 8..23, UDP source port right after the 40-byte header.
    code.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, kNet + 8));
    for (uint32_t off : {12U, 16U, 20U}) {
      code.push_back(stmt(BPF_MISC | BPF_TAX, 0));
      code.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, kNet + off));
      code.push_back(stmt(BPF_ALU | BPF_XOR | BPF_X, 0));
    }
    code.push_back(stmt(BPF_MISC | BPF_TAX, 0));
    code.push_back(stmt(BPF_LD | BPF_H | BPF_ABS, kNet + 40));
  } else {
    // X = header length (IHL * 4), A = source port, then the source address at 12.
    code.push_back(stmt(BPF_LDX | BPF_B | BPF_MSH, kNet));
    code.push_back(stmt(BPF_LD | BPF_H | BPF_IND, kNet));
    code.push_back(stmt(BPF_MISC | BPF_TAX, 0));
    code.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, kNet + 12));
  }
  code.push_back(stmt(BPF_ALU | BPF_XOR | BPF_X, 0));
  code.push_back(stmt(BPF_ALU | BPF_MUL | BPF_K, kGolden));
  code.push_back(stmt(BPF_ALU | BPF_RSH | BPF_K, 16));
  code.push_back(stmt(BPF_ALU | BPF_MOD | BPF_K, static_cast<uint32_t>(workers)));
  code.push_back(stmt(BPF_RET | BPF_A, 0));
  sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) != 0) {
    return Error{500, errno == EPERM ? "SO_ATTACH_REUSEPORT_CBPF refused (EPERM)" : "SO_ATTACH_REUSEPORT_CBPF failed"};
  }
  return Status::Ok();
}

}  // namespace pinhole::transport
