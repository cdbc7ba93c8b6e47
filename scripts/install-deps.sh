#!/usr/bin/env bash
# Installs every Debian 12 package that pinhole, its tests and its benchmarks need.
# Idempotent: asks dpkg what is missing and installs only that; runs `apt-get update`
# only when something is missing. Must run as root (CI and `make run`/`make test` do).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  clang clang-tidy clang-format libclang-rt-14-dev llvm
  # libraries (DESIGN.md §3)
  libboost-dev libssl-dev libabsl-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libcli11-dev nlohmann-json3-dev libsqlite3-dev libhiredis-dev libc-ares-dev libbpf-dev bpftool
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev libosip2-dev
  # real peers and the NAT lab (DESIGN.md §5)
  sip-tester kamailio kamailio-extra-modules kamailio-redis-modules kamailio-sqlite-modules baresip rtpengine-daemon
  redis-server sqlite3 iproute2 iptables conntrack openssl tshark dnsmasq-base procps psmisc netcat-openbsd
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root: sudo $0" >&2
  exit 1
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Daemons (kamailio, redis, rtpengine) must not start at install time: the tests start
# their own instances on their own ports. policy-rc.d is the Debian way to say so.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { [ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; true; }
trap cleanup EXIT

echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
