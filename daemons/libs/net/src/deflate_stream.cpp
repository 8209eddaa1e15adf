#include "hamail/net/deflate_stream.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>

namespace hamail::net {

namespace asio = boost::asio;

namespace {

/// Inflate's window: RFC 4978 lets the peer compress with a 32 KiB window.
constexpr int inflate_window_bits = 15;
/// The most input handed to deflate() per call (its counters are 32 bits).
constexpr std::size_t max_deflate_input = std::size_t{1} << 30;

error corrupt_error(std::string_view what) {
  return error::temporary(errc::invalid_input, "compressed stream corrupt",
                          fmt::format("inflate: {}", what));
}

error broken_error() {
  return error::temporary(errc::io_error, "I/O error",
                          "deflate: an earlier write failed part-way, the stream is out of step");
}

}  // namespace

/// Both zlib streams and the buffers, with every heap byte counted.
struct deflate_stream::zlib_state {
  std::size_t heap = 0;  // bytes allocated by zlib through alloc() plus our buffers
  z_stream in{};         // the inflater, for the whole life of the stream
  bool in_ready = false;
  bool in_ended = false;     // the peer finished its deflate stream (a final block)
  bool more_output = false;  // the last inflate() filled the caller's buffer: it may hold more
  std::unique_ptr<unsigned char[]> read_buf;
  std::string already_read;  // compressed bytes the caller had read before compression began
  z_stream out{};            // the compressor, only while a write is in progress
  std::string history;       // the last plain bytes written, to prime the next compressor
  bool write_broken = false;

  zlib_state() {
    in.zalloc = &alloc;
    in.zfree = &release;
    in.opaque = this;
    out.zalloc = &alloc;
    out.zfree = &release;
    out.opaque = this;
  }
  zlib_state(const zlib_state&) = delete;
  zlib_state& operator=(const zlib_state&) = delete;
  ~zlib_state() {
    if (in_ready) inflateEnd(&in);
  }

  static voidpf alloc(voidpf opaque, uInt items, uInt size) {
    const std::size_t bytes = std::size_t{items} * size;
    // A header in front of each block remembers its size for release().
    auto* p = static_cast<std::max_align_t*>(std::malloc(bytes + sizeof(std::max_align_t)));
    if (p == nullptr) return Z_NULL;
    *reinterpret_cast<std::size_t*>(p) = bytes;
    static_cast<zlib_state*>(opaque)->heap += bytes;
    return p + 1;
  }
  static void release(voidpf opaque, voidpf address) {
    auto* p = static_cast<std::max_align_t*>(address) - 1;
    static_cast<zlib_state*>(opaque)->heap -= *reinterpret_cast<std::size_t*>(p);
    std::free(p);
  }
};

namespace {

/// The compressor for one write: made on entry, ended on every way out (also
/// when the coroutine is destroyed half-way), so an idle stream holds none.
class compressor {
 public:
  compressor(z_stream& z, const deflate_options& o) : z_(z) {
    ok_ = deflateInit2(&z_, o.level, Z_DEFLATED, -o.window_bits, o.mem_level, Z_DEFAULT_STRATEGY) ==
          Z_OK;
  }
  ~compressor() {
    // Z_DATA_ERROR here only says no final block was written, which is meant.
    if (ok_) deflateEnd(&z_);
  }
  compressor(const compressor&) = delete;
  compressor& operator=(const compressor&) = delete;
  bool ok() const noexcept { return ok_; }

 private:
  z_stream& z_;
  bool ok_ = false;
};

/// A buffer counted in a zlib_state's heap while it lives.
class counted_buffer {
 public:
  counted_buffer(std::size_t& heap, std::size_t size)
      : heap_(heap), size_(size), data_(new unsigned char[size]) {
    heap_ += size_;
  }
  ~counted_buffer() { heap_ -= size_; }
  counted_buffer(const counted_buffer&) = delete;
  counted_buffer& operator=(const counted_buffer&) = delete;
  unsigned char* data() noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }

 private:
  std::size_t& heap_;
  std::size_t size_;
  std::unique_ptr<unsigned char[]> data_;
};

/// Keeps the last `limit` bytes of what was written in `history`, without reallocating.
void remember(std::string& history, std::size_t limit, asio::const_buffer written) {
  const std::string_view data(static_cast<const char*>(written.data()), written.size());
  if (data.size() >= limit) {
    history.assign(data.substr(data.size() - limit));
    return;
  }
  const std::size_t keep = std::min(history.size(), limit - data.size());
  history.erase(0, history.size() - keep);
  history.append(data);
}

}  // namespace

deflate_stream::deflate_stream(std::unique_ptr<byte_stream> inner, std::string_view already_read,
                               deflate_options options)
    : inner_(std::move(inner)), z_(std::make_unique<zlib_state>()), options_(options) {
  options_.level = std::clamp(options_.level, 1, 9);
  options_.window_bits = std::clamp(options_.window_bits, 9, 15);
  options_.mem_level = std::clamp(options_.mem_level, 1, 9);
  options_.history = std::min(options_.history, std::size_t{1} << options_.window_bits);
  options_.read_buffer = std::max<std::size_t>(options_.read_buffer, 64);
  options_.write_chunk = std::max<std::size_t>(options_.write_chunk, 64);

  auto& z = *z_;
  z.in_ready = inflateInit2(&z.in, -inflate_window_bits) == Z_OK;
  z.read_buf = std::make_unique<unsigned char[]>(options_.read_buffer);
  z.heap += options_.read_buffer;
  z.history.reserve(options_.history);
  z.heap += z.history.capacity();
  if (!already_read.empty()) {
    z.already_read.assign(already_read);
    z.heap += z.already_read.size();
    z.in.next_in = reinterpret_cast<Bytef*>(z.already_read.data());
    z.in.avail_in = static_cast<uInt>(z.already_read.size());
  }
}

