#include "imap/message_access.hpp"

namespace hamail::backend::imap_session_detail {

result<loaded_message> message_loader::load(store::imap_uid uid, bool raw, bool structure) {
  loaded_message out;
  std::string key;
  if (structure) {
    key = imap_fetch::structure_cache::key(account_, mailbox_, uid_validity_, uid);
    out.structure = cache_.find(key);
  }
  if (!raw && (!structure || out.structure)) return out;
  auto file = box_.read_message(uid);
  if (!file) return std::move(file).err();
  auto map = imap_fetch::mapped_message::map(*file);
  if (!map) return std::move(map).err();
  out.bytes = std::move(*map);
  if (structure && !out.structure) {
    out.structure = cache_.parse_and_insert(std::move(key), out.bytes.view());
  }
  return out;
}

}  // namespace hamail::backend::imap_session_detail
