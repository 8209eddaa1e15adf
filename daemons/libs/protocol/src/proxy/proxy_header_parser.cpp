#include <algorithm>
#include <array>
#include <cstdlib>
#include <utility>

#include "hamail/protocol/proxy/header_parser.hpp"

namespace hamail::proxy_protocol {
namespace {

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::size_t inet_block = 12;   // 2 * 4 + 2 * 2
constexpr std::size_t inet6_block = 36;  // 2 * 16 + 2 * 2
constexpr std::size_t unix_path = 108;   // sizeof(sun_path) on Linux
constexpr std::size_t unix_block = 2 * unix_path;
constexpr std::size_t max_unique_id = 128;  // spec 2.2.5
constexpr std::size_t ssl_fixed = 5;        // client flags + verify

std::uint8_t octet(std::string_view s, std::size_t i) { return static_cast<std::uint8_t>(s[i]); }

std::uint16_t be16(std::string_view s, std::size_t i) {
  return static_cast<std::uint16_t>((octet(s, i) << 8) | octet(s, i + 1));
}

std::uint32_t be32(std::string_view s, std::size_t i) {
  return (std::uint32_t{octet(s, i)} << 24) | (std::uint32_t{octet(s, i + 1)} << 16) |
         (std::uint32_t{octet(s, i + 2)} << 8) | std::uint32_t{octet(s, i + 3)};
}

void put16(std::string& out, std::size_t value) {
  out.push_back(static_cast<char>((value >> 8) & 0xff));
  out.push_back(static_cast<char>(value & 0xff));
}

void put32(std::string& out, std::uint32_t value) {
  put16(out, value >> 16);
  put16(out, value & 0xffff);
}

// The address block length of a v2 family/transport octet, or nothing when
// the spec does not list the octet. UNSPEC (0x00) has no block to read.
std::optional<std::size_t> address_block(std::uint8_t fam_proto) {
  switch (fam_proto) {
    case 0x00:
      return 0;
    case 0x11:
    case 0x12:
      return inet_block;
    case 0x21:
    case 0x22:
      return inet6_block;
    case 0x31:
    case 0x32:
      return unix_block;
    default:
      return std::nullopt;
  }
}

parse_step failed(parse_error code) {
  parse_step s;
  s.status = parse_status::error;
  s.error = code;
  return s;
}

parse_step completed(header h) {
  parse_step s;
  s.status = parse_status::complete;
  s.hdr = std::move(h);
  return s;
}

// ---- v1 text --------------------------------------------------------------

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal of 1..max_digits digits without a leading zero, at most max.
std::optional<unsigned> parse_decimal(std::string_view s, std::size_t max_digits, unsigned max) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;  // no octal look-alikes (spec 2.1)
  unsigned v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

// Dotted quad, exactly four decimals 0..255 without leading zeros.
bool parse_ipv4(std::string_view s, std::uint8_t* out) {
  for (int i = 0; i < 4; ++i) {
    const auto dot = i < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos) return false;
    const auto v = parse_decimal(s.substr(0, dot), 3, 255);
    if (!v) return false;
    out[i] = static_cast<std::uint8_t>(*v);
    s.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  return s.empty();
}

// Colon-separated groups of 1..4 hex digits; the last may be a dotted quad
// (two groups) when allowed. An empty part has no groups.
bool parse_groups(std::string_view part, bool last_may_be_v4, std::vector<std::uint16_t>& out) {
  if (part.empty()) return true;
  while (true) {
    const auto colon = part.find(':');
    const auto group = part.substr(0, colon);
    if (colon == std::string_view::npos && last_may_be_v4 &&
        group.find('.') != std::string_view::npos) {
      std::uint8_t q[4];
      if (!parse_ipv4(group, q)) return false;
      out.push_back(static_cast<std::uint16_t>((q[0] << 8) | q[1]));
      out.push_back(static_cast<std::uint16_t>((q[2] << 8) | q[3]));
      return true;
    }
    if (group.empty() || group.size() > 4) return false;
    unsigned v = 0;
    for (char c : group) {
      const int h = hex_value(c);
      if (h < 0) return false;
      v = v * 16 + static_cast<unsigned>(h);
    }
    out.push_back(static_cast<std::uint16_t>(v));
    if (colon == std::string_view::npos) return true;
    part.remove_prefix(colon + 1);
  }
}

// IPv6 text as inet_ntop writes it and inet_pton reads it: hex groups, at
// most one "::", an optional trailing dotted quad; 128 bits exactly.
bool parse_ipv6(std::string_view s, std::array<std::uint8_t, 16>& out) {
  std::vector<std::uint16_t> head, tail;
  const auto gap = s.find("::");
  if (gap == std::string_view::npos) {
    if (!parse_groups(s, true, head) || head.size() != 8) return false;
  } else {
    const auto after = s.substr(gap + 2);
    if (after.find("::") != std::string_view::npos) return false;
    if (!parse_groups(s.substr(0, gap), false, head) || !parse_groups(after, true, tail))
      return false;
    if (head.size() + tail.size() > 7) return false;
    head.resize(8 - tail.size(), 0);
    head.insert(head.end(), tail.begin(), tail.end());
  }
  for (std::size_t i = 0; i < 8; ++i) {
    out[2 * i] = static_cast<std::uint8_t>(head[i] >> 8);
    out[2 * i + 1] = static_cast<std::uint8_t>(head[i] & 0xff);
  }
  return true;
}

// The line without its CRLF, starting with "PROXY ".
parse_step decode_v1(std::string_view line) {
  std::string_view rest = line.substr(v1_prefix.size());
  // "UNKNOWN": the receiver must ignore anything up to the CRLF (spec 2.1).
  if (rest.starts_with("UNKNOWN") && (rest.size() == 7 || rest[7] == ' ')) {
    header h;
    h.version = 1;
    h.cmd = command::proxy;
    return completed(std::move(h));
  }
  std::array<std::string_view, 5> fields;
  std::size_t count = 0;
  while (true) {
    const auto space = rest.find(' ');
    if (count == fields.size()) return failed(parse_error::v1_syntax);
    fields[count++] = rest.substr(0, space);
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  header h;
  h.version = 1;
  h.cmd = command::proxy;
  h.proto = transport::stream;
  if (fields[0] == "TCP4") {
    h.fam = family::inet;
  } else if (fields[0] == "TCP6") {
    h.fam = family::inet6;
  } else {
    return failed(parse_error::v1_bad_protocol);
  }
  if (count != fields.size()) return failed(parse_error::v1_syntax);
  for (std::size_t i = 1; i < fields.size(); ++i) {
    if (fields[i].empty()) return failed(parse_error::v1_syntax);  // two spaces in a row
  }
  for (auto [text, ep] : {std::pair{fields[1], &h.source}, std::pair{fields[2], &h.destination}}) {
    const bool ok = h.fam == family::inet ? parse_ipv4(text, ep->address.data())
                                          : parse_ipv6(text, ep->address);
    if (!ok) return failed(parse_error::v1_bad_address);
  }
  const auto sport = parse_decimal(fields[3], 5, 65535);
  const auto dport = parse_decimal(fields[4], 5, 65535);
  if (!sport || !dport) return failed(parse_error::v1_bad_port);
  h.source.port = static_cast<std::uint16_t>(*sport);
  h.destination.port = static_cast<std::uint16_t>(*dport);
  return completed(std::move(h));
}

// ---- v2 binary ------------------------------------------------------------

// Walks the TLVs in [pos, end) of s, calling f(type, value) for each; false
// when one overruns.
template <class F>
bool walk_tlvs(std::string_view s, std::size_t pos, std::size_t end, F&& f) {
  while (pos < end) {
    if (end - pos < 3) return false;
    const std::uint8_t type = octet(s, pos);
    const std::size_t len = be16(s, pos + 1);
    if (len > end - pos - 3) return false;
    if (!f(type, pos + 3, len)) return false;
    pos += 3 + len;
  }
  return true;
}

bool decode_ssl(std::string_view value, ssl_info& out) {
  if (value.size() < ssl_fixed) return false;
  out.client = octet(value, 0);
  out.verify = be32(value, 1);
  return walk_tlvs(
      value, ssl_fixed, value.size(), [&](std::uint8_t type, std::size_t at, std::size_t len) {
        std::string* field = nullptr;
        switch (type) {
          case tlv_type::ssl_version:
            field = &out.version;
            break;
          case tlv_type::ssl_cn:
            field = &out.cn;
            break;
          case tlv_type::ssl_cipher:
            field = &out.cipher;
            break;
          case tlv_type::ssl_sig_alg:
            field = &out.sig_alg;
            break;
          case tlv_type::ssl_key_alg:
            field = &out.key_alg;
            break;
          default:
            return true;  // sub-TLVs of no interest (client certificate...) are skipped
        }
        if (!field->empty()) return false;  // repeated: which one would be right?
        field->assign(value.substr(at, len));
        return true;
      });
}

// The whole v2 header, already checked up to its length field.
parse_step decode_v2(std::string_view s, const limits& lim) {
  header h;
  h.version = 2;
  h.cmd = static_cast<command>(octet(s, 12) & 0x0f);
  if (h.cmd == command::local) return completed(std::move(h));  // the block is ignored (2.2)
  const std::uint8_t fam_proto = octet(s, 13);
  const std::size_t block = *address_block(fam_proto);
  if (block == 0) return completed(std::move(h));  // UNSPEC: no known address block, no TLVs
  h.fam = static_cast<family>(fam_proto >> 4);
  h.proto = static_cast<transport>(fam_proto & 0x0f);
  std::size_t pos = v2_fixed_length;
  switch (h.fam) {
    case family::inet:
      std::copy_n(s.begin() + pos, 4, h.source.address.begin());
      std::copy_n(s.begin() + pos + 4, 4, h.destination.address.begin());
      h.source.port = be16(s, pos + 8);
      h.destination.port = be16(s, pos + 10);
      break;
    case family::inet6:
      std::copy_n(s.begin() + pos, 16, h.source.address.begin());
      std::copy_n(s.begin() + pos + 16, 16, h.destination.address.begin());
      h.source.port = be16(s, pos + 32);
      h.destination.port = be16(s, pos + 34);
      break;
    default: {
      const auto path = [&](std::size_t at) {
        const auto raw = s.substr(at, unix_path);
        return std::string(raw.substr(0, raw.find('\0')));
      };
      h.source_path = path(pos);
      h.destination_path = path(pos + unix_path);
      break;
    }
  }
  pos += block;
  std::optional<std::size_t> crc_at;
  const bool tlvs_ok =
      walk_tlvs(s, pos, s.size(), [&](std::uint8_t type, std::size_t at, std::size_t len) {
        const auto value = s.substr(at, len);
        switch (type) {
          case tlv_type::authority:
            if (h.authority) return false;
            h.authority.emplace(value);
            return true;
          case tlv_type::unique_id:
            if (h.unique_id || len > max_unique_id) return false;
            h.unique_id.emplace(value);
            return true;
          case tlv_type::ssl:
            if (h.ssl) return false;
            return decode_ssl(value, h.ssl.emplace());
          case tlv_type::crc32c:
            if (crc_at || len != 4) return false;
            crc_at = at;
            return true;
          case tlv_type::noop:
            return true;
          default:
            if (h.other_tlvs.size() < lim.max_other_tlvs)
              h.other_tlvs.push_back(tlv{type, std::string(value)});
            return true;
        }
      });
  if (!tlvs_ok) return failed(parse_error::bad_tlv);
  if (crc_at) {
    // The checksum covers the whole header with its own field zeroed (2.2.3).
    std::string copy(s);
    const std::uint32_t sent = be32(s, *crc_at);
    copy.replace(*crc_at, 4, 4, '\0');
    if (crc32c(copy) != sent) return failed(parse_error::bad_checksum);
    h.crc32c = true;
  }
  return completed(std::move(h));
}

void put_tlv(std::string& out, std::uint8_t type, std::string_view value) {
  if (value.size() > 0xffff) std::abort();  // documented precondition of encode_v2
  out.push_back(static_cast<char>(type));
  put16(out, value.size());
  out.append(value);
}

std::string ipv4_text(const endpoint& ep) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    if (i) out.push_back('.');
    out += std::to_string(ep.address[i]);
  }
  return out;
}

// RFC 5952: lower case, no leading zeros, the longest run of two or more
// zero groups (the first of equals) as "::".
std::string ipv6_text(const endpoint& ep) {
  std::array<unsigned, 8> g{};
  for (std::size_t i = 0; i < 8; ++i) g[i] = (ep.address[2 * i] << 8) | ep.address[2 * i + 1];
  std::size_t best = 8, best_len = 0;
  for (std::size_t i = 0; i < 8;) {
    std::size_t j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len && j - i >= 2) {
      best = i;
      best_len = j - i;
    }
    i = j == i ? i + 1 : j;
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out.push_back(':');
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned d = (g[i] >> shift) & 0xf;
      if (d != 0 || started || shift == 0) {
        out.push_back(digits[d]);
        started = true;
      }
    }
  }
  return out;
}

}  // namespace

