#pragma once

// What the IMAP and POP3 frontends of hamail-proxy share: the context every
// session sees, the client's identity as forwarded to the backend, the login
// to the owning store's backend with retries, and the relay that carries the
// session once it is logged in.

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "backend_link.hpp"
#include "hamail/auth/login.hpp"
#include "hamail/directory/account.hpp"
#include "hamail/directory/cached_directory.hpp"
#include "hamail/metrics/registry.hpp"
#include "hamail/net/connection.hpp"
#include "hamail/net/server.hpp"
#include "hamail/proxy/config.hpp"
#include "router.hpp"

namespace hamail::proxy {

using boost::asio::awaitable;

/// The proxy's own metrics (docs/metrics.md), registered once at start-up.
class proxy_metrics {
 public:
  explicit proxy_metrics(metrics::registry& r);
  proxy_metrics(const proxy_metrics&) = delete;
  proxy_metrics& operator=(const proxy_metrics&) = delete;
  /// A finished login attempt of a client: result "ok", "failed" (credentials),
  /// "refused" (locked account, the backend's own refusal), "unavailable"
  /// (directory or store down: a temporary failure).
  void login(service svc, std::string_view result);
  /// A failed attempt on a backend: kind "route" (no address for the store),
  /// "connect", "tls", "login" (greeting or login exchange, timeouts included),
  /// "wrong_store".
  void backend_failure(std::string_view kind);
  /// An SMTP message the proxy answered after its data: "accepted" (250),
  /// "deferred" (4xx) or "refused" (5xx); and each of its recipients:
  /// "delivered", "deferred" (temporary failure) or "refused" (permanent).
  void smtp_message(std::string_view result);
  void smtp_recipient(std::string_view result);
  metrics::counter& retries;               ///< attempts after the first
  metrics::counter& lost;                  ///< relayed sessions whose backend dropped them
  metrics::histogram& imap_backend_login;  ///< connect to logged in, IMAP
  metrics::histogram& pop3_backend_login;  ///< connect to logged in, POP3

 private:
  proxy_metrics(metrics::registry& r, metrics::family<metrics::histogram>& backend_login);
  metrics::family<metrics::counter>& logins_;
  metrics::family<metrics::counter>& failures_;
  metrics::family<metrics::counter>& smtp_messages_;
  metrics::family<metrics::counter>& smtp_recipients_;
};

/// What every frontend session of one proxy shares. Outlives the sessions.
struct proxy_context {
  const proxy_config& config;
  auth::login_services logins;         ///< directory, throttle, password pool
  directory::cached_directory* cache;  ///< to forget an account after "not mine"; may be null
  router& routes;                      ///< store name -> backend address
  std::shared_ptr<boost::asio::ssl::context> backend_tls;  ///< null when [backend] tls = none
  proxy_metrics* stats = nullptr;                          ///< null in tests without metrics
  /// SMTP: spool file writes; null when no SMTP listener is configured.
  boost::asio::thread_pool* spool_pool = nullptr;
  std::shared_ptr<boost::asio::ssl::context> smarthost_tls;  ///< STARTTLS to [smtp] smarthost
  std::minstd_rand random{std::random_device{}()};           ///< disconnect spreading
};

/// Who the client is, as the backend is told (IMAP ID, POP3 XCLIENT).
struct client_identity {
  std::string address;     ///< the client's IP (from the connection, PROXY or an upstream proxy)
  std::uint16_t port = 0;  ///< the client's port
  std::string session_id;  ///< this proxy's session id, for matching log lines
  unsigned ttl = 0;        ///< proxies this login may still cross
};

/// How one login attempt on a connected backend ended.
enum class attempt_status {
  ok,           ///< logged in; attempt_outcome::reply is the backend's success line
  retry,        ///< a temporary failure: try again after a delay
  wrong_store,  ///< the backend said the account is not its own: look the account up again
  refused,      ///< a definitive answer to pass on (reply holds the backend's line)
};

/// The result of one login dialogue.
struct attempt_outcome {
  attempt_status status = attempt_status::retry;
  std::string_view failure =
      "login";         ///< retry: which step failed (proxy_metrics::backend_failure)
  std::string reply;   ///< ok/refused: the backend's line (protocol-specific use)
  std::string detail;  ///< for the log
};

/// The protocol's login dialogue on a connected backend: greeting, STARTTLS,
/// client identity, SASL PLAIN as the proxy for the user; every read and write
/// before `deadline`.
using login_dialogue = std::function<awaitable<attempt_outcome>(
    backend_link&, const backend_target&, clock::time_point deadline)>;

/// Upgrades `link` with STARTTLS/STLS done: the TLS handshake to `target`
/// under [backend] ca_file and verify_name.
awaitable<result<void>> backend_start_tls(proxy_context& ctx, backend_link& link,
                                          const backend_target& target, clock::time_point deadline);

/// A logged-in backend, or why there is none.
struct backend_session {
  std::unique_ptr<backend_link> link;  ///< set on success
  attempt_outcome outcome;             ///< ok (reply = success line) or why not
};

/// Connects to the backend of `account`'s store and logs in through
/// `dialogue`, retrying connection failures, timeouts and temporary refusals
/// with backoff for [backend] retry_for, and looking the account up again
/// (once per attempt) when a backend says it is not the account's store.
/// On failure the outcome is retry (give the client the protocol's temporary
/// failure) or refused (pass the reply on).
awaitable<backend_session> open_backend(proxy_context& ctx, net::connection& conn,
                                        const std::string& login, directory::account& account,
                                        service svc, const login_dialogue& dialogue);

/// How a relay ended.
enum class relay_end {
  client_closed,   ///< the client went away (or a write to it failed)
  backend_closed,  ///< the backend closed or failed
  idle,            ///< nothing either way for relay_idle_timeout
};

/// Watches the bytes a relay carries for the protocol's normal end, so that a
/// backend closing after LOGOUT/QUIT is not mistaken for a failure.
class goodbye_watch {
 public:
  /// Looks for `prefix` at the start of a line.
  explicit goodbye_watch(std::string prefix, bool ignore_case) noexcept
      : prefix_(std::move(prefix)), ignore_case_(ignore_case) {}
  /// Feeds the next piece of the watched direction.
  void feed(std::string_view piece) noexcept;
  /// True once a line started with the prefix.
  bool seen() const noexcept { return seen_; }

