// pinhole-parse: prints how pinhole parses SIP messages.
//   pinhole-parse FILE...             one message per file (datagram rules)
//   pinhole-parse --listen PORT [--count N]
//                                     UDP on 127.0.0.1:PORT, one report per datagram; stops after
//                                     N datagrams when --count is given
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "app/message_report.h"

namespace {

int report_files(int argc, char** argv) {
  int rc = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::cerr << argv[i] << ": cannot open\n";
      rc = 1;
      continue;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::cout << "== " << argv[i] << "\n" << pinhole::app::describe_message(ss.str());
  }
  return rc;
}

int listen_udp(uint16_t port, long count) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    perror("bind");
    close(fd);
    return 1;
  }
  std::cout << "pinhole-parse: listening on udp 127.0.0.1:" << port << " (Ctrl-C to stop)" << std::endl;
  std::array<char, 65536> buf{};
  for (long n = 0; count < 0 || n < count; ++n) {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ssize_t got = recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (got < 0) {
      perror("recvfrom");
      break;
    }
    std::array<char, INET_ADDRSTRLEN> ip{};
    inet_ntop(AF_INET, &from.sin_addr, ip.data(), ip.size());
    std::cout << "== from " << ip.data() << ":" << ntohs(from.sin_port) << "\n"
              << pinhole::app::describe_message(std::string_view(buf.data(), static_cast<size_t>(got))) << std::flush;
  }
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "--listen") == 0) {
    long count = -1;
    if (argc >= 5 && std::strcmp(argv[3], "--count") == 0) count = std::atol(argv[4]);
    return listen_udp(static_cast<uint16_t>(std::atoi(argv[2])), count);
  }
  if (argc < 2) {
    std::cerr << "usage: pinhole-parse FILE... | --listen PORT [--count N]\n";
    return 2;
  }
  return report_files(argc, argv);
}
