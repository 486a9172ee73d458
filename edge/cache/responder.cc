// Responder's default for stored responses, and which stored fields a hit
// sends: apart from the journey, so that a responder's code (the HTTP/2
// connection, its fuzz target) links without the whole journey.

#include "edge/cache/request_flow.h"
#include "edge/http/fields.h"
#include "edge/http/surrogate_keys.h"

namespace tern::edge::cache {

bool storedFieldIsSent(std::string_view name) {
  return !(http::iequals(name, "age") || http::iequals(name, "via") ||
           http::iequals(name, "content-length") || http::isHopByHop(name) ||
           http::isSurrogateKeyField(name));
}

void Responder::respondStored(int status, std::shared_ptr<const storage::EntryMeta> stored,
                              http::Fields added, std::unique_ptr<BodySource> body,
                              std::optional<uint64_t> content_length) {
  http::Fields headers;
  headers.reserve(stored->headers.size() + added.size());
  for (const auto& f : stored->headers) {
    if (storedFieldIsSent(f.name)) headers.push_back(f);
  }
  for (auto& f : added) headers.push_back(std::move(f));
  respond(status, std::move(headers), std::move(body), content_length);
}

}  // namespace tern::edge::cache
