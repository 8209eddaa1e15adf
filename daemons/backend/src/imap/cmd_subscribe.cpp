// Placeholder: being written.

#include "imap/session.hpp"

namespace hamail::backend::imap_session_detail {

awaitable<void> cmd_subscribe(session& s, const imap::command& c) {
  s.no(c, "Not implemented yet");
  co_return;
}

}  // namespace hamail::backend::imap_session_detail
