#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/ssl/context.hpp>

#include "hamail/core/result.hpp"
#include "hamail/core/server_settings.hpp"

namespace hamail::tls {

/// Builds a server context from `[tls]`: minimum version, cipher list and TLS 1.3
/// suites when set, certificate chain, key and optional chain file; compression
/// and renegotiation off, server cipher preference on. Errors (config_error,
/// permanent) name the offending file or setting.
result<std::shared_ptr<boost::asio::ssl::context>> make_server_context(
    const tls_settings& settings);

/// Builds a client context (TLS 1.2+) trusting `ca_file` (the system store when
/// empty); `verify` turns peer verification on. Hostname checks are per
/// connection: see prepare_client().
result<std::shared_ptr<boost::asio::ssl::context>> make_client_context(const std::string& ca_file,
                                                                       bool verify);

/// Sets SNI and the name (DNS name or IP address) the peer certificate must
/// match on one client connection, before its handshake.
result<void> prepare_client(SSL* ssl, const std::string& host);

/// The negotiated protocol, e.g. "TLSv1.3", for Received headers and logs.
std::string protocol_name(const SSL* ssl);
/// The negotiated cipher, e.g. "TLS_AES_256_GCM_SHA384".
std::string cipher_name(const SSL* ssl);
/// The serial of the leaf certificate the peer presented, uppercase hex without
/// leading zeros; empty when there is none.
std::string peer_certificate_serial(const SSL* ssl);
/// "subject=..., serial=..., not_after=..." of the context's own certificate, for logs.
std::string certificate_summary(const boost::asio::ssl::context& ctx);

/// The collected OpenSSL error queue as text (and clears it); `fallback` when empty.
std::string take_openssl_errors(std::string_view fallback = "unknown OpenSSL error");

}  // namespace hamail::tls
