#include "storage/format/codec.h"

#include <cstdint>
#include <cstring>

#include "common/hash.h"
#include "storage/format/format.h"

namespace tern::storage::format {
namespace {

// ---- primitive writers / readers ----

void putVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void putBytes(std::string& out, std::string_view s) {
  putVarint(out, s.size());
  out.append(s);
}

void putFixed32(std::string& out, uint32_t v) {
  char buf[4];
  std::memcpy(buf, &v, 4);  // little-endian hosts only (x86-64, arm64)
  out.append(buf, 4);
}

// Bounds-checked reader over an untrusted buffer.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
      if (pos_ >= data_.size()) return false;
      auto byte = static_cast<uint8_t>(data_[pos_++]);
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  template <typename T>
  bool varintAs(T* v) {
    uint64_t x;
    if (!varint(&x)) return false;
    *v = static_cast<T>(x);
    return true;
  }
  bool bytes(std::string* s) {
    uint64_t n;
    if (!varint(&n) || n > data_.size() - pos_) return false;
    s->assign(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool fixed32(uint32_t* v) {
    if (data_.size() - pos_ < 4) return false;
    std::memcpy(v, data_.data() + pos_, 4);
    pos_ += 4;
    return true;
  }
  bool done() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t unzigzag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

constexpr size_t kMaxListItems = 1 << 16;

// Sections after the tag list (format version 2): tag, then length-prefixed
// bytes. A reader skips sections it does not know, and the fields it does
// not know at the end of a section it knows: sections are append-only, so
// a later version adds sections or fields without a new format version.
constexpr uint64_t kSectionFreshness = 1;
constexpr uint64_t kSectionBodyFile = 2;

std::string encodeBodyFile(const BodyFileRef& f) {
  std::string out;
  putVarint(out, f.segment);
  putVarint(out, f.offset);
  putVarint(out, f.chunk_sums.size());
  for (uint32_t sum : f.chunk_sums) putFixed32(out, sum);
  return out;
}

bool decodeBodyFile(std::string_view data, BodyFileRef* f) {
  Reader in(data);
  uint64_t n;
  if (!in.varint(&f->segment) || !in.varint(&f->offset) || !in.varint(&n)) return false;
  if (n > data.size() / 4) return false;
  f->chunk_sums.resize(n);
  for (auto& sum : f->chunk_sums) {
    if (!in.fixed32(&sum)) return false;
  }
  return true;
}

std::string encodeFreshness(const StoredFreshness& f) {
  std::string out;
  putVarint(out, zigzag(f.initial_age_ms));
  putVarint(out, (f.no_cache ? 1u : 0u) | (f.must_revalidate ? 2u : 0u) |
                     (f.proxy_revalidate ? 4u : 0u) | (f.s_maxage ? 8u : 0u) |
                     (f.immutable ? 16u : 0u));
  putVarint(out, zigzag(f.stale_while_revalidate_s));
  putVarint(out, zigzag(f.stale_if_error_s));
  return out;
}

bool decodeFreshness(std::string_view data, StoredFreshness* f) {
  Reader in(data);
  uint64_t age, flags, swr, sie;
  if (!in.varint(&age) || !in.varint(&flags) || !in.varint(&swr) || !in.varint(&sie)) return false;
  f->known = true;
  f->initial_age_ms = unzigzag(age);
  f->no_cache = (flags & 1) != 0;
  f->must_revalidate = (flags & 2) != 0;
  f->proxy_revalidate = (flags & 4) != 0;
  f->s_maxage = (flags & 8) != 0;
  f->immutable = (flags & 16) != 0;
  f->stale_while_revalidate_s = unzigzag(swr);
  f->stale_if_error_s = unzigzag(sie);
  return true;
}

}  // namespace

std::string metaKey(const ObjectKey& key) {
  std::string out;
  appendMetaKey(key, &out);
  return out;
}

void appendMetaKey(const ObjectKey& key, std::string* out) {
  const CacheKey& url = key.url;
  out->reserve(out->size() + url.host.size() + url.path.size() + url.query.size() +
               url.scheme.size() + key.variant.size() + 8);
  out->append(url.host).push_back(kSep);
  out->append(url.path);
  if (url.has_query) out->append("?").append(url.query);
  out->push_back(kSep);
  out->append(url.scheme).push_back(kSep);
  out->append(key.variant);
}

std::string urlPrefix(const CacheKey& url) {
  std::string out;
  out.reserve(url.host.size() + url.path.size() + url.query.size() + 8);
  out.append(url.host).push_back(kSep);
  out.append(url.path);
  if (url.has_query) out.append("?").append(url.query);
  out.push_back(kSep);
  return out;
}

std::string hostPrefix(std::string_view host) {
  std::string out(host);
  out.push_back(kSep);
  return out;
}

std::string prefixPrefix(std::string_view url_id_prefix) {
  auto slash = url_id_prefix.find('/');
  if (slash == std::string_view::npos) return hostPrefix(url_id_prefix);
  std::string out(url_id_prefix.substr(0, slash));
  out.push_back(kSep);
  out.append(url_id_prefix.substr(slash));
  return out;
}

bool parseMetaKey(std::string_view key, MetaKeyParts* out) {
  auto a = key.find(kSep);
  if (a == std::string_view::npos) return false;
  auto b = key.find(kSep, a + 1);
  if (b == std::string_view::npos) return false;
  out->host = key.substr(0, a);
  out->path_query = key.substr(a + 1, b - a - 1);
  return true;
}

std::string encodeBigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::string chunkKey(uint64_t object_id, uint32_t index) {
  std::string out = encodeBigEndian64(object_id);
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((index >> shift) & 0xff));
  return out;
}

std::string encodeChunk(std::string_view data) {
  std::string out;
  out.reserve(kChunkHeaderBytes + data.size());
  putFixed32(out, checksum32(data));
  out.append(data);
  return out;
}

Result<std::string_view> chunkData(std::string_view stored) {
  if (stored.size() < kChunkHeaderBytes) return Status::corruption("short body chunk");
  return stored.substr(kChunkHeaderBytes);
}

Result<std::string_view> decodeChunk(std::string_view stored) {
  if (stored.size() < kChunkHeaderBytes) return Status::corruption("short body chunk");
  uint32_t expected;
  std::memcpy(&expected, stored.data(), 4);
  std::string_view data = stored.substr(kChunkHeaderBytes);
  if (checksum32(data) != expected) return Status::corruption("body chunk checksum mismatch");
  return data;
}

std::string tagKey(std::string_view tag, std::string_view meta_key) {
  std::string out = tagPrefix(tag);
  out.append(meta_key);
  return out;
}

std::string tagPrefix(std::string_view tag) {
  std::string out(tag);
  out.push_back(kSep);
  return out;
}

std::string encodeMeta(const MetaRecord& r) {
  const EntryMeta& m = r.meta;
  std::string body;
  body.reserve(256);
  putVarint(body, r.object_id);
  putVarint(body, r.chunk_bytes);
  putVarint(body, m.body_size);
  putVarint(body, m.body_hash);
  putVarint(body, static_cast<uint8_t>(m.kind));
  putVarint(body, m.status);
  putVarint(body, zigzag(m.request_time_ms));
  putVarint(body, zigzag(m.response_time_ms));
  putVarint(body, zigzag(m.freshness_lifetime_ms));
  putVarint(body, m.store_seq);
  putVarint(body, m.stale ? 1 : 0);
  putBytes(body, m.etag);
  putBytes(body, m.last_modified);
  putVarint(body, m.headers.size());
  for (const auto& h : m.headers) {
    putBytes(body, h.name);
    putBytes(body, h.value);
  }
  putVarint(body, m.vary_fields.size());
  for (const auto& f : m.vary_fields) putBytes(body, f);
  putVarint(body, m.tags.size());
  for (const auto& t : m.tags) putBytes(body, t);
  if (m.freshness.known) {
    putVarint(body, kSectionFreshness);
    putBytes(body, encodeFreshness(m.freshness));
  }
  if (r.file) {
    putVarint(body, kSectionBodyFile);
    putBytes(body, encodeBodyFile(*r.file));
  }

  std::string out;
  out.reserve(8 + body.size());
  putFixed32(out, kMetaMagic);
  putFixed32(out, checksum32(body));
  out.append(body);
  return out;
}

Result<MetaRecord> decodeMeta(std::string_view data) {
  if (data.size() < 8) return Status::corruption("short metadata record");
  uint32_t magic, sum;
  std::memcpy(&magic, data.data(), 4);
  std::memcpy(&sum, data.data() + 4, 4);
  if (magic != kMetaMagic && magic != kMetaMagicV1) return Status::corruption("bad metadata magic");
  std::string_view body = data.substr(8);
  if (checksum32(body) != sum) return Status::corruption("metadata checksum mismatch");

  MetaRecord r;
  EntryMeta& m = r.meta;
  Reader in(body);
  uint64_t kind, stale, n, req, resp, fresh;
  bool ok = in.varint(&r.object_id) && in.varintAs(&r.chunk_bytes) && in.varint(&m.body_size) &&
            in.varint(&m.body_hash) && in.varint(&kind) && in.varintAs(&m.status) &&
            in.varint(&req) && in.varint(&resp) && in.varint(&fresh) && in.varint(&m.store_seq) &&
            in.varint(&stale) && in.bytes(&m.etag) && in.bytes(&m.last_modified) && in.varint(&n) &&
            n <= kMaxListItems;
  if (!ok || kind > 1) return Status::corruption("malformed metadata record");
  m.kind = static_cast<EntryKind>(kind);
  m.request_time_ms = unzigzag(req);
  m.response_time_ms = unzigzag(resp);
  m.freshness_lifetime_ms = unzigzag(fresh);
  m.stale = stale != 0;
  m.headers.resize(n);
  for (auto& h : m.headers) {
    if (!in.bytes(&h.name) || !in.bytes(&h.value)) return Status::corruption("malformed header");
  }
  if (!in.varint(&n) || n > kMaxListItems) return Status::corruption("malformed vary list");
  m.vary_fields.resize(n);
  for (auto& f : m.vary_fields) {
    if (!in.bytes(&f)) return Status::corruption("malformed vary list");
  }
  if (!in.varint(&n) || n > kMaxListItems) return Status::corruption("malformed tag list");
  m.tags.resize(n);
  for (auto& t : m.tags) {
    if (!in.bytes(&t)) return Status::corruption("malformed tag list");
  }
  // (A record of version 1 ends with its tags.)
  if (magic == kMetaMagicV1 && !in.done())
    return Status::corruption("trailing bytes in metadata record");
  while (!in.done()) {
    uint64_t section;
    std::string payload;
    if (!in.varint(&section) || !in.bytes(&payload))
      return Status::corruption("malformed metadata section");
    if (section == kSectionFreshness && !decodeFreshness(payload, &m.freshness))
      return Status::corruption("malformed freshness section");
    if (section == kSectionBodyFile && !decodeBodyFile(payload, &r.file.emplace()))
      return Status::corruption("malformed body file section");
  }
  if (r.chunk_bytes == 0 && m.body_size != 0) return Status::corruption("zero chunk size");
  if (r.file) {
    const uint64_t chunks =
        r.chunk_bytes == 0 ? 0 : (m.body_size + r.chunk_bytes - 1) / r.chunk_bytes;
    if (r.file->chunk_sums.size() != (chunks > 1 ? chunks : 0))
      return Status::corruption("body file section does not match the body's chunks");
    if (r.file->offset > UINT64_MAX - m.body_size)
      return Status::corruption("body file section out of range");
  }
  return r;
}

std::string encodeFixed64(uint64_t v) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &v, 8);
  return out;
}

