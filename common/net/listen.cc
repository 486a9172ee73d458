#include "common/net/listen.h"

#include <sys/socket.h>

#include <boost/asio/socket_base.hpp>
#include <charconv>

namespace tern::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Result<tcp::endpoint> parseEndpoint(const std::string& hostport) {
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos)
    return Status::invalidArgument("listen address must be host:port: " + hostport);
  std::string host = hostport.substr(0, colon);
  if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return Status::invalidArgument("bad listen address '" + hostport + "': " + ec.message());
  std::string_view port_text(hostport.data() + colon + 1, hostport.size() - colon - 1);
  unsigned port = 0;
  auto [p, perr] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (perr != std::errc() || p != port_text.data() + port_text.size() || port > 65535)
    return Status::invalidArgument("bad port in " + hostport);
  return tcp::endpoint(addr, static_cast<unsigned short>(port));
}

Status openAcceptor(tcp::acceptor& acc, const tcp::endpoint& ep, bool reuse_port) {
  boost::system::error_code ec;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse_port) {
    int one = 1;
    ::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::ioError("cannot listen on " + ep.address().to_string() + ":" +
                           std::to_string(ep.port()) + ": " + ec.message());
  return Status::ok();
}

}  // namespace tern::net
