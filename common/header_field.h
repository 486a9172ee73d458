#pragma once
// One header field of an HTTP message: what the edge's HTTP layer works on
// and what the store keeps with a response, one type for both, so a stored
// response's fields are read where they lie (no conversion on a hit).
// Thread-safety: plain value.

#include <string>
#include <string_view>
#include <vector>

namespace tern {

struct HeaderField {
  std::string name;
  std::string value;
  bool operator==(const HeaderField&) const = default;
};

using HeaderFields = std::vector<HeaderField>;

// Writes a field list from its start over what it held before, keeping the
// room of the list and of its strings: a list written anew for each request
// of a connection allocates only when it grows past what it once held. The
// fields not written over are dropped by done() (or the destructor).
class HeaderFieldsRefill {
 public:
  explicit HeaderFieldsRefill(HeaderFields* fields) : fields_(fields) {}
  ~HeaderFieldsRefill() { done(); }
  HeaderFieldsRefill(const HeaderFieldsRefill&) = delete;
  HeaderFieldsRefill& operator=(const HeaderFieldsRefill&) = delete;

  // The field written; its value may be appended to.
  HeaderField& add(std::string_view name, std::string_view value) {
    if (n_ < fields_->size()) {
      HeaderField& f = (*fields_)[n_++];
      f.name.assign(name);
      f.value.assign(value);
      return f;
    }
    ++n_;
    return fields_->emplace_back(HeaderField{std::string(name), std::string(value)});
  }
  void done() {
    if (n_ < fields_->size()) fields_->resize(n_);
  }

 private:
  HeaderFields* fields_;
  size_t n_ = 0;
};

}  // namespace tern
