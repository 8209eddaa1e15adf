#include "index_log.hpp"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace hamail::store::detail {

namespace {

std::uint32_t crc_of(std::string_view s) {
  return static_cast<std::uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

std::string flags_field(stored_flags f) {
  std::string letters = flag_letters(f);
  return letters.empty() ? std::string("-") : letters;
}

template <class T>
bool parse_num(std::string_view s, T& out) {
  if (s.empty() || s.size() > 20) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Splits off the next space-separated field.
std::string_view next_field(std::string_view& s) {
  const auto sp = s.find(' ');
  std::string_view f = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
  return f;
}

bool parse_flags_field(std::string_view f, stored_flags& out) {
  if (f.empty()) return false;
  out = f == "-" ? stored_flags{} : parse_flag_letters(f);
  return true;
}

bool parse_location(std::string_view f, bool& in_new) {
  if (f == "n") return in_new = true, true;
  if (f == "c") return in_new = false, true;
  return false;
}

// Checks the CRC of one line (without its '\n'); sets the payload.
bool check_line(std::string_view line, std::string_view& payload) {
  if (line.size() < 10 || line[line.size() - 9] != ' ') return false;
  const std::string_view hex = line.substr(line.size() - 8);
  std::uint32_t crc = 0;
  auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), crc, 16);
  if (ec != std::errc() || p != hex.data() + hex.size()) return false;
  payload = line.substr(0, line.size() - 9);
  return crc_of(payload) == crc;
}

std::optional<std::uint32_t> parse_header(std::string_view payload) {
  constexpr std::string_view prefix = "hamail-index 1 uidvalidity=";
  if (payload.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::uint32_t v = 0;
  if (!parse_num(payload.substr(prefix.size()), v) || v == 0) return std::nullopt;
  return v;
}

// Applies one record; false when it is malformed or inconsistent with the state.
bool apply_record(std::string_view payload, index_state& st, replay_result& r) {
  std::string_view rest = payload;
  const std::string_view kind = next_field(rest);
  if (kind == "A") {
    index_entry e;
    std::string_view loc;
    if (!parse_num(next_field(rest), e.uid) || !parse_num(next_field(rest), e.modseq) ||
        !parse_flags_field(next_field(rest), e.flags) || !parse_num(next_field(rest), e.date) ||
        !parse_num(next_field(rest), e.size) || !parse_location(next_field(rest), e.in_new) ||
        rest.empty())
      return false;
    e.base = std::string(rest);
    e.wire_size = wire_size_in_base(e.base, e.size);
    // A UID above max_uid would wrap UIDNEXT to 0: the index is damaged.
    if (e.uid == 0 || e.uid > max_uid || (e.in_new && !e.flags.empty())) return false;
    r.max_uid_seen = std::max(r.max_uid_seen, e.uid);
    r.max_modseq_seen = std::max(r.max_modseq_seen, e.modseq);
    st.highest_modseq = std::max(st.highest_modseq, e.modseq);
    if (e.uid >= st.uid_next) st.uid_next = e.uid + 1;
    return st.insert(std::move(e));
  }
  if (kind == "F") {
    imap_uid uid = 0;
    mod_seq ms = 0;
    stored_flags f;
    if (!parse_num(next_field(rest), uid) || !parse_num(next_field(rest), ms) ||
        !parse_flags_field(next_field(rest), f) || !rest.empty())
      return false;
    r.max_modseq_seen = std::max(r.max_modseq_seen, ms);
    index_entry* e = st.find(uid);
    if (e == nullptr) return false;
    e->flags = f;
    e->modseq = ms;
    e->in_new = false;
    st.highest_modseq = std::max(st.highest_modseq, ms);
    return true;
  }
  if (kind == "R") {
    imap_uid uid = 0;
    bool in_new = false;
    if (!parse_num(next_field(rest), uid) || !parse_location(next_field(rest), in_new) ||
        rest.empty())
      return false;
    index_entry* e = st.find(uid);
    if (e == nullptr || (in_new && !e->flags.empty())) return false;
    e->in_new = in_new;
    e->base = std::string(rest);
    e->wire_size = wire_size_in_base(e->base, e->size);
    return true;
  }
  if (kind == "X") {
    imap_uid uid = 0;
    mod_seq ms = 0;
    if (!parse_num(next_field(rest), uid) || !parse_num(next_field(rest), ms) || !rest.empty())
      return false;
    r.max_modseq_seen = std::max(r.max_modseq_seen, ms);
    st.highest_modseq = std::max(st.highest_modseq, ms);
    return st.erase(uid);
  }
  if (kind == "N") {
    imap_uid next = 0;
    if (!parse_num(next_field(rest), next) || !rest.empty() || next == 0) return false;
    r.max_uid_seen = std::max(r.max_uid_seen, next - 1);
    st.uid_next = std::max(st.uid_next, next);
    return true;
  }
  if (kind == "M") {
    mod_seq ms = 0;
    if (!parse_num(next_field(rest), ms) || !rest.empty()) return false;
    r.max_modseq_seen = std::max(r.max_modseq_seen, ms);
    st.highest_modseq = std::max(st.highest_modseq, ms);
    return true;
  }
  return false;
}

// Collects the maxima of a CRC-good line of a damaged file without applying it.
void note_maxima(std::string_view payload, replay_result& r) {
  std::string_view rest = payload;
  const std::string_view kind = next_field(rest);
  imap_uid uid = 0;
  mod_seq ms = 0;
  if (kind == "A" || kind == "F") {
    if (parse_num(next_field(rest), uid) && uid <= max_uid)
      r.max_uid_seen = std::max(r.max_uid_seen, uid);
    if (parse_num(next_field(rest), ms)) r.max_modseq_seen = std::max(r.max_modseq_seen, ms);
  } else if (kind == "X") {
    (void)next_field(rest);
    if (parse_num(next_field(rest), ms)) r.max_modseq_seen = std::max(r.max_modseq_seen, ms);
  } else if (kind == "N") {
    if (parse_num(next_field(rest), uid) && uid > 0)
      r.max_uid_seen = std::max(r.max_uid_seen, uid - 1);
  } else if (kind == "M") {
    if (parse_num(next_field(rest), ms)) r.max_modseq_seen = std::max(r.max_modseq_seen, ms);
  }
}

}  // namespace

index_entry* index_state::find(imap_uid uid) {
  auto it = std::lower_bound(entries.begin(), entries.end(), uid,
                             [](const index_entry& e, imap_uid u) { return e.uid < u; });
  return (it != entries.end() && it->uid == uid) ? &*it : nullptr;
}

const index_entry* index_state::find(imap_uid uid) const {
  return const_cast<index_state*>(this)->find(uid);
}

bool index_state::insert(index_entry e) {
  auto it = std::lower_bound(entries.begin(), entries.end(), e.uid,
                             [](const index_entry& x, imap_uid u) { return x.uid < u; });
  if (it != entries.end() && it->uid == e.uid) return false;
  entries.insert(it, std::move(e));
  return true;
}

bool index_state::erase(imap_uid uid) {
  auto it = std::lower_bound(entries.begin(), entries.end(), uid,
                             [](const index_entry& x, imap_uid u) { return x.uid < u; });
  if (it == entries.end() || it->uid != uid) return false;
  entries.erase(it);
  return true;
}

std::string seal_line(std::string_view payload) {
  char crc[16];
  std::snprintf(crc, sizeof crc, " %08x\n", crc_of(payload));
  std::string out(payload);
  out += crc;
  return out;
}

std::string header_line(std::uint32_t uid_validity) {
  return seal_line("hamail-index 1 uidvalidity=" + std::to_string(uid_validity));
}

std::string add_record(const index_entry& e) {
  return "A " + std::to_string(e.uid) + ' ' + std::to_string(e.modseq) + ' ' +
         flags_field(e.flags) + ' ' + std::to_string(e.date) + ' ' + std::to_string(e.size) + ' ' +
         (e.in_new ? "n " : "c ") + e.base;
}

std::string flags_record(imap_uid uid, mod_seq modseq, stored_flags flags) {
  return "F " + std::to_string(uid) + ' ' + std::to_string(modseq) + ' ' + flags_field(flags);
}

std::string move_record(imap_uid uid, bool in_new, std::string_view base) {
  std::string out = "R " + std::to_string(uid) + (in_new ? " n " : " c ");
  out += base;
  return out;
}

std::string expunge_record(imap_uid uid, mod_seq modseq) {
  return "X " + std::to_string(uid) + ' ' + std::to_string(modseq);
}

std::string uid_next_record(imap_uid uid_next) { return "N " + std::to_string(uid_next); }

std::string modseq_record(mod_seq modseq) { return "M " + std::to_string(modseq); }

std::string compact_index(const index_state& state) {
  std::string out = header_line(state.uid_validity);
  out += seal_line(uid_next_record(state.uid_next));
  out += seal_line(modseq_record(state.highest_modseq));
  for (const auto& e : state.entries) out += seal_line(add_record(e));
  return out;
}

replay_result replay_index(std::string_view content) {
  replay_result r;
  using outcome = replay_result::outcome_t;
  // Lines, each with its end offset (after '\n'); a fragment without '\n' is last.
  struct line {
    std::string_view text;
    std::size_t end;
    bool complete;
  };
  std::vector<line> lines;
  std::size_t pos = 0;
  while (pos < content.size()) {
    const auto nl = content.find('\n', pos);
    if (nl == std::string_view::npos) {
      lines.push_back({content.substr(pos), content.size(), false});
      break;
    }
    lines.push_back({content.substr(pos, nl - pos), nl + 1, true});
    pos = nl + 1;
  }
  if (lines.empty()) {
    r.outcome = outcome::damaged;
    r.problem = "empty index";
    return r;
  }

  // The good prefix: lines up to the first that is incomplete or fails its CRC.
  std::size_t good = 0;
  std::vector<std::string_view> payloads;
  for (const auto& l : lines) {
    std::string_view payload;
    if (!l.complete || !check_line(l.text, payload)) break;
    payloads.push_back(payload);
    ++good;
  }
  if (good < lines.size()) {
    // A crash can tear only the end of the last append: one partial or
    // unwritten (zero-filled) line. Anything more is damage.
    if (good + 1 == lines.size() && good > 0) {
      r.torn_tail = true;
      r.problem = lines.back().complete ? "last line fails its CRC" : "last line incomplete";
    } else {
      r.outcome = outcome::damaged;
      r.problem = "bad line " + std::to_string(good + 1) + " of " + std::to_string(lines.size());
      // Keep what good lines after the damage say about used UIDs and modseqs.
      for (std::size_t i = good; i < lines.size(); ++i) {
        std::string_view payload;
        if (lines[i].complete && check_line(lines[i].text, payload)) {
          if (auto uv = parse_header(payload)) r.header_uid_validity = uv;
          note_maxima(payload, r);
        }
      }
    }
  }
  r.valid_bytes = good == 0 ? 0 : lines[good - 1].end;

  if (payloads.empty()) {
    r.outcome = outcome::damaged;
    if (r.problem.empty()) r.problem = "no valid header";
    return r;
  }
  auto uv = parse_header(payloads.front());
  if (!uv) {
    r.outcome = outcome::damaged;
    r.problem = "bad header";
    for (std::size_t i = 1; i < payloads.size(); ++i) note_maxima(payloads[i], r);
    return r;
  }
  r.header_uid_validity = uv;
  r.state.uid_validity = *uv;
  for (std::size_t i = 1; i < payloads.size(); ++i) {
    if (!apply_record(payloads[i], r.state, r)) {
      if (r.outcome == outcome::ok) {
        r.outcome = outcome::damaged;
        r.problem = "inconsistent record on line " + std::to_string(i + 1);
      }
      note_maxima(payloads[i], r);
    }
    ++r.state.records;
  }
  for (auto& e : r.state.entries) {
    r.max_uid_seen = std::max(r.max_uid_seen, e.uid);
    // \Recent is "still in new/": a claim moves the file to cur/ and writes an R
    // record, a flag change an F record. Set it from where the records leave
    // the file, never from the A record alone, or every claim is undone by a
    // replay (imap-bugs.md B2).
    e.recent = e.in_new;
  }
  return r;
}

}  // namespace hamail::store::detail
