// The request head path of tern-edge: the bytes a client sends, parsed by
// Beast with the edge's limits, checked as the server checks them
// (http::checkRequestHead), and then through what the request flow reads
// from an accepted head: the cache key, request Cache-Control, the variant,
// conditionals and Range against a stored response. Never a crash; an
// accepted head has exactly one Host and no line break in any value.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "edge/http/cache_control.h"
#include "edge/http/conditional.h"
#include "edge/http/range.h"
#include "edge/http/request_head.h"
#include "edge/http/vary.h"
#include "storage/cache_key.h"

namespace bhttp = boost::beast::http;
using namespace tern::edge::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(32 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(false);
  boost::beast::error_code ec;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Fed in two pieces, as a network delivers them: the parser keeps state.
  size_t split = size ? data[0] % (size + 1) : 0;
  std::string buffered;
  for (std::string_view piece : {bytes.substr(0, split), bytes.substr(split)}) {
    buffered.append(piece);
    while (!buffered.empty() && !parser.is_header_done()) {
      size_t used = parser.put(boost::asio::buffer(buffered), ec);
      if (ec) break;
      buffered.erase(0, used);
      if (used == 0) break;
    }
    if (ec && ec != bhttp::error::need_more) return 0;
    ec = {};
  }
  if (!parser.is_header_done()) return 0;
  auto& msg = parser.get();
  RequestHead head;
  head.version = msg.version();
  head.chunked = msg.chunked();
  for (const auto& f : msg) head.fields.emplace_back(f.name_string(), f.value());
  Fields headers;
  if (checkRequestHead(head, 100, &headers)) return 0;  // refused: nothing more is read
  if (countField(headers, "host") != 1) __builtin_trap();
  for (const auto& f : headers)
    if (hasLineBreak(f.value)) __builtin_trap();

  const std::string_view target(msg.target().data(), msg.target().size());
  auto key =
      tern::storage::CacheKey::fromRequest("http", trim(*findField(headers, "host")), target);
  if (key.ok()) (void)tern::storage::CacheKey::fromUrl(key->toString());
  (void)requestCacheControl(headers);
  (void)variantId(headers, {"accept-encoding", "accept-language", "accept", "cookie"});
  const Fields stored = {{"ETag", "\"v1\""},
                         {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"},
                         {"Cache-Control", "max-age=60"}};
  (void)notModified(std::string_view(msg.method_string().data(), msg.method_string().size()),
                    headers, stored);
  auto range = decideRange("GET", headers, stored, 1000);
  if (range.outcome == RangeOutcome::kPartial && range.range.last >= 1000) __builtin_trap();
  return 0;
}