std::string_view to_string(parse_error code) noexcept {
  switch (code) {
    case parse_error::bad_signature:
      return "bad_signature";
    case parse_error::version_not_allowed:
      return "version_not_allowed";
    case parse_error::unsupported_version:
      return "unsupported_version";
    case parse_error::unknown_command:
      return "unknown_command";
    case parse_error::unknown_family:
      return "unknown_family";
    case parse_error::length_too_large:
      return "length_too_large";
    case parse_error::truncated_address:
      return "truncated_address";
    case parse_error::bad_tlv:
      return "bad_tlv";
    case parse_error::bad_checksum:
      return "bad_checksum";
    case parse_error::v1_line_too_long:
      return "v1_line_too_long";
    case parse_error::v1_bad_line_end:
      return "v1_bad_line_end";
    case parse_error::v1_bad_protocol:
      return "v1_bad_protocol";
    case parse_error::v1_bad_address:
      return "v1_bad_address";
    case parse_error::v1_bad_port:
      return "v1_bad_port";
    case parse_error::v1_syntax:
      return "v1_syntax";
  }
  return "unknown";
}

std::string_view describe(parse_error code) noexcept {
  switch (code) {
    case parse_error::bad_signature:
      return "PROXY header expected: the connection starts with neither \"PROXY \" nor the v2 "
             "signature";
    case parse_error::version_not_allowed:
      return "PROXY header version not accepted on this listener";
    case parse_error::unsupported_version:
      return "PROXY v2 signature followed by a version other than 2";
    case parse_error::unknown_command:
      return "PROXY v2 command is neither LOCAL nor PROXY";
    case parse_error::unknown_family:
      return "PROXY v2 address family or transport is not one the protocol defines";
    case parse_error::length_too_large:
      return "PROXY v2 header longer than the configured limit";
    case parse_error::truncated_address:
      return "PROXY v2 length too short for the address block of its family";
    case parse_error::bad_tlv:
      return "PROXY v2 TLV overruns the header, has a wrong length or is repeated";
    case parse_error::bad_checksum:
      return "PROXY v2 CRC32C TLV does not match the header";
    case parse_error::v1_line_too_long:
      return "PROXY v1 line without CRLF in its first 107 octets";
    case parse_error::v1_bad_line_end:
      return "PROXY v1 line holds a CR without LF or an LF without CR";
    case parse_error::v1_bad_protocol:
      return "PROXY v1 protocol is neither TCP4, TCP6 nor UNKNOWN";
    case parse_error::v1_bad_address:
      return "PROXY v1 address is not a canonical address of its family";
    case parse_error::v1_bad_port:
      return "PROXY v1 port is not a decimal in 0..65535 without leading zeros";
    case parse_error::v1_syntax:
      return "PROXY v1 line needs exactly five fields separated by single spaces";
  }
  return "invalid PROXY header";
}

