#pragma once
// The request an edge sends to the origin for a client's request, as a
// proxy forwards it (RFC 9110 7.6): hop-by-hop fields removed, Host taken
// apart as the authority, Via, X-Forwarded-For and X-Forwarded-Proto added;
// for a fetch that fills the cache, a GET without the client's conditionals
// and ranges (answered from the cache), with the stored validators when it
// revalidates. Plain code: the request journey (edge/cache) builds its
// origin requests here, and sees nothing of the client that sends them.
//
// Thread-safety: plain functions.

#include <string>
#include <string_view>

#include "edge/http/fields.h"
#include "edge/origin/origin_client.h"

namespace tern::edge::origin {

struct ClientRequest {
  std::string_view method;
  std::string_view target;  // as received
  const http::Fields* headers = nullptr;
  const std::string* body = nullptr;
  std::string_view client_ip;
  std::string_view scheme;  // of the client's connection
  bool http2 = false;       // received over HTTP/2 (Via names the version)
};

struct ForwardAs {
  // False: a GET to fill the cache (a HEAD miss is fetched as GET), without
  // the client's conditionals and ranges and without a body.
  bool keep_method = true;
  std::string_view origin_form;        // for a target not in origin-form
  std::string_view default_authority;  // without a Host field
  std::string_view via = "1.1 tern";   // this hop's Via entry, for HTTP/1.1
  http::Fields validators;             // If-None-Match / If-Modified-Since of a revalidation
};

OriginRequest forwardToOrigin(const ClientRequest& client, const ForwardAs& as);

}  // namespace tern::edge::origin
