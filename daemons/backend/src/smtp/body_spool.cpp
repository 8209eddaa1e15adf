#include "smtp/body_spool.hpp"

#include <boost/asio/post.hpp>

#include "hamail/net/run_blocking.hpp"

namespace hamail::backend::smtp_session_detail {

body_spool::body_spool(boost::asio::thread_pool& pool, std::size_t chunk_size)
    : pool_(pool), chunk_size_(chunk_size) {}

body_spool::~body_spool() {
  if (!message_) return;
  // Destroying an unfinished message removes its file: let the pool do it.
  boost::asio::post(pool_, [m = std::move(*message_)]() mutable { (void)m; });
}

boost::asio::awaitable<result<void>> body_spool::open(store::mail_store& store) {
  auto begin = [&store] { return store.begin_delivery(); };
  auto started = co_await net::run_blocking(pool_, std::move(begin));
  if (!started) co_return std::move(started).err();
  message_.emplace(std::move(*started));
  co_return ok();
}

void body_spool::write(std::string_view chunk) {
  if (!saw_nul_ && chunk.find('\0') != std::string_view::npos) saw_nul_ = true;
  taken_ += chunk.size();
  held_.append(chunk);
}

boost::asio::awaitable<void> body_spool::flush() {
  if (held_.empty() || !message_) co_return;
  std::string data;
  data.swap(held_);
  held_.reserve(chunk_size_ + 4096);
  auto work = [this, data = std::move(data)] {
    if (error_) return false;
    if (auto r = message_->write(data); !r) error_ = std::move(r).err();
    return true;
  };
  (void)co_await net::run_blocking(pool_, std::move(work));
}

boost::asio::awaitable<result<store::sealed_message>> body_spool::finish() {
  if (!message_) co_return error::internal_error("body_spool::finish without open");
  std::string data;
  data.swap(held_);
  auto work = [this, data = std::move(data)]() -> result<store::sealed_message> {
    if (!error_ && !data.empty()) {
      if (auto r = message_->write(data); !r) error_ = std::move(r).err();
    }
    if (error_) return *error_;
    auto sealed = message_->finish();
    // Sealed or not, the temporary file is done with (removed when unfinished).
    message_.reset();
    return sealed;
  };
  co_return co_await net::run_blocking(pool_, std::move(work));
}

}  // namespace hamail::backend::smtp_session_detail
