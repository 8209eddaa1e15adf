#pragma once

// HAProxy's PROXY protocol header (doc/proxy-protocol.txt), versions 1 (text)
// and 2 (binary): a sans-I/O parser and the two writers. A load balancer sends
// the header once, first on the connection, to tell the receiver who the real
// client is. Only connections from configured balancer addresses may be read
// with this parser: the header is otherwise a free address spoof.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hamail/core/error.hpp"

namespace hamail::proxy_protocol {

/// Progress of the parser after one feed.
enum class parse_status {
  need_more,  ///< every input octet was consumed; the header is not complete yet
  complete,   ///< the header ended; see the step's header
  error,      ///< the header is invalid; the connection must be closed
};

/// What the sender says the connection is (v2 command nibble).
enum class command : std::uint8_t {
  local = 0x0,  ///< made by the balancer itself (health check): use the real endpoints
  proxy = 0x1,  ///< relayed for a client: the addresses are the client's
};

/// Address family of the relayed connection. `unix_socket` rather than `unix`:
/// `unix` is a predefined macro in GNU dialects.
enum class family : std::uint8_t {
  unspec = 0x0,       ///< unknown or unsupported: use the real endpoints
  inet = 0x1,         ///< IPv4
  inet6 = 0x2,        ///< IPv6
  unix_socket = 0x3,  ///< AF_UNIX
};

/// Transport protocol of the relayed connection.
enum class transport : std::uint8_t {
  unspec = 0x0,
  stream = 0x1,  ///< TCP or SOCK_STREAM
  dgram = 0x2,   ///< UDP or SOCK_DGRAM
};

/// TLV types of the v2 header (spec section 2.2).
namespace tlv_type {
inline constexpr std::uint8_t alpn = 0x01;
inline constexpr std::uint8_t authority = 0x02;
inline constexpr std::uint8_t crc32c = 0x03;
inline constexpr std::uint8_t noop = 0x04;
inline constexpr std::uint8_t unique_id = 0x05;
inline constexpr std::uint8_t ssl = 0x20;
inline constexpr std::uint8_t ssl_version = 0x21;
inline constexpr std::uint8_t ssl_cn = 0x22;
inline constexpr std::uint8_t ssl_cipher = 0x23;
inline constexpr std::uint8_t ssl_sig_alg = 0x24;
inline constexpr std::uint8_t ssl_key_alg = 0x25;
inline constexpr std::uint8_t netns = 0x30;
}  // namespace tlv_type

/// Bits of ssl_info::client.
namespace ssl_client {
inline constexpr std::uint8_t ssl = 0x01;        ///< the client connected over TLS
inline constexpr std::uint8_t cert_conn = 0x02;  ///< it sent a certificate on this connection
inline constexpr std::uint8_t cert_sess = 0x04;  ///< it sent one at least once in the session
}  // namespace ssl_client

/// One end of the relayed connection, for inet and inet6.
struct endpoint {
  /// Network byte order; IPv4 uses the first 4 octets, the rest stay zero.
  std::array<std::uint8_t, 16> address{};
  std::uint16_t port = 0;  ///< host byte order
  bool operator==(const endpoint&) const = default;
};

/// The PP2_TYPE_SSL TLV: how the client reached the balancer.
struct ssl_info {
  std::uint8_t client = 0;   ///< ssl_client bits
  std::uint32_t verify = 0;  ///< 0 when the client's certificate was verified
  std::string version;       ///< PP2_SUBTYPE_SSL_VERSION, e.g. "TLSv1.3"
  std::string cn;            ///< PP2_SUBTYPE_SSL_CN: the client certificate's common name
  std::string cipher;        ///< PP2_SUBTYPE_SSL_CIPHER
  std::string sig_alg;       ///< PP2_SUBTYPE_SSL_SIG_ALG
  std::string key_alg;       ///< PP2_SUBTYPE_SSL_KEY_ALG
  bool operator==(const ssl_info&) const = default;
};

/// A TLV the parser does not interpret (ALPN, NETNS, custom ranges...).
struct tlv {
  std::uint8_t type = 0;
  std::string value;
  bool operator==(const tlv&) const = default;
};

/// A parsed PROXY header. With command::local or family::unspec the receiver
/// uses the connection's real endpoints; addresses are then zero.
struct header {
  std::uint8_t version = 2;  ///< 1 (text line) or 2 (binary)
  command cmd = command::local;
  family fam = family::unspec;
  transport proto = transport::unspec;
  endpoint source;                       ///< inet, inet6: the client
  endpoint destination;                  ///< inet, inet6: the address the client connected to
  std::string source_path;               ///< unix_socket: up to the first NUL of the 108 octets
  std::string destination_path;          ///< unix_socket: likewise
  std::optional<std::string> authority;  ///< PP2_TYPE_AUTHORITY (often the TLS SNI)
  std::optional<std::string> unique_id;  ///< PP2_TYPE_UNIQUE_ID, at most 128 octets
  std::optional<ssl_info> ssl;           ///< PP2_TYPE_SSL
  std::vector<tlv> other_tlvs;           ///< other TLVs in order, up to limits::max_other_tlvs
  bool crc32c = false;                   ///< a PP2_TYPE_CRC32C TLV was present and matched
  bool operator==(const header&) const = default;
};

/// Why a header was refused.
enum class parse_error {
  bad_signature,        ///< starts neither with "PROXY " nor with the v2 signature
  version_not_allowed,  ///< a version turned off in limits
  unsupported_version,  ///< v2 signature followed by a version other than 2
  unknown_command,      ///< v2 command neither LOCAL nor PROXY
  unknown_family,       ///< v2 family/transport octet not in the spec's table
  length_too_large,     ///< v2 header longer than limits::max_v2_length
  truncated_address,    ///< v2 length shorter than the family's address block
  bad_tlv,              ///< a TLV overruns the header, has a wrong size or repeats
  bad_checksum,         ///< the CRC32C TLV does not match the header
  v1_line_too_long,     ///< no CRLF within the first 107 octets
  v1_bad_line_end,      ///< a CR not followed by LF, or an LF without CR
  v1_bad_protocol,      ///< v1 protocol neither TCP4, TCP6 nor UNKNOWN
  v1_bad_address,       ///< v1 address not canonical for its family
  v1_bad_port,          ///< v1 port not a decimal in 0..65535 without leading zeros
  v1_syntax,            ///< v1 fields missing, extra, or not separated by single spaces
};

/// The stable snake_case name of an error, for logs and tests.
std::string_view to_string(parse_error code) noexcept;
/// A one-line English explanation of an error, for logs.
std::string_view describe(parse_error code) noexcept;
/// The error as a hamail::error: permanent, limit_exceeded for the length
/// limits, invalid_input otherwise.
hamail::error to_error(parse_error code);

/// Limits and accepted versions; constructor arguments of the parser.
struct limits {
  /// Largest v2 header accepted, fixed 16 octets included. The spec allows
  /// 16 + 65535; longer headers are refused once their length field is read,
  /// before any of the rest is buffered. A LOCAL header longer than this is
  /// refused too.
  std::size_t max_v2_length = 1024;
  /// Uninterpreted TLVs kept in header::other_tlvs; further ones are skipped.
  std::size_t max_other_tlvs = 8;
  bool accept_v1 = true;  ///< take the text header
  bool accept_v2 = true;  ///< take the binary header
};

/// The v1 line limit including CRLF (spec section 2.1, worst case UNKNOWN).
inline constexpr std::size_t max_v1_line = 107;
/// The fixed part of a v2 header: signature, version/command, family, length.
inline constexpr std::size_t v2_fixed_length = 16;
/// The v2 signature.
inline constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

/// One step of the parser: header is set on complete, error on error.
struct parse_step {
  std::size_t consumed = 0;  ///< octets of this input used; never past the header's end
  parse_status status = parse_status::need_more;
  std::optional<header> hdr;         ///< on complete
  std::optional<parse_error> error;  ///< on error
};

/// Sans-I/O PROXY header parser, one per connection. Feed it the first octets
/// of the connection until it answers complete or error; it consumes exactly
/// the header and never an octet after it (those belong to the mail protocol,
/// e.g. a pipelining client's first command). It holds at most
/// max(107, limits::max_v2_length) octets. Errors are reported as soon as an
/// octet makes the header invalid, so the same input gives the same answer
/// however it is cut. After complete or error it consumes nothing and repeats
/// its answer.
class header_parser {
 public:
  /// Makes a parser with the given limits.
  explicit header_parser(limits lim = {});