bool decodeFixed64(std::string_view data, uint64_t* v) {
  if (data.size() != 8) return false;
  std::memcpy(v, data.data(), 8);
  return true;
}

std::string markerKey(SelectorKind kind, std::string_view value) {
  std::string out(kMarkerPrefix);
  out.push_back(static_cast<char>('0' + static_cast<int>(kind)));
  out.append(value);
  return out;
}

std::string encodeMark(const PurgeMark& mark) {
  return encodeFixed64(mark.hard_seq) + encodeFixed64(mark.soft_seq);
}

Result<PurgeMarker> decodeMarker(std::string_view key, std::string_view value) {
  if (key.size() < kMarkerPrefix.size() + 1 || value.size() != 16) {
    return Status::corruption("malformed purge marker");
  }
  int kind = key[kMarkerPrefix.size()] - '0';
  if (kind < 0 || kind > static_cast<int>(SelectorKind::kAll)) {
    return Status::corruption("unknown purge marker kind");
  }
  PurgeMarker m;
  m.kind = static_cast<SelectorKind>(kind);
  m.value = std::string(key.substr(kMarkerPrefix.size() + 1));
  decodeFixed64(value.substr(0, 8), &m.mark.hard_seq);
  decodeFixed64(value.substr(8), &m.mark.soft_seq);
  return m;
}

std::string pendingKey(uint64_t object_id) {
  std::string out(kPendingPrefix);
  out.append(encodeBigEndian64(object_id));
  return out;
}

}  // namespace tern::storage::format