hamail::error to_error(parse_error code) {
  const bool limit = code == parse_error::length_too_large || code == parse_error::v1_line_too_long;
  return hamail::error::permanent(limit ? errc::limit_exceeded : errc::invalid_input,
                                  "invalid PROXY protocol header", std::string(describe(code)));
}

header_parser::header_parser(limits lim) : limits_(lim) {}

parse_step header_parser::fail(parse_error code, std::size_t consumed) {
  auto s = failed(code);
  s.consumed = consumed;
  done_ = true;
  final_ = s;
  buffer_.clear();
  buffer_.shrink_to_fit();
  return s;
}

parse_step header_parser::finish_v1(std::size_t consumed) {
  auto s = decode_v1(std::string_view(buffer_).substr(0, buffer_.size() - 2));
  s.consumed = consumed;
  done_ = true;
  final_ = s;
  buffer_.clear();
  buffer_.shrink_to_fit();
  return s;
}

parse_step header_parser::finish_v2(std::size_t consumed) {
  auto s = decode_v2(buffer_, limits_);
  s.consumed = consumed;
  done_ = true;
  final_ = s;
  buffer_.clear();
  buffer_.shrink_to_fit();
  return s;
}

parse_step header_parser::feed(std::string_view input) {
  if (done_) {
    auto s = final_;
    s.consumed = 0;
    return s;
  }
  std::size_t i = 0;
  while (i < input.size()) {
    if (mode_ == mode::v2 && buffer_.size() >= v2_fixed_length) {
      // The length is known: take exactly the rest of the header, no more.
      const std::size_t take = std::min(v2_total_ - buffer_.size(), input.size() - i);
      buffer_.append(input.substr(i, take));
      i += take;
      if (buffer_.size() == v2_total_) return finish_v2(i);
      continue;
    }
    const char c = input[i++];
    buffer_.push_back(c);
    const std::size_t n = buffer_.size();
    switch (mode_) {
      case mode::detect:
        if (c == v1_prefix[0]) {
          mode_ = mode::v1;
        } else if (c == v2_signature[0]) {
          mode_ = mode::v2;
        } else {
          return fail(parse_error::bad_signature, i);
        }
        break;
      case mode::v1:
        if (n <= v1_prefix.size()) {
          if (c != v1_prefix[n - 1]) return fail(parse_error::bad_signature, i);
          if (n == v1_prefix.size() && !limits_.accept_v1)
            return fail(parse_error::version_not_allowed, i);
          break;
        }
        // The spec wants a CRLF and nothing else to end the line: a lone CR
        // or LF is refused at once rather than resynchronised on.
        if (c == '\n') {
          if (buffer_[n - 2] != '\r') return fail(parse_error::v1_bad_line_end, i);
          return finish_v1(i);
        }
        if (buffer_[n - 2] == '\r') return fail(parse_error::v1_bad_line_end, i);
        if (n >= max_v1_line) return fail(parse_error::v1_line_too_long, i);
        break;
      case mode::v2:
        if (n <= v2_signature.size()) {
          if (c != v2_signature[n - 1]) return fail(parse_error::bad_signature, i);
          if (n == v2_signature.size() && !limits_.accept_v2)
            return fail(parse_error::version_not_allowed, i);
        } else if (n == 13) {
          const auto ver_cmd = static_cast<std::uint8_t>(c);
          if ((ver_cmd >> 4) != 2) return fail(parse_error::unsupported_version, i);
          if ((ver_cmd & 0x0f) > 1) return fail(parse_error::unknown_command, i);
        } else if (n == 14) {
          // LOCAL ignores the family (2.2), so any octet is taken there.
          const bool local = (octet(buffer_, 12) & 0x0f) == 0;
          if (!local && !address_block(static_cast<std::uint8_t>(c)))
            return fail(parse_error::unknown_family, i);
        } else if (n == v2_fixed_length) {
          const std::size_t len = be16(buffer_, 14);
          v2_total_ = v2_fixed_length + len;
          // Refused on the length field alone: nothing more is buffered.
          if (v2_total_ > limits_.max_v2_length) return fail(parse_error::length_too_large, i);
          const bool local = (octet(buffer_, 12) & 0x0f) == 0;
          if (!local && len < *address_block(octet(buffer_, 13)))
            return fail(parse_error::truncated_address, i);
          if (len == 0) return finish_v2(i);
        }
        break;
    }
  }
  parse_step s;
  s.consumed = input.size();
  return s;
}

