#pragma once

// IMAP COMPRESS=DEFLATE (RFC 4978) as a byte stream: raw deflate (RFC 1951)
// over another stream, compressing what is written and inflating what is read.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include "hamail/core/result.hpp"
#include "hamail/net/byte_stream.hpp"

namespace hamail::net {

/// How a deflate_stream compresses. The peer needs nothing of this: any
/// window and memory level produce a stream every raw inflater reads.
struct deflate_options {
  /// Compression level 1..9 (zlib's default is 6).
  int level = 6;
  /// Our compressor's window as a power of two, 9..15. The inflater always
  /// uses 15 (32 KiB): RFC 4978 lets the peer's compressor use that much.
  int window_bits = 11;
  /// zlib memLevel 1..9: the size of the compressor's hash table and buffers.
  int mem_level = 4;
  /// Plain bytes of the previous writes kept to prime the next write's
  /// compressor (at most 1 << window_bits are used): small responses
  /// compress against what went before, as with one long-lived compressor.
  std::size_t history = 2048;
  /// Compressed bytes read from the inner stream at a time (held while a read waits).
  std::size_t read_buffer = 2048;
  /// Largest piece of compressed output handed to the inner stream at once.
  std::size_t write_chunk = 16384;
};

/// A byte stream decorator for RFC 4978: every write is compressed with raw
/// deflate and ends with a sync flush, so each write reaches the peer whole;
/// reads inflate what the peer sends.
///
/// Memory: the compressor exists only while a write is in progress (ended
/// after each sync flush; raw deflate blocks from a fresh compressor continue
/// the peer's stream). Each write's compressor is primed with the last
/// `history` plain bytes already sent (deflateSetDictionary; the peer's
/// inflater has them in its window), which keeps the ratio of one long-lived
/// compressor for small responses. So an idle stream holds the inflater
/// (about 7 KiB, plus its 32 KiB window once data has arrived), the history
/// and the read buffer. A read never inflates more than the caller's buffer
/// holds, so a small input that inflates hugely (a "bomb") costs no memory
/// beyond that.
///
/// Errors: a corrupt compressed stream, or bytes after its end, give
/// errc::invalid_input; errors of the inner stream pass through. After a write
/// failed part-way the peer's inflater is out of step: later writes fail too.
/// is_tls(), cancel(), close() and get_executor() are the inner stream's.
class deflate_stream final : public byte_stream {
 public:
  /// Wraps `inner`. `already_read` are compressed bytes the caller read from
  /// `inner` beyond the command that started compression (a pipelining
  /// client); they are inflated before anything else is read.
  explicit deflate_stream(std::unique_ptr<byte_stream> inner, std::string_view already_read = {},
                          deflate_options options = {});
  ~deflate_stream() override;
  deflate_stream(const deflate_stream&) = delete;
  deflate_stream& operator=(const deflate_stream&) = delete;

  boost::asio::awaitable<result<std::size_t>> async_read_some(
      boost::asio::mutable_buffer buffer) override;
  boost::asio::awaitable<result<void>> async_write(boost::asio::const_buffer buffer) override;
  /// Nothing is ever pending (each write flushed), so this is the inner shutdown.
  boost::asio::awaitable<result<void>> async_shutdown() override;
  bool is_tls() const noexcept override;
  void cancel() override;
  void close() override;
  boost::asio::any_io_executor get_executor() override;

  /// The stream underneath.
  byte_stream& inner() noexcept { return *inner_; }
  /// Heap bytes this stream holds now: zlib state and buffers (not the object itself).
  std::size_t memory_in_use() const noexcept;
  /// Uncompressed bytes written so far.
  std::uint64_t plain_bytes_out() const noexcept { return plain_out_; }
  /// Compressed bytes written to the inner stream so far.
  std::uint64_t compressed_bytes_out() const noexcept { return compressed_out_; }

 private:
  struct zlib_state;

  std::unique_ptr<byte_stream> inner_;
  std::unique_ptr<zlib_state> z_;
  deflate_options options_;
  std::uint64_t plain_out_ = 0;
  std::uint64_t compressed_out_ = 0;
};

}  // namespace hamail::net
