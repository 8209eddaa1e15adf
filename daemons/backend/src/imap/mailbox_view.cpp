#include "imap/mailbox_view.hpp"

#include <algorithm>

namespace hamail::backend::imap_session_detail {

using store::imap_uid;
using store::mailbox_change;

void change_queue::push(std::span<const mailbox_change> changes) {
  std::lock_guard lock(mutex_);
  if (!overflowed_) {
    if (changes_.size() + changes.size() > max_pending) {
      overflowed_ = true;
      changes_.clear();
      changes_.shrink_to_fit();
    } else {
      changes_.insert(changes_.end(), changes.begin(), changes.end());
    }
  }
  if (wake_) wake_();
}

std::vector<mailbox_change> change_queue::take(bool& overflowed) {
  std::lock_guard lock(mutex_);
  overflowed = std::exchange(overflowed_, false);
  return std::exchange(changes_, {});
}

bool change_queue::pending() const {
  std::lock_guard lock(mutex_);
  return overflowed_ || !changes_.empty();
}

void change_queue::forget(std::span<const mailbox_change> reported, bool older_too) {
  std::lock_guard lock(mutex_);
  std::erase_if(changes_, [&](const mailbox_change& c) {
    return std::any_of(reported.begin(), reported.end(), [&](const mailbox_change& r) {
      return r.kind == c.kind && r.uid == c.uid &&
             (c.modseq == r.modseq || (older_too && c.modseq < r.modseq));
    });
  });
}

void change_queue::forget_expunges(std::span<const imap_uid> uids) {
  std::lock_guard lock(mutex_);
  std::erase_if(changes_, [&](const mailbox_change& c) {
    return c.kind == mailbox_change::kind_t::expunge &&
           std::find(uids.begin(), uids.end(), c.uid) != uids.end();
  });
}

void change_queue::on_change(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  wake_ = std::move(wake);
  if (wake_ && (overflowed_ || !changes_.empty())) wake_();
}

result<std::unique_ptr<mailbox_view>> mailbox_view::open(std::shared_ptr<store::mailbox> box,
                                                         bool read_only) {
  std::unique_ptr<mailbox_view> v(new mailbox_view);
  v->box_ = std::move(box);
  v->read_only_ = read_only;
  v->queue_ = std::make_shared<change_queue>();
  // Subscribe before the snapshot: a change made in between is then both in
  // the snapshot and queued, and apply() ignores what the view already has.
  v->subscription_ =
      v->box_->subscribe([q = v->queue_](std::span<const mailbox_change> c) { q->push(c); });
  auto snap = v->box_->snapshot();
  if (!snap) return std::move(snap).err();
  v->initial_ = std::move(*snap);
  v->uid_validity_ = v->initial_.uid_validity;
  v->modseq_ = v->initial_.highest_modseq;
  v->base_modseq_ = v->modseq_;
  v->uids_.reserve(v->initial_.messages.size());
  for (const auto& m : v->initial_.messages) v->uids_.push_back(m.uid);
  if (!read_only) {
    auto recent = v->box_->claim_recent();
    if (!recent) return std::move(recent).err();
    // Only messages in this view: one delivered after the snapshot comes with
    // its EXISTS later and is claimed then.
    for (auto uid : *recent) {
      if (v->seq_of(uid)) v->recent_.push_back(uid);
    }
  }
  return v;
}

mailbox_view::~mailbox_view() { subscription_.reset(); }

std::optional<std::uint32_t> mailbox_view::seq_of(imap_uid uid) const noexcept {
  auto it = std::lower_bound(uids_.begin(), uids_.end(), uid);
  if (it == uids_.end() || *it != uid) return std::nullopt;
  return static_cast<std::uint32_t>(it - uids_.begin() + 1);
}

bool mailbox_view::is_recent(imap_uid uid) const noexcept {
  return std::binary_search(recent_.begin(), recent_.end(), uid);
}

std::vector<std::uint32_t> mailbox_view::remove(std::span<const imap_uid> uids) {
  // EXPUNGE responses are sent one by one, each renumbering the rest
  // (RFC 3501 §7.4.1): sending the highest first keeps every number as it
  // was, but clients expect ascending order with decrementing, so compute
  // each number after the previous removals.
  std::vector<std::uint32_t> seqs;
  for (auto uid : uids) {
    auto it = std::lower_bound(uids_.begin(), uids_.end(), uid);
    if (it == uids_.end() || *it != uid) continue;
    seqs.push_back(static_cast<std::uint32_t>(it - uids_.begin() + 1));
    uids_.erase(it);
    auto r = std::lower_bound(recent_.begin(), recent_.end(), uid);
    if (r != recent_.end() && *r == uid) recent_.erase(r);
  }
  return seqs;
}

result<mailbox_view::update> mailbox_view::apply(bool allow_expunge) {
  update u;
  bool overflowed = false;
  auto queued = queue_->take(overflowed);
  std::vector<imap_uid> added;
  if (overflowed) {
    // Too many changes to have kept them: compare the view with a snapshot.
    auto snap = box_->snapshot();
    if (!snap) return std::move(snap).err();
    queued.clear();
    std::size_t i = 0;
    for (auto uid : uids_) {
      while (i < snap->messages.size() && snap->messages[i].uid < uid) ++i;
      if (i == snap->messages.size() || snap->messages[i].uid != uid) {
        queued.push_back(mailbox_change{mailbox_change::kind_t::expunge, uid, 0, {}});
      }
    }
    const imap_uid last = uids_.empty() ? 0 : uids_.back();
    for (const auto& m : snap->messages) {
      if (m.uid > last) {
        queued.push_back(mailbox_change{mailbox_change::kind_t::exists, m.uid, m.modseq, m.flags});
      } else if (m.modseq > modseq_) {
        queued.push_back(mailbox_change{mailbox_change::kind_t::flags, m.uid, m.modseq, m.flags});
      }
    }
    if (snap->highest_modseq > modseq_) modseq_ = snap->highest_modseq;
  }
  // Expunges held back by an earlier command come first: they happened first.
  if (!held_expunges_.empty()) {
    queued.insert(queued.begin(), held_expunges_.begin(), held_expunges_.end());
    held_expunges_.clear();
  }
  for (auto& c : queued) {
    switch (c.kind) {
      case mailbox_change::kind_t::exists:
        if (uids_.empty() || c.uid > uids_.back()) {
          uids_.push_back(c.uid);
          added.push_back(c.uid);
        }
        break;
      case mailbox_change::kind_t::flags:
        // Changes at or below the snapshot's modseq are already in the view.
        if (c.modseq > base_modseq_ && seq_of(c.uid)) u.flags.push_back(c);
        break;
      case mailbox_change::kind_t::expunge:
        if (auto a = std::find(added.begin(), added.end(), c.uid); a != added.end()) {
          // Arrived and went in this batch: the client never hears of it
          // (an EXPUNGE or VANISHED must not name a message before its EXISTS).
          added.erase(a);
          uids_.erase(std::find(uids_.begin(), uids_.end(), c.uid));
        } else if (!allow_expunge) {
          held_expunges_.push_back(c);
        } else if (seq_of(c.uid)) {
          u.expunged.push_back(c.uid);
        }
        break;
    }
    if (c.modseq > modseq_) modseq_ = c.modseq;
  }
  if (!u.expunged.empty()) {
    std::sort(u.expunged.begin(), u.expunged.end());
    u.expunged.erase(std::unique(u.expunged.begin(), u.expunged.end()), u.expunged.end());
    // A flag change of a message expunged in the same batch is not reported.
    std::erase_if(u.flags, [&](const mailbox_change& f) {
      return std::binary_search(u.expunged.begin(), u.expunged.end(), f.uid);
    });
    u.expunged_seq = remove(u.expunged);
  }
  // Nor one of a message that arrived and went in this batch.
  std::erase_if(u.flags, [&](const mailbox_change& f) { return !seq_of(f.uid); });
  if (!u.flags.empty()) {
    // Report each message once, with its flags and modseq as they are now: a
    // queued change may be older than what a FETCH or STORE response already
    // showed this client, and must not take its flags back.
    std::sort(u.flags.begin(), u.flags.end(),
              [](const mailbox_change& a, const mailbox_change& b) { return a.uid < b.uid; });
    u.flags.erase(std::unique(u.flags.begin(), u.flags.end(),
                              [](const mailbox_change& a, const mailbox_change& b) {
                                return a.uid == b.uid;
                              }),
                  u.flags.end());
    auto snap = box_->snapshot();
    if (!snap) return std::move(snap).err();
    std::erase_if(u.flags, [&](mailbox_change& f) {
      auto it =
          std::lower_bound(snap->messages.begin(), snap->messages.end(), f.uid,
                           [](const store::message_info& m, imap_uid uid) { return m.uid < uid; });
      if (it == snap->messages.end() || it->uid != f.uid) return true;  // gone: EXPUNGE follows
      f.flags = it->flags;
      f.modseq = it->modseq;
      if (f.modseq > modseq_) modseq_ = f.modseq;
      return false;
    });
  }
  u.exists_changed = !added.empty();
  if (!added.empty() && !read_only_) {
    auto recent = box_->claim_recent();
    if (!recent) return std::move(recent).err();
    for (auto uid : *recent) {
      if (seq_of(uid) && !is_recent(uid)) {
        recent_.insert(std::upper_bound(recent_.begin(), recent_.end(), uid), uid);
      }
    }
  }
  return u;
}

}  // namespace hamail::backend::imap_session_detail
