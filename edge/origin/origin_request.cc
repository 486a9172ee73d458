#include "edge/origin/origin_request.h"

namespace tern::edge::origin {

OriginRequest forwardToOrigin(const ClientRequest& client, const ForwardAs& as) {
  const http::Fields& in = *client.headers;
  OriginRequest o;
  o.method = as.keep_method ? std::string(client.method) : "GET";
  o.target =
      client.target.starts_with("/") ? std::string(client.target) : std::string(as.origin_form);
  auto host = http::findField(in, "host");
  o.authority = host ? std::string(http::trim(*host)) : std::string(as.default_authority);
  o.headers = in;
  http::stripHopByHop(o.headers);
  http::removeField(o.headers, "host");
  http::removeField(o.headers, "tern-debug");  // the edge's, not the origin's
  if (!as.keep_method) {
    for (auto f : {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "range",
                   "if-range"}) {
      http::removeField(o.headers, f);
    }
  }
  for (const auto& v : as.validators) o.headers.push_back(v);
  std::string xff = http::combinedField(in, "x-forwarded-for");
  http::setField(
      o.headers, "X-Forwarded-For",
      xff.empty() ? std::string(client.client_ip) : xff + ", " + std::string(client.client_ip));
  http::setField(o.headers, "X-Forwarded-Proto", client.scheme);
  // Via names the protocol the request was received with (RFC 9110 7.6.3).
  std::string own(as.via);
  if (client.http2 && own.starts_with("1.1 ")) own.replace(0, 3, "2");
  std::string via = http::combinedField(in, "via");
  http::setField(o.headers, "Via", via.empty() ? own : via + ", " + own);
  if (as.keep_method && client.body) o.body = *client.body;
  return o;
}

}  // namespace tern::edge::origin
