#pragma once

// A message body on its way from the socket into the store, without file I/O
// on the event loop thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "hamail/core/result.hpp"
#include "hamail/protocol/smtp/data_reader.hpp"
#include "hamail/smtpd/session.hpp"
#include "hamail/store/store.hpp"

namespace hamail::backend::smtp_session_detail {

/// Collects body octets in memory and hands them to the store's I/O pool in
/// chunks of `chunk_size`, one write at a time and in order. The session calls
/// flush() whenever needs_flush() says so and does not read from the socket
/// while it waits, so a session holds at most about one chunk plus one read
/// and a slow disk slows only the sessions writing to it (TCP flow control
/// pushes back on their clients). Keeps the first store error; the body is
/// still read to its end and the error answered then. Also notes NUL octets,
/// which only BODY=BINARYMIME content may carry.
class body_spool final : public smtpd::message_body {
 public:
  /// The octets held before they go to the pool.
  static constexpr std::size_t default_chunk_size = 128 * 1024;

  /// A spool writing through `pool`; nothing is opened until open().
  explicit body_spool(boost::asio::thread_pool& pool, std::size_t chunk_size = default_chunk_size);
  /// Removes an unfinished message on the pool (unlinking is file I/O too).
  ~body_spool() override;
  body_spool(const body_spool&) = delete;
  body_spool& operator=(const body_spool&) = delete;

  /// Starts the store's delivery (a temporary file) on the pool. Errors: temporary.
  boost::asio::awaitable<result<void>> open(store::mail_store& store);
  /// Takes body octets (the session's sinks call this); never blocks.
  void write(std::string_view chunk) override;
  /// True when enough is held that the session should flush() before reading on.
  bool needs_flush() const noexcept override { return held_.size() >= chunk_size_; }
  /// Writes what is held, on the pool, and waits for it.
  boost::asio::awaitable<void> flush() override;
  /// Writes the rest and makes the body durable (fsync), on the pool. The first
  /// error of any earlier write is returned here.
  boost::asio::awaitable<result<store::sealed_message>> finish();
  /// True once a NUL octet was written.
  bool saw_nul() const noexcept override { return saw_nul_; }
  /// Octets taken so far.
  std::uint64_t size() const noexcept { return taken_; }

 private:
  boost::asio::thread_pool& pool_;
  std::size_t chunk_size_;
  std::optional<store::incoming_message> message_;
  std::optional<error> error_;  // first store error; touched only by the task in flight
  std::string held_;
  std::uint64_t taken_ = 0;
  bool saw_nul_ = false;
};

}  // namespace hamail::backend::smtp_session_detail