 private:
  std::string prefix_;
  bool ignore_case_;
  std::size_t matched_ = 0;  ///< prefix octets matched at the current line start
  bool at_line_start_ = true;
  bool seen_ = false;
};

/// Carries bytes both ways between `client` and `backend` with backpressure
/// (a direction reads again only once its last write finished) until one side
/// ends. `to_backend` and `to_client` are sent first (octets read beyond the
/// login on either side; the caller keeps them alive; they are emptied once
/// sent). The watches, when given, see each direction. Read buffers start at
/// 1 KiB towards the backend and 8 KiB towards the client and grow while reads
/// fill them (to 16 KiB and 64 KiB), back to their start after a short read.
///
/// When both sides are plain TCP (no TLS, no COMPRESS) the relay moves bytes
/// between the two sockets itself (the fast path: a 64 KiB buffer per thread,
/// non-blocking reads and writes, one idle timer per relay); otherwise it goes
/// through the streams. Both keep the same guarantees: the idle timeout counts
/// client silence, the connection's session deadline and force_close() end it.
awaitable<relay_end> relay(net::connection& client, net::byte_stream& backend,
                           std::chrono::milliseconds idle, std::string& to_backend,
                           std::string& to_client, goodbye_watch* client_watch,
                           goodbye_watch* backend_watch);
/// The backend's socket when relay() takes the fast path for this pair, else null.
boost::asio::ip::tcp::socket* fast_relay_socket(net::connection& client, net::byte_stream& backend);

/// A random delay in [0, limit] (spreads the disconnects of a failed store).
std::chrono::milliseconds spread(proxy_context& ctx, std::chrono::milliseconds limit);

/// What a frontend tells its client when a relayed session ends abnormally.
struct goodbyes {
  std::string_view lost;  ///< the backend connection dropped (after the spread delay)
  std::string_view idle;  ///< nothing either way for relay_idle_timeout; empty: say nothing
};

/// Relays a logged-in session until it ends (see relay()); when the backend
/// dropped it without its protocol's goodbye (`ended_normally`), waits the
/// spread delay and sends `say.lost`. Counts and logs the end.
awaitable<void> carry_session(proxy_context& ctx, net::connection& client, backend_session& backend,
                              const directory::account& account, std::string& to_backend,
                              std::string& to_client, goodbye_watch& ended_normally,
                              bool watch_client, const goodbyes& say);

/// Counts a login the directory's check ended (anything but ok) in `ctx`'s metrics.
void count_check(proxy_context& ctx, service svc, auth::login_status st);

/// The IMAP and POP3 frontends, for net::server.
net::protocol_factories frontend_protocols(proxy_context& ctx);
/// The SMTP frontends "smtp", "submission" and "lmtp" (smtp_frontend.cpp); needs spool_pool.
net::protocol_factories smtp_frontend_protocols(proxy_context& ctx);

}  // namespace hamail::proxy
