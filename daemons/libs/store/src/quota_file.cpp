#include "quota_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <charconv>

#include "maildir_file.hpp"
#include "posix_io.hpp"

namespace hamail::store::detail {

namespace {

constexpr std::size_t recalc_above = 5120;

bool parse_signed(std::string_view s, std::int64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

result<void> add_mailbox_usage(const std::filesystem::path& box, quota_usage& usage) {
  for (const char* sub : {"new", "cur"}) {
    const auto dir = box / sub;
    auto entries = posix::list_dir(dir);
    if (!entries) {
      if (entries.err().code == errc::not_found) continue;
      return std::move(entries).err();
    }
    for (const auto& e : *entries) {
      if (e.is_dir) continue;
      auto name = parse_message_name(e.name);
      if (!name) continue;
      std::uint64_t size = 0;
      if (name->size) {
        size = *name->size;
      } else {
        struct stat st {};
        if (::stat((dir / e.name).c_str(), &st) != 0) continue;  // vanished meanwhile
        size = static_cast<std::uint64_t>(st.st_size);
      }
      usage.bytes += static_cast<std::int64_t>(size);
      usage.messages += 1;
    }
  }
  return ok();
}

}  // namespace

std::string format_quota_limits(const quota_limits& limits) {
  std::string out;
  if (limits.bytes != 0) out += std::to_string(limits.bytes) + "S";
  if (limits.messages != 0) {
    if (!out.empty()) out += ',';
    out += std::to_string(limits.messages) + "C";
  }
  return out;
}

std::optional<parsed_maildirsize> parse_maildirsize(std::string_view content) {
  parsed_maildirsize out;
  const auto nl = content.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  out.limits_line = std::string(content.substr(0, nl));
  content.remove_prefix(nl + 1);
  while (!content.empty()) {
    const auto end = content.find('\n');
    // A line without its newline is a concurrent or torn append: stop there.
    if (end == std::string_view::npos) break;
    std::string_view line = content.substr(0, end);
    content.remove_prefix(end + 1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty()) continue;
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    std::string_view count = line.substr(sp + 1);
    while (!count.empty() && count.front() == ' ') count.remove_prefix(1);
    std::int64_t b = 0;
    std::int64_t c = 0;
    if (!parse_signed(line.substr(0, sp), b) || !parse_signed(count, c)) return std::nullopt;
    out.usage.bytes += b;
    out.usage.messages += c;
  }
  return out;
}

result<quota_usage> scan_mailbox_usage(const std::filesystem::path& mailbox_dir) {
  quota_usage usage;
  auto r = add_mailbox_usage(mailbox_dir, usage);
  if (!r) return std::move(r).err();
  return usage;
}

result<quota_usage> scan_account_usage(const std::filesystem::path& account_dir) {
  quota_usage usage;
  auto r = add_mailbox_usage(account_dir, usage);
  if (!r) return std::move(r).err();
  auto entries = posix::list_dir(account_dir);
  if (!entries) return std::move(entries).err();
  for (const auto& e : *entries) {
    if (!e.is_dir || e.name.size() < 2 || e.name[0] != '.') continue;
    auto f = add_mailbox_usage(account_dir / e.name, usage);
    if (!f) return std::move(f).err();
  }
  return usage;
}

bool quota_recalculation_due(const std::optional<std::string>& content,
                             const quota_limits& limits) {
  if (!content) return !limits.unlimited();
  auto parsed = parse_maildirsize(*content);
  return !parsed || content->size() > recalc_above ||
         (!limits.unlimited() && parsed->limits_line != format_quota_limits(limits));
}

std::optional<quota_usage> recorded_quota_usage(const std::optional<std::string>& content) {
  if (!content) return std::nullopt;
  auto parsed = parse_maildirsize(*content);
  if (!parsed) return std::nullopt;
  return parsed->usage;
}

result<std::optional<quota_usage>> read_quota_usage(const std::filesystem::path& account_dir,
                                                    const quota_limits& limits,
                                                    const std::function<void()>& before_scan) {
  const auto path = account_dir / maildirsize_name;
  auto content = posix::read_file(path);
  if (!content) return std::move(content).err();
  const std::string wanted = format_quota_limits(limits);
  std::string limits_line = wanted;
  if (*content) {
    auto parsed = parse_maildirsize(**content);
    const bool keep = parsed && (*content)->size() <= recalc_above &&
                      (limits.unlimited() || parsed->limits_line == wanted);
    if (keep) return std::optional<quota_usage>(parsed->usage);
    // Unlimited now: keep whatever limits line the file had.
    if (parsed && limits.unlimited()) limits_line = parsed->limits_line;
  } else if (limits.unlimited()) {
    return std::optional<quota_usage>();
  }
  if (before_scan) before_scan();
  auto usage = scan_account_usage(account_dir);
  if (!usage) return std::move(usage).err();
  const std::string text = limits_line + "\n" + std::to_string(usage->bytes) + " " +
                           std::to_string(usage->messages) + "\n";
  // Not fsynced: a lost maildirsize is simply recalculated.
  auto w = posix::write_file_atomic(path, text, false);
  if (!w) return std::move(w).err();
  return std::optional<quota_usage>(*usage);
}

result<void> append_quota_delta(const std::filesystem::path& account_dir, std::int64_t bytes,
                                std::int64_t messages) {
  if (bytes == 0 && messages == 0) return ok();
  const auto path = account_dir / maildirsize_name;
  auto fd = posix::open_if_exists(path, O_WRONLY | O_APPEND);
  if (!fd) return std::move(fd).err();
  if (!*fd) return ok();
  return posix::write_all(fd->get(), std::to_string(bytes) + " " + std::to_string(messages) + "\n",
                          path);
}

}  // namespace hamail::store::detail
