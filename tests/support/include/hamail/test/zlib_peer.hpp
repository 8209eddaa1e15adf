#pragma once

// The client side of IMAP COMPRESS=DEFLATE (RFC 4978), straight on zlib, for
// the tests that talk to a deflate_stream or to a session that switched to it.
// Header-only: a test using it links ZLIB::ZLIB (hamail::net brings it).

#include <cppunit/extensions/HelperMacros.h>
#include <zlib.h>

#include <string>
#include <string_view>

namespace hamail::test {

/// Raw deflate with a 32 KiB window both ways, the way IMAP clients set it up;
/// every zlib call that fails fails the test.
class zlib_peer {
 public:
  zlib_peer() {
    CPPUNIT_ASSERT_EQUAL(Z_OK, deflateInit2(&out_, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY));
    CPPUNIT_ASSERT_EQUAL(Z_OK, inflateInit2(&in_, -15));
  }
  ~zlib_peer() {
    deflateEnd(&out_);
    inflateEnd(&in_);
  }
  zlib_peer(const zlib_peer&) = delete;
  zlib_peer& operator=(const zlib_peer&) = delete;

  /// Compresses `plain`, ending with `flush` (Z_SYNC_FLUSH, Z_FINISH or Z_NO_FLUSH).
  std::string compress(std::string_view plain, int flush = Z_SYNC_FLUSH) {
    std::string out;
    out_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
    out_.avail_in = static_cast<uInt>(plain.size());
    unsigned char chunk[4096];
    do {
      out_.next_out = chunk;
      out_.avail_out = sizeof chunk;
      const int rc = deflate(&out_, flush);
      CPPUNIT_ASSERT(rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END);
      out.append(reinterpret_cast<char*>(chunk), sizeof chunk - out_.avail_out);
    } while (out_.avail_out == 0);
    CPPUNIT_ASSERT_EQUAL(0u, out_.avail_in);
    return out;
  }

  /// Inflates everything `compressed` gives now; fails the test on corrupt data.
  std::string inflate_all(std::string_view compressed) {
    std::string out;
    in_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
    in_.avail_in = static_cast<uInt>(compressed.size());
    unsigned char chunk[4096];
    do {
      in_.next_out = chunk;
      in_.avail_out = sizeof chunk;
      const int rc = inflate(&in_, Z_SYNC_FLUSH);
      CPPUNIT_ASSERT_MESSAGE("inflate " + std::to_string(rc),
                             rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END);
      if (rc == Z_STREAM_END) input_ended_ = true;
      out.append(reinterpret_cast<char*>(chunk), sizeof chunk - in_.avail_out);
    } while (in_.avail_out == 0 || in_.avail_in > 0);
    return out;
  }

  /// True once inflate_all() met the final block of the other side's stream.
  bool input_ended() const noexcept { return input_ended_; }

 private:
  z_stream out_{};
  z_stream in_{};
  bool input_ended_ = false;
};

}  // namespace hamail::test
