#pragma once
// Small helpers shared by the RocksStore tests: open a store, write a whole
// object, read one back as text ("<miss>" when absent, "<error>" on a
// failure).

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/object_store.h"
#include "storage/rocksdb/rocks_store.h"

namespace tern::storage::store_access {

// Opens a store; a failure fails the test and gives null.
inline std::unique_ptr<RocksStore> openStore(const RocksStoreOptions& o) {
  auto s = RocksStore::open(o);
  EXPECT_TRUE(s.ok()) << s.status().toString();
  return s.ok() ? std::move(*s) : nullptr;
}

inline ObjectKey key(std::string_view url) { return {*CacheKey::fromUrl(url), {}}; }

inline Status put(ObjectStore& st, const ObjectKey& k, std::string_view body,
                  std::vector<std::string> tags = {}) {
  EntryMeta m;
  m.tags = std::move(tags);
  m.store_seq = st.appliedSeq();
  auto w = st.beginWrite(k, m);
  if (!w.ok()) return w.status();
  TERN_RETURN_IF_ERROR((*w)->append(body));
  return (*w)->commit();
}

inline std::string get(ObjectStore& st, const ObjectKey& k, bool* reval = nullptr) {
  auto r = st.lookup(k);
  if (!r.ok()) return r.status().isNotFound() ? "<miss>" : "<" + r.status().toString() + ">";
  if (reval) *reval = r->must_revalidate;
  std::string out;
  while (true) {
    auto c = r->body->next();
    if (!c.ok()) return "<" + c.status().toString() + ">";
    if (c->empty()) return out;
    out.append(*c);
  }
}

}  // namespace tern::storage::store_access
