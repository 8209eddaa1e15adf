#include "hamail/test/temp_dir.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace hamail::test {

temp_dir::temp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  std::string pattern = base + "/hamail-test-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    const int err = errno;
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(err));
  }
  path_ = std::filesystem::absolute(std::filesystem::path(buf.data()));
}

temp_dir::~temp_dir() {
  if (std::getenv("HAMAIL_KEEP_TEST_DIRS") != nullptr) return;
  // Never throws from a destructor: a directory that cannot be removed is left
  // for the operating system's tmp cleaning.
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace hamail::test
