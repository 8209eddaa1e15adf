#pragma once

// Reading one message of the selected mailbox for FETCH, SEARCH, SORT and
// THREAD: its bytes through a read-only mapping and its MIME structure through
// the process-wide structure cache (parsed once, shared by every session).

#include <memory>
#include <string>

#include "hamail/core/result.hpp"
#include "hamail/mime/message.hpp"
#include "hamail/store/store.hpp"
#include "imap/mapped_message.hpp"
#include "imap/structure_cache.hpp"

namespace hamail::backend::imap_session_detail {

/// One message as loaded: its bytes (when asked) and its structure (when asked).
struct loaded_message {
  imap_fetch::mapped_message bytes;
  std::shared_ptr<const mime::message_structure> structure;
};

/// Loads messages of one mailbox. Blocking; use from the blocking pool.
class message_loader {
 public:
  message_loader(store::mailbox& box, imap_fetch::structure_cache& cache, std::string account,
                 std::string mailbox, std::uint32_t uid_validity)
      : box_(box),
        cache_(cache),
        account_(std::move(account)),
        mailbox_(std::move(mailbox)),
        uid_validity_(uid_validity) {}

  /// Loads `uid`: the mapping when `raw` (or when the structure must be
  /// parsed), the structure when `structure`. Errors: not_found when the
  /// message was expunged meanwhile, io_error.
  result<loaded_message> load(store::imap_uid uid, bool raw, bool structure);

 private:
  store::mailbox& box_;
  imap_fetch::structure_cache& cache_;
  std::string account_;
  std::string mailbox_;
  std::uint32_t uid_validity_;
};

}  // namespace hamail::backend::imap_session_detail
