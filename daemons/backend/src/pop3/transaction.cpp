// The TRANSACTION state (RFC 1939 §5: STAT, LIST, UIDL, RETR, TOP, DELE,
// RSET) and the UPDATE state entered by QUIT (§6): the session's deletions are
// applied to the store in one call, and nothing else ever deletes.

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "hamail/core/log.hpp"
#include "hamail/protocol/pop3/dot_stuffer.hpp"
#include "pop3/session.hpp"

namespace hamail::backend::pop3_session_detail {

namespace {

using pop3::resp_code;

constexpr std::size_t file_chunk = 64 * 1024;  // octets read from a message file at a time
constexpr std::size_t flush_at = 64 * 1024;    // queued output sent before reading more

std::string no_such_message(std::uint32_t n) {
  return pop3::err("No such message " + std::to_string(n));
}

/// A RETR or TOP in progress: the open file and the encoder, owned by the session
/// and touched by one blocking job at a time.
struct transfer {
  store::message_file file;
  std::uint64_t offset = 0;
  pop3::dot_stuffer stuffer;
};

/// Opens the message (first call) and encodes its next chunk, on the blocking pool.
struct next_chunk {
  store::mailbox* box;
  store::imap_uid uid;
  transfer* t;
  result<std::string> operator()() const {
    if (!t->file.fd) {
      auto f = box->read_message(uid);
      if (!f) return std::move(f).err();
      t->file = std::move(*f);
    }
    // One read buffer per pool thread, never zeroed: most messages fit in one read.
    thread_local std::unique_ptr<char[]> buf = std::make_unique_for_overwrite<char[]>(file_chunk);
    const auto left = t->file.size > t->offset ? t->file.size - t->offset : 0;
    // Ask for one octet more than the recorded size says is left, to notice a longer file.
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(file_chunk, left + 1));
    ssize_t n = 0;
    do {
      n = ::pread(t->file.fd.get(), buf.get(), want, static_cast<off_t>(t->offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      return error::temporary(
          errc::io_error, "mail storage error",
          "pread of message " + std::to_string(uid) + ": " + std::string(std::strerror(errno)));
    }
    t->offset += static_cast<std::uint64_t>(n);
    std::string out;
    out.reserve(2 * static_cast<std::size_t>(n) + 5);
    t->stuffer.feed(std::string_view(buf.get(), static_cast<std::size_t>(n)), out);
    // The end of the file ends the message (also one shorter than its recorded size).
    if (static_cast<std::size_t>(n) < want) t->stuffer.finish(out);
    return out;
  }
};

/// The UPDATE state's work, on the blocking pool: \Seen on what was
/// retrieved, then the deletions in one expunge.
struct apply_update {
  store::mailbox* box;
  std::vector<store::imap_uid> seen;
  std::vector<store::imap_uid> deleted;
  result<std::vector<store::imap_uid>> operator()() const {
    if (!seen.empty()) {
      store::message_flags f;
      f.set(store::system_flag::seen);
      if (auto r = box->set_flags(seen, store::flag_mode::add, f); !r) {
        log::warning("POP3 {}: \\Seen not set: {}", box->account(), r.err().describe());
      }
    }
    if (deleted.empty()) return std::vector<store::imap_uid>{};
    return box->expunge(deleted);
  }
};

}  // namespace

awaitable<void> cmd_stat(session& s, const pop3::request&) {
  s.reply("+OK " + std::to_string(s.drop->live_count()) + " " +
          std::to_string(s.drop->live_octets()) + "\r\n");
  co_return;
}

awaitable<void> cmd_list(session& s, const pop3::request& r) {
  const bool uidl = r.what == pop3::verb::uidl;
  auto line = [&](std::uint32_t n, const maildrop_message& m) {
    return std::to_string(n) + " " + (uidl ? s.drop->uidl(n) : std::to_string(m.size));
  };
  if (r.msg) {
    const auto* m = s.drop->find(*r.msg);
    if (m == nullptr) {
      s.reply(no_such_message(*r.msg));
      co_return;
    }
    s.reply("+OK " + line(*r.msg, *m) + "\r\n");
    co_return;
  }
  auto& out = s.output();
  if (uidl) {
    out += "+OK Unique-ID listing follows\r\n";
  } else {
    out += "+OK " + std::to_string(s.drop->live_count()) + " messages (" +
           std::to_string(s.drop->live_octets()) + " octets)\r\n";
  }
  const auto& all = s.drop->messages();
  for (std::uint32_t n = 1; n <= all.size(); ++n) {
    if (all[n - 1].deleted) continue;
    out += line(n, all[n - 1]);
    out += "\r\n";
  }
  out += ".\r\n";
  co_return;
}

awaitable<void> cmd_retr(session& s, const pop3::request& r) {
  const bool top = r.what == pop3::verb::top;
  const auto* m = s.drop->find(*r.msg);
  if (m == nullptr) {
    s.reply(no_such_message(*r.msg));
    co_return;
  }
  transfer t;
  if (top) t.stuffer = pop3::dot_stuffer::top(*r.lines);
  next_chunk job{s.inbox.get(), m->uid, &t};
  bool first = true;
  while (!t.stuffer.done()) {
    auto chunk = co_await s.blocking(job);
    if (!chunk) {
      if (first) {
        if (chunk.err().code == errc::not_found) {
          s.reply(
              pop3::err("Message " + std::to_string(*r.msg) + " was deleted by another session"));
        } else {
          s.conn.log().error("RETR {}: {}", m->uid, chunk.err().describe());
          s.reply(pop3::err("Cannot read the message, try again later", resp_code::sys_temp));
        }
        co_return;
      }
      // The +OK and part of the body are out: the response cannot be ended
      // honestly, so the connection is.
      s.conn.log().error("RETR {}: {} after {} octets, closing", m->uid, chunk.err().describe(),
                         t.offset);
      s.end = ending::closed;
      co_return;
    }
    if (first) {
      s.reply(top ? pop3::ok() : pop3::ok(std::to_string(m->size) + " octets"));
      first = false;
    }
    s.output() += *chunk;
    if (s.output().size() >= flush_at && !co_await s.flush()) co_return;
  }
  if (!top) s.drop->mark_retrieved(*r.msg);
}

awaitable<void> cmd_dele(session& s, const pop3::request& r) {
  if (s.drop->find(*r.msg) == nullptr) {
    const bool gone = *r.msg >= 1 && *r.msg <= s.drop->size();
    s.reply(gone ? pop3::err("Message " + std::to_string(*r.msg) + " already deleted")
                 : no_such_message(*r.msg));
    co_return;
  }
  s.drop->remove(*r.msg);
  s.reply(pop3::ok("Message " + std::to_string(*r.msg) + " deleted"));
  co_return;
}

awaitable<void> cmd_rset(session& s, const pop3::request&) {
  s.drop->undelete_all();
  s.reply(pop3::ok("Maildrop has " + std::to_string(s.drop->live_count()) + " messages (" +
                   std::to_string(s.drop->live_octets()) + " octets)"));
  co_return;
}

awaitable<void> cmd_quit(session& s, const pop3::request&) {
  s.end = ending::quit;
  if (s.st == pop3::session_state::authorization) {
    s.reply(pop3::ok("Logging out"));
    co_return;
  }
  // UPDATE (RFC 1939 §6).
  apply_update job{s.inbox.get(),
                   s.cfg.mark_seen ? s.drop->retrieved_uids() : std::vector<store::imap_uid>{},
                   s.drop->deleted_uids()};
  const auto wanted = job.deleted.size();
  auto removed = co_await s.blocking(std::move(job));
  if (!removed) {
    s.conn.log().error("{}: UPDATE failed: {}", s.account.id, removed.err().describe());
    s.reply(pop3::err("Some deleted messages not removed, try again later", resp_code::sys_temp));
    co_return;
  }
  s.conn.log().info("{}: {} message(s) deleted ({} already gone)", s.account.id, removed->size(),
                    wanted - removed->size());
  s.reply(pop3::ok("Logging out, " + std::to_string(s.drop->live_count()) + " messages left"));
}

}  // namespace hamail::backend::pop3_session_detail
