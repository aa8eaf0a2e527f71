// A directory of its own under the system's temporary directory, removed
// with everything in it when the object goes.
// Thread safety: one owner.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace coord::testing {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "coord-test") {
    std::string templ =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (const char* made = ::mkdtemp(templ.data())) path_ = made;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace coord::testing
