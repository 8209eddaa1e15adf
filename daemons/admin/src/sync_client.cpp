#include "sync_client.hpp"

#include "hamail/admin/errors.hpp"

namespace hamail::admin::detail {

namespace {

using clock = std::chrono::steady_clock;

std::string_view word(std::string_view& rest) {
  const auto sp = rest.find(' ');
  const std::string_view w = rest.substr(0, sp);
  rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  return w;
}

}  // namespace

sync_reply parse_sync_reply(std::string_view line) {
  sync_reply r;
  std::string_view rest = line;
  const std::string_view status = word(rest);
  if (status == "OK") {
    r.ok = true;
    r.text = rest;
  } else if (status == "NO") {
    r.code = word(rest);
    r.text = rest;
  } else {
    r.bad = true;
    r.text = status == "BAD" ? rest : line;
  }
  return r;
}

sync_client::sync_client(const store_record& store, const connection_settings& settings,
                         std::chrono::milliseconds timeout) {
  if (!store.sync_port) {
    throw admin_error(exit_status::refused,
                      "store \"" + store.name +
                          "\" has no sync port: give its sync listener with store set-sync-port " +
                          store.name + " PORT");
  }
  if (store.address.empty()) {
    throw admin_error(exit_status::refused, "store \"" + store.name +
                                                "\" has no service address to reach its sync "
                                                "listener at");
  }
  if (settings.sync_secret_file.empty()) {
    throw admin_error(exit_status::config_error,
                      "no sync secret: set [sync] secret_file in the configuration file, "
                      "HAMAIL_SYNC_SECRET_FILE or --sync-secret-file");
  }
  const std::string secret = read_secret_file(settings.sync_secret_file);
  where_ = store.name + " (" + store.address + ":" + std::to_string(*store.sync_port) + ")";
  conn_ = std::make_unique<blockio::client_connection>(clock::now() + timeout, where_);
  blockio::client_status st;
  const std::string name = settings.sync_verify_name ? store.host : std::string();
  if (!conn_->connect(store.address, static_cast<std::uint16_t>(*store.sync_port), st) ||
      !conn_->start_tls(store.address, settings.sync_ca_file, name, st)) {
    throw admin_error(exit_status::unreachable, "sync listener of store " + st.detail);
  }
  const sync_reply auth = command("AUTH " + secret, {}, timeout);
  if (!auth.ok) {
    throw admin_error(exit_status::unreachable,
                      "sync listener of store " + where_ + " refused the sync secret: " +
                          (auth.code.empty() ? "" : auth.code + " ") + auth.text);
  }
}

sync_client::~sync_client() = default;

sync_reply sync_client::command(const std::string& line,
                                const std::function<void(std::string_view)>& untagged,
                                std::chrono::milliseconds idle) {
  blockio::client_status st;
  conn_->set_deadline(clock::now() + idle);
  if (!conn_->send(line + "\r\n", st)) {
    throw admin_error(exit_status::unreachable, "sync listener of store " + st.detail);
  }
  const std::string verb = line.substr(0, line.find(' '));
  for (;;) {
    std::string reply;
    conn_->set_deadline(clock::now() + idle);
    if (!conn_->line(reply, st, verb.c_str())) {
      throw admin_error(exit_status::unreachable, "sync listener of store " + st.detail);
    }
    if (reply.starts_with("* ")) {
      if (untagged) untagged(std::string_view(reply).substr(2));
      continue;
    }
    return parse_sync_reply(reply);
  }
}

}  // namespace hamail::admin::detail
