#pragma once

#include <filesystem>

namespace hamail::test {

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents on
/// destruction unless HAMAIL_KEEP_TEST_DIRS is set in the environment.
class temp_dir {
 public:
  /// Creates the directory (mode 0700); throws std::runtime_error on failure.
  temp_dir();
  /// Removes the directory tree; never throws.
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  /// The directory's absolute path.
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace hamail::test
