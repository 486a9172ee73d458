#pragma once
// Listening sockets shared by the servers (edge and coordinator): parsing a
// "host:port" listen address and opening an acceptor on it.

#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "common/result.h"

namespace tern::net {

// "127.0.0.1:8080", "[::1]:0", ":8080" (all addresses). Port 0: any free port.
Result<boost::asio::ip::tcp::endpoint> parseEndpoint(const std::string& hostport);

// open + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen, with a clear error.
Status openAcceptor(boost::asio::ip::tcp::acceptor& acceptor,
                    const boost::asio::ip::tcp::endpoint& endpoint, bool reuse_port);

}  // namespace tern::net