  /// Consumes input up to the end of the header; returns need_more (all input
  /// consumed), complete or error.
  parse_step feed(std::string_view input);

  /// Octets of an unfinished header held inside.
  std::size_t buffered() const noexcept { return done_ ? 0 : buffer_.size(); }
  /// Whether complete or error was returned.
  bool finished() const noexcept { return done_; }

 private:
  enum class mode { detect, v1, v2 };

  parse_step fail(parse_error code, std::size_t consumed);
  parse_step finish_v1(std::size_t consumed);
  parse_step finish_v2(std::size_t consumed);

  limits limits_;
  std::string buffer_;  // the header so far
  mode mode_ = mode::detect;
  std::size_t v2_total_ = 0;  // 16 + length field, once known
  bool done_ = false;
  parse_step final_;  // repeated after completion
};

/// Whether the first octets of a connection are, or begin, a PROXY header of
/// either version; for diagnostics only (the spec forbids guessing whether a
/// header is present: a listener takes it always or never).
bool looks_like_proxy_header(std::string_view first_bytes) noexcept;

/// Writes a v2 header. command::local, and a PROXY header whose family and
/// transport have no address block (unspec), give the bare 16 octets;
/// otherwise the address block of `fam`, then the authority, unique id, SSL,
/// other TLVs and, when hdr.crc32c, a CRC32C TLV. Aborts (a caller's bug) if
/// a TLV or the whole header exceeds 65535 octets or a UNIX path 108.
std::string encode_v2(const header& hdr);

/// Writes a v1 line: TCP4 for inet, TCP6 for inet6 (RFC 5952 text), and
/// "PROXY UNKNOWN\r\n" for anything else (local, unspec, unix, dgram). TLVs
/// have no v1 form and are dropped.
std::string encode_v1(const header& hdr);

/// The CRC32C (Castagnoli) of the octets, as the CRC32C TLV carries it.
std::uint32_t crc32c(std::string_view data) noexcept;

}  // namespace hamail::proxy_protocol
