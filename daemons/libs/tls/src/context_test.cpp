// Server/client contexts and the reloadable store, exercised with real
// handshakes over loopback sockets bound to port 0.

#include "hamail/tls/context.hpp"

#include <cppunit/extensions/HelperMacros.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>
#include <fstream>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "hamail/test/temp_dir.hpp"
#include "hamail/test/test_ca.hpp"
#include "hamail/tls/context_store.hpp"

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;

namespace {

/// What each side saw of one handshake.
struct handshake_outcome {
  bool server_ok = false;
  bool client_ok = false;
  std::string client_error;
  std::string serial;    ///< serial of the leaf the client saw
  std::string protocol;  ///< negotiated version, client side
};

/// Runs one handshake between `server_ctx` and `client_ctx` over loopback,
/// the client checking `host`. Bounded by a 20 s watchdog.
handshake_outcome handshake_once(ssl::context& server_ctx, ssl::context& client_ctx,
                                 const std::string& host = "localhost") {
  asio::io_context io;
  handshake_outcome out;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto endpoint = acceptor.local_endpoint();
  int finished = 0;
  asio::steady_timer watchdog(io, std::chrono::seconds(20));
  bool timed_out = false;
  watchdog.async_wait([&](boost::system::error_code ec) {
    if (!ec) {
      timed_out = true;
      io.stop();
    }
  });
  auto done = [&](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    if (++finished == 2) watchdog.cancel();
  };

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        ssl::stream<tcp::socket> stream(std::move(socket), server_ctx);
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::server,
                                                     asio::as_tuple(asio::use_awaitable));
        out.server_ok = !hec;
        if (!hec) co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
      },
      done);

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        ssl::stream<tcp::socket> stream(io, client_ctx);
        auto prepared = hamail::tls::prepare_client(stream.native_handle(), host);
        CPPUNIT_ASSERT(prepared.has_value());
        auto [cec] = co_await stream.next_layer().async_connect(
            endpoint, asio::as_tuple(asio::use_awaitable));
        if (cec) {
          out.client_error = cec.message();
          co_return;
        }
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::client,
                                                     asio::as_tuple(asio::use_awaitable));
        out.client_ok = !hec;
        if (hec) {
          out.client_error = hec.message();
          co_return;
        }
        out.serial = hamail::tls::peer_certificate_serial(stream.native_handle());
        out.protocol = hamail::tls::protocol_name(stream.native_handle());
        co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
      },
      done);

  io.run();
  CPPUNIT_ASSERT_MESSAGE("handshake did not finish within 20 s", !timed_out);
  return out;
}

std::shared_ptr<ssl::context> client_context(const hamail::test::test_ca& ca) {
  auto ctx = hamail::tls::make_client_context(ca.ca_cert.string(), true);
  CPPUNIT_ASSERT_MESSAGE(ctx ? "" : ctx.err().describe(), ctx.has_value());
  return *ctx;
}

hamail::tls_settings settings_for(const hamail::test::test_ca& ca) {
  hamail::tls_settings s;
  s.cert_file = ca.server_cert.string();
  s.key_file = ca.server_key.string();
  s.chain_file = ca.chain.string();
  return s;
}

