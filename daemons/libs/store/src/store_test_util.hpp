#pragma once

// Helpers shared by the store's unit tests (header only; not part of the library).

#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "hamail/store/store.hpp"

namespace hamail::store::testing {

/// The value of `r`, failing the test with the error's description otherwise.
template <class T>
T must(result<T> r, const std::string& what = "operation") {
  if (!r) CPPUNIT_FAIL(what + " failed: " + r.err().describe());
  return std::move(r).value();
}

/// Fails the test when `r` is an error.
inline void must_ok(const result<void>& r, const std::string& what = "operation") {
  if (!r) CPPUNIT_FAIL(what + " failed: " + r.err().describe());
}

/// The error of `r`, failing the test when it succeeded.
template <class T>
error must_fail(result<T> r, const std::string& what = "operation") {
  if (r) CPPUNIT_FAIL(what + " unexpectedly succeeded");
  return std::move(r).err();
}

/// Receives `body` as a sealed message.
inline sealed_message seal(mail_store& s, std::string_view body,
                           std::optional<internal_date> date = std::nullopt) {
  auto in = must(s.begin_delivery(), "begin_delivery");
  // Write in two pieces to exercise streaming.
  must_ok(in.write(body.substr(0, body.size() / 2)), "write");
  must_ok(in.write(body.substr(body.size() / 2)), "write");
  return must(in.finish(date), "finish");
}

/// Receives the concatenation of `pieces` as a sealed message, one write each.
inline sealed_message seal_pieces(mail_store& s, std::initializer_list<std::string_view> pieces,
                                  std::optional<internal_date> date = std::nullopt) {
  auto in = must(s.begin_delivery(), "begin_delivery");
  for (auto p : pieces) must_ok(in.write(p), "write");
  return must(in.finish(date), "finish");
}

/// Delivers `body` to one target and returns where it went.
inline delivered deliver_one(mail_store& s, std::string account, std::string_view body,
                             std::string mailbox = "INBOX", message_flags flags = {},
                             std::optional<internal_date> date = std::nullopt) {
  auto sealed = seal(s, body);
  delivery_target t;
  t.account = std::move(account);
  t.mailbox = std::move(mailbox);
  t.flags = std::move(flags);
  t.date = date;
  auto results = s.deliver(sealed, std::span<const delivery_target>(&t, 1));
  CPPUNIT_ASSERT_EQUAL(std::size_t{1}, results.size());
  return must(std::move(results[0]), "deliver");
}

/// The whole content of an open message.
inline std::string read_body(const message_file& f) {
  std::string out;
  char buf[4096];
  off_t off = 0;
  for (;;) {
    const ssize_t n = ::pread(f.fd.get(), buf, sizeof buf, off);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    off += n;
  }
  return out;
}

/// The content of a file, or "" when missing.
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Writes a file.
inline void spit(const std::filesystem::path& p, std::string_view content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

/// A date well in the past, to tell INTERNALDATE apart from "now".
inline internal_date test_date(std::int64_t unix_seconds = 1'000'000'000) {
  return internal_date(std::chrono::seconds(unix_seconds));
}

inline message_flags flags_of(std::uint8_t system, std::vector<std::string> keywords = {}) {
  message_flags f;
  f.system = system;
  f.keywords = std::move(keywords);
  return f;
}

inline constexpr std::uint8_t seen = static_cast<std::uint8_t>(system_flag::seen);
inline constexpr std::uint8_t flagged = static_cast<std::uint8_t>(system_flag::flagged);
inline constexpr std::uint8_t deleted = static_cast<std::uint8_t>(system_flag::deleted);
inline constexpr std::uint8_t answered = static_cast<std::uint8_t>(system_flag::answered);
inline constexpr std::uint8_t draft = static_cast<std::uint8_t>(system_flag::draft);

}  // namespace hamail::store::testing
