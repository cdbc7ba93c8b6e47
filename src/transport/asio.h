// The Boost.Asio headers the transport uses, in one place. GCC 12 at -O2 reports a "potential
// null pointer dereference" inside Asio's scheduler (scheduler.ipp, thread_info) wherever a socket
// is closed or work is posted: a false positive in Asio 1.74 inlined into our code. It is silenced
// for Asio's own lines only (the pragma state follows the header's source locations), so our code
// keeps -Wnull-dereference. Include this before anything else that pulls in Asio.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#endif

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