bool looks_like_proxy_header(std::string_view first_bytes) noexcept {
  if (first_bytes.empty()) return false;
  const auto is_start = [&](std::string_view sig) {
    const auto n = std::min(first_bytes.size(), sig.size());
    return first_bytes.substr(0, n) == sig.substr(0, n);
  };
  return is_start(v1_prefix) || is_start(v2_signature);
}

std::uint32_t crc32c(std::string_view data) noexcept {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t crc = 0xffffffffu;
  for (char ch : data) crc = table[(crc ^ static_cast<std::uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

std::string encode_v2(const header& hdr) {
  std::string out(v2_signature);
  out.push_back(static_cast<char>(0x20 | static_cast<std::uint8_t>(hdr.cmd)));
  if (hdr.cmd == command::local) {
    out.push_back('\0');
    put16(out, 0);
    return out;
  }
  const auto fam_proto = static_cast<std::uint8_t>((static_cast<std::uint8_t>(hdr.fam) << 4) |
                                                   static_cast<std::uint8_t>(hdr.proto));
  const auto block = address_block(fam_proto);
  // Families the spec lists with an unspecified transport have no defined
  // block; they are sent as UNSPEC.
  const bool addresses = block && *block > 0;
  out.push_back(addresses ? static_cast<char>(fam_proto) : '\0');
  put16(out, 0);  // the length, filled in below
  if (addresses) {
    switch (hdr.fam) {
      case family::inet:
        out.append(reinterpret_cast<const char*>(hdr.source.address.data()), 4);
        out.append(reinterpret_cast<const char*>(hdr.destination.address.data()), 4);
        put16(out, hdr.source.port);
        put16(out, hdr.destination.port);
        break;
      case family::inet6:
        out.append(reinterpret_cast<const char*>(hdr.source.address.data()), 16);
        out.append(reinterpret_cast<const char*>(hdr.destination.address.data()), 16);
        put16(out, hdr.source.port);
        put16(out, hdr.destination.port);
        break;
      default:
        for (const auto* p : {&hdr.source_path, &hdr.destination_path}) {
          if (p->size() > unix_path) std::abort();
          std::string path = *p;
          path.resize(unix_path, '\0');
          out += path;
        }
        break;
    }
    if (hdr.authority) put_tlv(out, tlv_type::authority, *hdr.authority);
    if (hdr.unique_id) put_tlv(out, tlv_type::unique_id, *hdr.unique_id);
    if (hdr.ssl) {
      std::string v;
      v.push_back(static_cast<char>(hdr.ssl->client));
      put32(v, hdr.ssl->verify);
      const std::pair<std::uint8_t, const std::string*> subs[] = {
          {tlv_type::ssl_version, &hdr.ssl->version}, {tlv_type::ssl_cn, &hdr.ssl->cn},
          {tlv_type::ssl_cipher, &hdr.ssl->cipher},   {tlv_type::ssl_sig_alg, &hdr.ssl->sig_alg},
          {tlv_type::ssl_key_alg, &hdr.ssl->key_alg},
      };
      for (const auto& [type, value] : subs) {
        if (!value->empty()) put_tlv(v, type, *value);
      }
      put_tlv(out, tlv_type::ssl, v);
    }
    for (const auto& t : hdr.other_tlvs) put_tlv(out, t.type, t.value);
    if (hdr.crc32c) put_tlv(out, tlv_type::crc32c, std::string(4, '\0'));
  }
  const std::size_t len = out.size() - v2_fixed_length;
  if (len > 0xffff) std::abort();
  out[14] = static_cast<char>(len >> 8);
  out[15] = static_cast<char>(len & 0xff);
  if (addresses && hdr.crc32c) {
    std::string crc;
    put32(crc, crc32c(out));
    out.replace(out.size() - 4, 4, crc);
  }
  return out;
}

std::string encode_v1(const header& hdr) {
  const bool tcp = hdr.cmd == command::proxy && hdr.proto == transport::stream;
  if (tcp && hdr.fam == family::inet) {
    return "PROXY TCP4 " + ipv4_text(hdr.source) + " " + ipv4_text(hdr.destination) + " " +
           std::to_string(hdr.source.port) + " " + std::to_string(hdr.destination.port) + "\r\n";
  }
  if (tcp && hdr.fam == family::inet6) {
    return "PROXY TCP6 " + ipv6_text(hdr.source) + " " + ipv6_text(hdr.destination) + " " +
           std::to_string(hdr.source.port) + " " + std::to_string(hdr.destination.port) + "\r\n";
  }
  return "PROXY UNKNOWN\r\n";
}

}  // namespace hamail::proxy_protocol
