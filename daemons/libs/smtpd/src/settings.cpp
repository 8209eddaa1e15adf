#include "hamail/smtpd/settings.hpp"

#include <cctype>

#include "hamail/core/config.hpp"

namespace hamail::smtpd {

namespace {

void read_smtp(config::section& root, smtp_settings& out) {
  auto s = root.table("smtp");
  if (!s) return;
  out.max_message_size = s->get_size("max_message_size", out.max_message_size);
  if (out.max_message_size < 1024) s->add_problem("max_message_size", "must be at least 1KiB");
  out.max_recipients = static_cast<std::size_t>(s->get_integer("max_recipients", 100, 1, 100000));
  out.max_errors = static_cast<std::size_t>(s->get_integer("max_errors", 20, 1, 1000));
  out.bare_newlines_normalize =
      s->get_enum("bare_newlines", {"reject", "normalize"}, "reject") == "normalize";
  out.max_line_length =
      static_cast<std::size_t>(s->get_integer("max_line_length", 10000, 1000, 1 << 20));
  out.auth_without_tls = s->get_bool("auth_without_tls", false);
  out.recipient_delimiter = s->get_string("recipient_delimiter", "+");
  out.postmaster = s->get_string("postmaster", "");
}

/// The timing and pre-AUTH keys of [smtp].
void read_smtp_timing(config::section& root, smtp_settings& out) {
  auto s = root.table("smtp");
  if (!s) return;
  const auto at_least_1s = [&s](std::string_view key, std::chrono::milliseconds fallback) {
    const auto t = s->get_duration(key, fallback);
    if (t < std::chrono::seconds(1)) {
      s->add_problem(key, "must be at least 1s");
      return fallback;
    }
    return t;
  };
  out.command_timeout = at_least_1s("command_timeout", out.command_timeout);
  out.data_timeout = at_least_1s("data_timeout", out.data_timeout);
  out.min_data_rate = s->get_size("min_data_rate", out.min_data_rate);
  out.min_data_rate_window = at_least_1s("min_data_rate_window", out.min_data_rate_window);
  out.min_data_rate_grace = s->get_duration("min_data_rate_grace", out.min_data_rate_grace);
  out.command_timeout_before_auth =
      at_least_1s("command_timeout_before_auth", out.command_timeout_before_auth);
  out.max_errors_before_auth = static_cast<std::size_t>(s->get_integer(
      "max_errors_before_auth", static_cast<std::int64_t>(out.max_errors_before_auth), 1, 1000));
  // 512 is RFC 5321's command line; AUTH lines have their own (longer) limit.
  out.max_line_before_auth = static_cast<std::size_t>(s->get_integer(
      "max_line_before_auth", static_cast<std::int64_t>(out.max_line_before_auth), 512, 2048));
}

/// postmaster@ the store's domain: its hostname without the first label when
/// that leaves a domain with a dot ("store-a.example.org" -> "example.org").
std::string default_postmaster(const std::string& hostname) {
  const auto dot = hostname.find('.');
  const bool strip = dot != std::string::npos && hostname.find('.', dot + 1) != std::string::npos;
  return "postmaster@" + (strip ? hostname.substr(dot + 1) : hostname);
}

/// The [smtp] keys of who may receive and send: postmaster, sender checks.
void read_smtp_policy(config::section& root, const std::string& hostname, smtp_settings& out) {
  auto s = root.table("smtp");
  if (s && s->has("postmaster") && out.postmaster.empty()) {
    s->add_problem("postmaster",
                   "RFC 5321 §4.5.1 requires accepting mail for <Postmaster>: name an address "
                   "the directory knows, or leave the key out for postmaster@<host domain>");
  }
  if (out.postmaster.empty()) out.postmaster = default_postmaster(hostname);
  if (!s) return;
  out.sender_check = s->get_bool("sender_check", true);
  for (auto& t : s->tables("allowed_senders")) {
    sender_grant g;
    g.account = t.require_string("account");
    for (auto& sender : t.get_string_list("senders")) {
      if (sender != "*" && sender.find('@') == std::string::npos) {
        t.add_problem("senders", "\"" + sender + "\" is neither an address, \"@domain\" nor \"*\"");
        continue;
      }
      // Addresses compare lower-cased, as the directory's lookups do.
      for (auto& ch : sender) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      g.senders.push_back(std::move(sender));
    }
    if (!g.account.empty()) out.allowed_senders.push_back(std::move(g));
  }
}

}  // namespace

void read_smtp_settings(config::section& root, const std::string& hostname, smtp_settings& out) {
  read_smtp(root, out);
  read_smtp_policy(root, hostname, out);
  read_smtp_timing(root, out);
}

}  // namespace hamail::smtpd
