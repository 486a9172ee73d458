#pragma once
// TempDir: a fresh folder under $TMPDIR (or /tmp), removed with its contents
// when the object is destroyed.

#include <string>

namespace tern::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace tern::testing
