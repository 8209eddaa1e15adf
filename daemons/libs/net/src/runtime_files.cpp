#include "hamail/net/runtime_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace hamail::net {

namespace {

/// Writes `text` to `path` atomically (temporary file, fsync, rename).
bool write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

result<std::filesystem::path> write_runtime_files(const server& srv,
                                                  const std::vector<listener_settings>& listeners,
                                                  const std::filesystem::path& runtime_dir,
                                                  const std::filesystem::path& pid_file) {
  std::string bound;
  const auto endpoints = srv.bound_endpoints();
  for (std::size_t i = 0; i < endpoints.size() && i < listeners.size(); ++i) {
    const auto& l = listeners[i];
    bound += (l.name.empty() ? l.protocol : l.name) + " " + l.protocol + " " +
             endpoints[i].address().to_string() + " " + std::to_string(endpoints[i].port()) + "\n";
  }
  const auto listeners_file = runtime_dir / "listeners";
  for (const auto& [path, text] :
       {std::pair{listeners_file, bound}, std::pair{pid_file, std::to_string(::getpid()) + "\n"}}) {
    if (!write_file_atomically(path, text)) {
      return error::temporary(errc::io_error, "cannot write a runtime file",
                              "cannot write " + path.string());
    }
  }
  return listeners_file;
}

}  // namespace hamail::net