/// Uppercase hex without leading zeros, so serials from different printers compare.
std::string normal_serial(std::string hex) {
  std::string out;
  for (char c : hex) {
    if (std::isxdigit(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  const auto first = out.find_first_not_of('0');
  return first == std::string::npos ? "0" : out.substr(first);
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

class tls_context_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(tls_context_test);
  CPPUNIT_TEST(good_pair_loads_and_handshakes);
  CPPUNIT_TEST(fullchain_in_cert_file_loads_without_chain_file);
  CPPUNIT_TEST(chain_file_is_sent_so_client_can_verify);
  CPPUNIT_TEST(mismatched_key_is_rejected_naming_both_files);
  CPPUNIT_TEST(missing_certificate_file_error_names_it);
  CPPUNIT_TEST(missing_key_file_error_names_it);
  CPPUNIT_TEST(garbage_certificate_file_is_rejected);
  CPPUNIT_TEST(invalid_min_version_is_config_error);
  CPPUNIT_TEST(unknown_cipher_list_is_config_error);
  CPPUNIT_TEST(min_version_tls13_refuses_tls12_only_client);
  CPPUNIT_TEST(default_min_version_accepts_tls12_only_client);
  CPPUNIT_TEST(client_rejects_wrong_host_name);
  CPPUNIT_TEST(reload_swaps_to_reissued_certificate);
  CPPUNIT_TEST(failed_reload_keeps_old_context);
  CPPUNIT_TEST_SUITE_END();

 public:
  void good_pair_loads_and_handshakes() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    auto ctx = hamail::tls::make_server_context(settings_for(ca));
    CPPUNIT_ASSERT_MESSAGE(ctx ? "" : ctx.err().describe(), ctx.has_value());
    auto client = client_context(ca);
    auto out = handshake_once(**ctx, *client);
    CPPUNIT_ASSERT_MESSAGE(out.client_error, out.client_ok);
    CPPUNIT_ASSERT(out.server_ok);
    CPPUNIT_ASSERT(contains(hamail::tls::certificate_summary(**ctx), "serial="));
  }

  void fullchain_in_cert_file_loads_without_chain_file() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    hamail::tls_settings s;
    s.cert_file = ca.fullchain.string();
    s.key_file = ca.server_key.string();
    auto ctx = hamail::tls::make_server_context(s);
    CPPUNIT_ASSERT_MESSAGE(ctx ? "" : ctx.err().describe(), ctx.has_value());
    auto client = client_context(ca);
    auto out = handshake_once(**ctx, *client);
    CPPUNIT_ASSERT_MESSAGE(out.client_error, out.client_ok);
  }

  void chain_file_is_sent_so_client_can_verify() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    auto client = client_context(ca);

    // Leaf alone: the client trusts only the root and cannot build the path.
    hamail::tls_settings leaf_only = settings_for(ca);
    leaf_only.chain_file.clear();
    auto bare = hamail::tls::make_server_context(leaf_only);
    CPPUNIT_ASSERT(bare.has_value());
    auto without = handshake_once(**bare, *client);
    CPPUNIT_ASSERT_MESSAGE("a leaf without its intermediate must not verify", !without.client_ok);

    auto chained = hamail::tls::make_server_context(settings_for(ca));
    CPPUNIT_ASSERT(chained.has_value());
    auto with = handshake_once(**chained, *client);
    CPPUNIT_ASSERT_MESSAGE(with.client_error, with.client_ok);
  }

  void mismatched_key_is_rejected_naming_both_files() {
    hamail::test::temp_dir dir_a;
    hamail::test::temp_dir dir_b;
    auto a = hamail::test::test_ca::make(dir_a.path());
    auto b = hamail::test::test_ca::make(dir_b.path());
    hamail::tls_settings s = settings_for(a);
    s.key_file = b.server_key.string();
    auto ctx = hamail::tls::make_server_context(s);
    CPPUNIT_ASSERT(!ctx.has_value());
    CPPUNIT_ASSERT(ctx.err().code == hamail::errc::config_error);
    CPPUNIT_ASSERT(ctx.err().is_permanent());
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, s.key_file));
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, s.cert_file));
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, "does not match"));
  }

  void missing_certificate_file_error_names_it() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    hamail::tls_settings s = settings_for(ca);
    s.cert_file = (dir.path() / "no-such-cert.pem").string();
    auto ctx = hamail::tls::make_server_context(s);
    CPPUNIT_ASSERT(!ctx.has_value());
    CPPUNIT_ASSERT(ctx.err().code == hamail::errc::config_error);
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, s.cert_file));
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, "No such file"));
  }

  void missing_key_file_error_names_it() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    hamail::tls_settings s = settings_for(ca);
    s.key_file = (dir.path() / "no-such.key").string();
    auto ctx = hamail::tls::make_server_context(s);
    CPPUNIT_ASSERT(!ctx.has_value());
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, s.key_file));
  }

  void garbage_certificate_file_is_rejected() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    const auto garbage = dir.path() / "garbage.pem";
    std::ofstream(garbage) << "this is not PEM\n";
    hamail::tls_settings s = settings_for(ca);
    s.cert_file = garbage.string();
    auto ctx = hamail::tls::make_server_context(s);
    CPPUNIT_ASSERT(!ctx.has_value());
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, s.cert_file));
  }

  void invalid_min_version_is_config_error() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    hamail::tls_settings s = settings_for(ca);
    s.min_version = "TLSv1.0";
    auto ctx = hamail::tls::make_server_context(s);
    CPPUNIT_ASSERT(!ctx.has_value());
    CPPUNIT_ASSERT(ctx.err().code == hamail::errc::config_error);
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, "TLSv1.0"));
  }

  void unknown_cipher_list_is_config_error() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    hamail::tls_settings s = settings_for(ca);
    s.ciphers = "NO-SUCH-CIPHER";
    auto ctx = hamail::tls::make_server_context(s);
    CPPUNIT_ASSERT(!ctx.has_value());
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, "NO-SUCH-CIPHER"));

    s.ciphers.clear();
    s.ciphersuites = "TLS_NO_SUCH_SUITE";
    ctx = hamail::tls::make_server_context(s);
    CPPUNIT_ASSERT(!ctx.has_value());
    CPPUNIT_ASSERT_MESSAGE(ctx.err().detail, contains(ctx.err().detail, "TLS_NO_SUCH_SUITE"));
  }

  void min_version_tls13_refuses_tls12_only_client() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    hamail::tls_settings s = settings_for(ca);
    s.min_version = "TLSv1.3";
    auto ctx = hamail::tls::make_server_context(s);
    CPPUNIT_ASSERT(ctx.has_value());
    auto client = client_context(ca);
    SSL_CTX_set_max_proto_version(client->native_handle(), TLS1_2_VERSION);
    auto out = handshake_once(**ctx, *client);
    CPPUNIT_ASSERT(!out.client_ok);
    CPPUNIT_ASSERT(!out.server_ok);
  }

  void default_min_version_accepts_tls12_only_client() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    auto ctx = hamail::tls::make_server_context(settings_for(ca));
    CPPUNIT_ASSERT(ctx.has_value());
    auto client = client_context(ca);
    SSL_CTX_set_max_proto_version(client->native_handle(), TLS1_2_VERSION);
    auto out = handshake_once(**ctx, *client);
    CPPUNIT_ASSERT_MESSAGE(out.client_error, out.client_ok);
    CPPUNIT_ASSERT_EQUAL(std::string("TLSv1.2"), out.protocol);
  }

  void client_rejects_wrong_host_name() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    auto ctx = hamail::tls::make_server_context(settings_for(ca));
    CPPUNIT_ASSERT(ctx.has_value());
    auto client = client_context(ca);
    auto out = handshake_once(**ctx, *client, "mail.example.org");
    CPPUNIT_ASSERT_MESSAGE("certificate for localhost accepted for another name", !out.client_ok);
    auto by_ip = handshake_once(**ctx, *client, "127.0.0.1");
    CPPUNIT_ASSERT_MESSAGE(by_ip.client_error, by_ip.client_ok);
  }

  void reload_swaps_to_reissued_certificate() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    auto store = hamail::tls::context_store::open(settings_for(ca));
    CPPUNIT_ASSERT_MESSAGE(store ? "" : store.err().describe(), store.has_value());
    auto client = client_context(ca);

    auto old_ctx = (*store)->current();
    const std::string first = handshake_once(*old_ctx, *client).serial;
    CPPUNIT_ASSERT(!first.empty());

    const std::string reissued = normal_serial(ca.reissue());
    CPPUNIT_ASSERT(reissued != normal_serial(first));
    // Files changed on disk, but nothing is re-read until reload().
    CPPUNIT_ASSERT_EQUAL(normal_serial(first),
                         normal_serial(handshake_once(*(*store)->current(), *client).serial));

    auto r = (*store)->reload();
    CPPUNIT_ASSERT_MESSAGE(r ? "" : r.err().describe(), r.has_value());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{2}, (*store)->generation());
    CPPUNIT_ASSERT_EQUAL(reissued,
                         normal_serial(handshake_once(*(*store)->current(), *client).serial));
    // A holder of the old context keeps serving the old certificate.
    CPPUNIT_ASSERT_EQUAL(normal_serial(first),
                         normal_serial(handshake_once(*old_ctx, *client).serial));
  }

  void failed_reload_keeps_old_context() {
    hamail::test::temp_dir dir;
    auto ca = hamail::test::test_ca::make(dir.path());
    auto store = hamail::tls::context_store::open(settings_for(ca));
    CPPUNIT_ASSERT(store.has_value());
    auto before = (*store)->current();

    hamail::tls_settings broken = settings_for(ca);
    broken.key_file = (dir.path() / "gone.key").string();
    auto r = (*store)->reload(broken);
    CPPUNIT_ASSERT(!r.has_value());
    CPPUNIT_ASSERT(contains(r.err().detail, broken.key_file));
    CPPUNIT_ASSERT(before == (*store)->current());
    CPPUNIT_ASSERT_EQUAL(std::uint64_t{1}, (*store)->generation());
    CPPUNIT_ASSERT_EQUAL(ca.server_key.string(), (*store)->settings().key_file);

    // Same settings, file now unreadable as a key: also kept.
    std::ofstream(ca.server_key, std::ios::trunc) << "garbage\n";
    CPPUNIT_ASSERT(!(*store)->reload().has_value());
    CPPUNIT_ASSERT(before == (*store)->current());

    auto client = client_context(ca);
    auto out = handshake_once(*(*store)->current(), *client);
    CPPUNIT_ASSERT_MESSAGE(out.client_error, out.client_ok);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(tls_context_test);
