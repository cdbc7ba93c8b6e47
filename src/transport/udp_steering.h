// Which worker reads a UDP datagram: our own choice instead of the kernel's SO_REUSEPORT hash.
//
// Every worker binds each UDP listener with SO_REUSEPORT, and by default the kernel picks the
// socket by a keyed hash of the 4-tuple that user space cannot compute. State that belongs to a
// client's address (its keepalive endpoint) then lives on a worker chosen by our own hash, and
// every change to it made by the worker that received the client's datagram was a cross-worker
// post: a mutex, an eventfd write and a wake-up of the other worker, three times per call.
// A classic BPF program on the reuseport group (SO_ATTACH_REUSEPORT_CBPF) makes the kernel pick
// the socket by `udp_steering_worker` of the source address, so the receiving worker is the owner.
// Without it (the attach failed, one worker) everything stays correct; only the posts come back.
//
// Threads: pure functions; attach before the workers start reading.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/result.h"
#include "net/address.h"

namespace pinhole::transport {

// The worker index in [0, workers) for a datagram from `source` (workers >= 1). Identical to what
// the attached program computes in the kernel: a multiplicative hash of the source address
// (IPv6: its four 32-bit words XORed) XORed with the source port.
uint32_t udp_steering_worker(const net::Endpoint& source, size_t workers);

// Attaches the steering program to the reuseport group `fd` belongs to. The group's sockets must
// have been bound in worker order (socket i of the group = worker i). `ipv6`: the listener's family.
Status attach_udp_steering(int fd, size_t workers, bool ipv6);

}  // namespace pinhole::transport