deflate_stream::~deflate_stream() = default;

asio::awaitable<result<std::size_t>> deflate_stream::async_read_some(asio::mutable_buffer buffer) {
  auto& z = *z_;
  if (!z.in_ready) co_return error::internal_error("deflate_stream: inflateInit2 failed");
  if (buffer.size() == 0) co_return std::size_t{0};
  const std::size_t room = std::min<std::size_t>(buffer.size(), UINT_MAX);
  for (;;) {
    if ((z.in.avail_in > 0 || z.more_output) && !z.in_ended) {
      z.in.next_out = static_cast<Bytef*>(buffer.data());
      z.in.avail_out = static_cast<uInt>(room);
      const uInt before = z.in.avail_in;
      const int rc = inflate(&z.in, Z_SYNC_FLUSH);
      const std::size_t produced = room - z.in.avail_out;
      z.more_output = z.in.avail_out == 0;
      if (z.in.avail_in == 0 && !z.already_read.empty()) {
        z.heap -= z.already_read.size();
        std::string().swap(z.already_read);
      }
      if (rc == Z_STREAM_END) {
        z.in_ended = true;
        z.more_output = false;
      } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
        co_return corrupt_error(z.in.msg != nullptr ? z.in.msg : "invalid data");
      } else if (rc == Z_MEM_ERROR) {
        co_return error::temporary(errc::io_error, "out of memory", "inflate: out of memory");
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        co_return error::internal_error(fmt::format("inflate: unexpected result {}", rc));
      }
      if (produced > 0) co_return produced;
      if (rc == Z_BUF_ERROR && z.in.avail_in > 0 && z.in.avail_in == before) {
        co_return error::internal_error("inflate: no progress");
      }
    }
    if (z.in_ended && z.in.avail_in > 0) {
      co_return corrupt_error("data after the end of the compressed stream");
    }
    // Everything read so far is inflated: read more.
    auto r = co_await inner_->async_read_some(asio::buffer(z.read_buf.get(), options_.read_buffer));
    if (!r) co_return r.err();
    if (z.in_ended) co_return corrupt_error("data after the end of the compressed stream");
    z.in.next_in = z.read_buf.get();
    z.in.avail_in = static_cast<uInt>(*r);
  }
}

asio::awaitable<result<void>> deflate_stream::async_write(asio::const_buffer buffer) {
  auto& z = *z_;
  if (z.write_broken) co_return broken_error();
  if (buffer.size() == 0) co_return ok();

  compressor active(z.out, options_);
  if (!active.ok()) {
    co_return error::temporary(errc::io_error, "out of memory", "deflate: deflateInit2 failed");
  }
  if (!z.history.empty()) {
    // Legal for raw deflate before the first deflate() call; the peer's
    // inflater holds these bytes in its window already.
    const int rc = deflateSetDictionary(&z.out, reinterpret_cast<const Bytef*>(z.history.data()),
                                        static_cast<uInt>(z.history.size()));
    if (rc != Z_OK) {
      co_return error::internal_error(fmt::format("deflateSetDictionary: result {}", rc));
    }
  }
  // Small writes get a small output buffer: deflateBound plus the sync flush marker.
  const std::size_t bound =
      deflateBound(&z.out, static_cast<uLong>(std::min(buffer.size(), max_deflate_input))) + 16;
  counted_buffer out(z.heap, std::min(options_.write_chunk, bound));

  // Until this write completes, the peer's inflater may see half a block.
  z.write_broken = true;
  const auto* data = static_cast<const Bytef*>(buffer.data());
  std::size_t left = buffer.size();
  while (left > 0) {
    const std::size_t piece = std::min(left, max_deflate_input);
    left -= piece;
    // The cast drops const only because zlib's API predates it; input is never written.
    z.out.next_in = const_cast<Bytef*>(data);
    z.out.avail_in = static_cast<uInt>(piece);
    data += piece;
    const int flush = left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    do {
      z.out.next_out = out.data();
      z.out.avail_out = static_cast<uInt>(out.size());
      const int rc = deflate(&z.out, flush);
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        co_return error::internal_error(fmt::format("deflate: unexpected result {}", rc));
      }
      const std::size_t have = out.size() - z.out.avail_out;
      if (have > 0) {
        auto r = co_await inner_->async_write(asio::buffer(out.data(), have));
        if (!r) co_return r.err();
        compressed_out_ += have;
      }
    } while (z.out.avail_out == 0);
  }
  z.write_broken = false;
  plain_out_ += buffer.size();
  remember(z.history, options_.history, buffer);
  co_return ok();
}

asio::awaitable<result<void>> deflate_stream::async_shutdown() {
  co_return co_await inner_->async_shutdown();
}

bool deflate_stream::is_tls() const noexcept { return inner_->is_tls(); }

void deflate_stream::cancel() { inner_->cancel(); }

void deflate_stream::close() { inner_->close(); }

asio::any_io_executor deflate_stream::get_executor() { return inner_->get_executor(); }

std::size_t deflate_stream::memory_in_use() const noexcept { return z_->heap; }

}  // namespace hamail::net
