#!/usr/bin/env bash
# The single-machine demo stack: a real slapd with the hamail schema, two stores
# (two hamail-backend instances, store-a and store-b) and one hamail-proxy on
# loopback, demo accounts placed on both stores with hamail-admin, a welcome
# message delivered to each, and the endpoints written as KEY=VALUE lines.
#
#   demo.sh start    start (or reuse) the stack; prints where to connect
#   demo.sh stop     stop exactly the processes this demo started (by their pids)
#   demo.sh status   say what is running
#
# Environment:
#   HAMAIL_DEMO_DIR    state directory (default: <repo>/demo-state); a second start reuses it
#   HAMAIL_BUILD_DIR   where the programs are (default: <repo>/build/release)
#   HAMAIL_DEMO_LDAP_PORT  slapd's loopback port (default 3890)
#   HAMAIL_DEMO_SMTP_PORT, _SUBMISSION_PORT, _SUBMISSIONS_PORT, _IMAP_PORT, _IMAPS_PORT,
#   _POP3_PORT, _POP3S_PORT
#                      the proxy's client ports (defaults 2525, 5870, 4650, 1143, 1993, 1110,
#                      1995)
#   HAMAIL_DEMO_LMTP_PORT  store-a's LMTP port (default 2424); the stores' other ports are
#                      chosen by the kernel
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="${HAMAIL_DEMO_DIR:-$root/demo-state}"
build="${HAMAIL_BUILD_DIR:-$root/build/release}"
backend_bin="$build/daemons/backend/hamail-backend"
proxy_bin="$build/daemons/proxy/hamail-proxy"
admin_bin="$build/daemons/admin/hamail-admin"
ldap_port="${HAMAIL_DEMO_LDAP_PORT:-3890}"
smtp_port="${HAMAIL_DEMO_SMTP_PORT:-2525}"
submission_port="${HAMAIL_DEMO_SUBMISSION_PORT:-5870}"
submissions_port="${HAMAIL_DEMO_SUBMISSIONS_PORT:-4650}"
lmtp_port="${HAMAIL_DEMO_LMTP_PORT:-2424}"
imap_port="${HAMAIL_DEMO_IMAP_PORT:-1143}"
imaps_port="${HAMAIL_DEMO_IMAPS_PORT:-1993}"
pop3_port="${HAMAIL_DEMO_POP3_PORT:-1110}"
pop3s_port="${HAMAIL_DEMO_POP3S_PORT:-1995}"
suffix="dc=hamail,dc=test"
root_dn="cn=admin,$suffix"
domain="hamail.test"
stores=(store-a store-b)

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# pid_alive PIDFILE BINARY: the pid in the file is running BINARY (not a reused pid).
pid_alive() {
  local pidfile="$1" binary="$2" pid exe
  [[ -s "$pidfile" ]] || return 1
  pid="$(head -1 "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  [[ "$exe" == "$(readlink -f "$binary")" ]]
}

stop_pid() {
  local pidfile="$1" binary="$2" name="$3" pid
  if ! pid_alive "$pidfile" "$binary"; then
    say "$name is not running"
    return 0
  fi
  pid="$(head -1 "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { say "$name stopped (pid $pid)"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  say "$name did not stop in 30 s and was killed (pid $pid)"
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

first_run() {
  say "creating the demo in $state"
  mkdir -p "$state"/{slapd/slapd.d,slapd/db,secrets,tls}
  chmod 700 "$state/secrets"
  openssl rand -base64 18 | tr -d '\n' > "$state/secrets/ldap-admin"
  openssl rand -base64 12 | tr -d '/+=\n' > "$state/secrets/demo-password"
  chmod 600 "$state/secrets/"*

  # A throwaway CA and a certificate for localhost / 127.0.0.1.
  (
    cd "$state/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
      -days 3650 -subj "/CN=hamail demo CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
      -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 825 \
      -extfile server.ext 2>/dev/null
  )

  local pw_hash
  pw_hash="$(slappasswd -s "$(cat "$state/secrets/ldap-admin")" -h '{SSHA}')"
  {
    printf 'dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: %s/slapd/slapd.pid\n\n' "$state"
    printf 'dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n'
    printf 'olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n'
    printf 'dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n'
    for s in core cosine nis inetorgperson misc; do printf 'include: file:///etc/ldap/schema/%s.ldif\n\n' "$s"; done
    printf 'include: file://%s/ldap-schema/hamail.ldif\n\n' "$root"
    printf 'dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n'
    printf 'objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n\n'
    printf 'dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\n'
    printf 'olcAccess: {0}to * by * none\n\n'
    printf 'dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n'
    printf 'olcDatabase: {1}mdb\nolcSuffix: %s\nolcRootDN: %s\nolcRootPW: %s\n' "$suffix" "$root_dn" "$pw_hash"
    printf 'olcDbDirectory: %s/slapd/db\nolcDbMaxSize: 67108864\n' "$state"
    printf 'olcDbIndex: objectClass eq\nolcDbIndex: uid eq\nolcDbIndex: mail eq\n'
    printf 'olcDbIndex: mailLocalAddress eq\nolcDbIndex: hamailOwningStore eq\n'
    printf 'olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none\n'
    printf 'olcAccess: {1}to * by users read by * none\n'
  } > "$state/slapd/config.ldif"
  printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: hamail\no: hamail demo\n\n' "$suffix" \
    > "$state/slapd/base.ldif"
  printf 'dn: ou=stores,%s\nobjectClass: organizationalUnit\nou: stores\n\n' "$suffix" >> "$state/slapd/base.ldif"
  printf 'dn: ou=accounts,%s\nobjectClass: organizationalUnit\nou: accounts\n' "$suffix" >> "$state/slapd/base.ldif"
  slapadd -n0 -F "$state/slapd/slapd.d" -l "$state/slapd/config.ldif" >/dev/null 2>"$state/slapd/slapadd.log" ||
    die "slapadd (config) failed: $(cat "$state/slapd/slapadd.log")"
  slapadd -F "$state/slapd/slapd.d" -b "$suffix" -l "$state/slapd/base.ldif" >/dev/null 2>>"$state/slapd/slapadd.log" ||
    die "slapadd (base) failed: $(cat "$state/slapd/slapadd.log")"

  cat > "$state/admin.toml" <<TOML
# hamail-admin settings for the demo directory
[ldap]
uris = ["ldap://127.0.0.1:$ldap_port"]
base_dn = "$suffix"
bind_dn = "$root_dn"
bind_secret_file = "$state/secrets/ldap-admin"
TOML
}

# write_store_config STORE: the backend configuration of one store (once). Clients reach the
# stores through the proxy only; store-a keeps the demo's fixed LMTP port, every other port is
# chosen by the kernel and read back from the store's run/listeners file.
write_store_config() {
  local st="$1" lmtp=0
  # (A state directory from before the proxy took SMTP has SMTP listeners on store-a: rewritten.)
  grep -qs "names the SMTP client with XCLIENT" "$state/$st/backend.toml" && return
  mkdir -p "$state/$st"/{data,run}
  if [[ "$st" == store-a ]]; then lmtp="$lmtp_port"; fi
  cat > "$state/$st/backend.toml" <<TOML
# hamail-backend for the demo's store $st
# (SMTP reaches the stores through the proxy, which delivers over LMTP.)
[store]
name = "$st"
data_dir = "$state/$st/data"
hostname = "localhost"
runtime_dir = "$state/$st/run"

[directory]
type = "ldap"
uris = ["ldap://127.0.0.1:$ldap_port"]
base_dn = "$suffix"
bind_dn = "$root_dn"
bind_secret_file = "$state/secrets/ldap-admin"

[tls]
cert = "$state/tls/server.pem"
key = "$state/tls/server.key"

[log]
level = "info"

# The proxy logs in as its own account for the user, from 127.0.0.1.
[imap]
trusted_proxies = ["127.0.0.1"]
proxy_logins = ["hamail-proxy"]

[pop3]
trusted_proxies = ["127.0.0.1"]
proxy_logins = ["hamail-proxy"]

# The proxy names the SMTP client with XCLIENT when it passes mail on over LMTP.
[smtp]
trusted_proxies = ["127.0.0.1"]

[[listener]]
name = "lmtp"
protocol = "lmtp"
address = "127.0.0.1"
port = $lmtp
tls = "none"

[[listener]]
name = "imap"
protocol = "imap"
address = "127.0.0.1"
port = 0
tls = "starttls"
max_connections_per_ip = 5000

[[listener]]
name = "pop3"
protocol = "pop3"
address = "127.0.0.1"
port = 0
tls = "starttls"
max_connections_per_ip = 5000
TOML
}

# listener_port STORE NAME: the port the store's listener NAME is bound to.
listener_port() { awk -v n="$2" '$1 == n { print $4 }' "$state/$1/run/listeners"; }

# write_proxy_config: the proxy's configuration, rewritten at every start because the stores'
# ports change; the stores are pinned ([[backend.store]]) to what they bound.
write_proxy_config() {
  mkdir -p "$state/proxy/run"
  {
    cat <<TOML
# hamail-proxy for the demo (rewritten by demo.sh start)
[proxy]
name = "proxy-1"
hostname = "localhost"
runtime_dir = "$state/proxy/run"

[backend]
login = "hamail-proxy"
password_file = "$state/secrets/proxy-password"
tls = "starttls"
ca_file = "$state/tls/ca.pem"

[directory]
type = "ldap"
uris = ["ldap://127.0.0.1:$ldap_port"]
base_dn = "$suffix"
bind_dn = "$root_dn"
bind_secret_file = "$state/secrets/ldap-admin"

[tls]
cert = "$state/tls/server.pem"
key = "$state/tls/server.key"

[log]
level = "info"

# Mail for the demo domain goes to the owning store; there is no smarthost, so
# submission to other domains is refused.
[smtp]
local_domains = ["$domain"]

TOML
    for st in "${stores[@]}"; do
      printf '[[backend.store]]\nname = "%s"\naddress = "127.0.0.1"\nimap_port = %s\npop3_port = %s\nlmtp_port = %s\n\n' \
        "$st" "$(listener_port "$st" imap)" "$(listener_port "$st" pop3)" "$(listener_port "$st" lmtp)"
    done
    for l in "imap imap starttls $imap_port" "imaps imap implicit $imaps_port" \
             "pop3 pop3 starttls $pop3_port" "pop3s pop3 implicit $pop3s_port" \
             "smtp smtp starttls $smtp_port" "submission submission starttls $submission_port" \
             "submissions submission implicit $submissions_port"; do
      set -- $l
      printf '[[listener]]\nname = "%s"\nprotocol = "%s"\naddress = "127.0.0.1"\nport = %s\ntls = "%s"\n\n' \
        "$1" "$2" "$4" "$3"
    done
  } > "$state/proxy/proxy.toml"
}

admin() { "$admin_bin" --config "$state/admin.toml" "$@"; }

start_slapd() {
  if pid_alive "$state/slapd/slapd.pid" /usr/sbin/slapd; then
    say "slapd already running (pid $(head -1 "$state/slapd/slapd.pid"))"
    return
  fi
  port_free "$ldap_port" || die "port $ldap_port is in use (set HAMAIL_DEMO_LDAP_PORT)"
  # Without -d slapd detaches and writes its pid file (olcPidFile).
  /usr/sbin/slapd -F "$state/slapd/slapd.d" -h "ldap://127.0.0.1:$ldap_port/"
  for _ in $(seq 1 100); do
    ldapwhoami -x -H "ldap://127.0.0.1:$ldap_port" -D "$root_dn" -y "$state/secrets/ldap-admin" \
      >/dev/null 2>&1 && { say "slapd started (pid $(head -1 "$state/slapd/slapd.pid"))"; return; }
    sleep 0.1
  done
  die "slapd did not answer on port $ldap_port"
}

start_backend() {
  local st="$1" pidfile="$state/$1/run/hamail-backend.pid"
  if pid_alive "$pidfile" "$backend_bin"; then
    say "hamail-backend $st already running (pid $(head -1 "$pidfile"))"
    return
  fi
  if [[ "$st" == store-a ]]; then
    port_free "$lmtp_port" || die "port $lmtp_port is in use (see HAMAIL_DEMO_LMTP_PORT)"
  fi
  rm -f "$state/$st/run/listeners"
  setsid "$backend_bin" --config "$state/$st/backend.toml" </dev/null >>"$state/$st/backend.log" 2>&1 &
  for _ in $(seq 1 200); do
    [[ -s "$state/$st/run/listeners" ]] && { say "hamail-backend $st started (pid $(head -1 "$pidfile"))"; return; }
    sleep 0.05
  done
  die "hamail-backend $st did not start; see $state/$st/backend.log"
}

start_proxy() {
  local pidfile="$state/proxy/run/hamail-proxy.pid"
  if pid_alive "$pidfile" "$proxy_bin"; then
    say "hamail-proxy already running (pid $(head -1 "$pidfile"))"
    return
  fi
  for p in "$imap_port" "$imaps_port" "$pop3_port" "$pop3s_port" "$smtp_port" "$submission_port" \
           "$submissions_port"; do
    port_free "$p" || die "port $p is in use (see HAMAIL_DEMO_*_PORT)"
  done
  write_proxy_config
  rm -f "$state/proxy/run/listeners"
  setsid "$proxy_bin" --config "$state/proxy/proxy.toml" </dev/null >>"$state/proxy/proxy.log" 2>&1 &
  for _ in $(seq 1 200); do
    [[ -s "$state/proxy/run/listeners" ]] && { say "hamail-proxy started (pid $(head -1 "$pidfile"))"; return; }
    sleep 0.05
  done
  die "hamail-proxy did not start; see $state/proxy/proxy.log"
}

# ensure_account ID ADDRESS STORE NAME PASSWORD-FILE [hamail-admin options...]: places the
# account (once), with a random password kept in PASSWORD-FILE.
ensure_account() {
  local id="$1" address="$2" st="$3" name="$4" pwfile="$5"
  shift 5
  admin account show "$id" >/dev/null 2>&1 && return
  [[ -s "$pwfile" ]] || { openssl rand -base64 12 | tr -d '/+=\n' > "$pwfile"; chmod 600 "$pwfile"; }
  admin account add "$id" --address "$address" --store "$st" --name "$name" --password-file "$pwfile" \
    "$@" >/dev/null
}

# send_welcome ADDRESS: a welcome message to the proxy's SMTP port with STARTTLS.
send_welcome() {
  python3 - "$smtp_port" "$state/tls/ca.pem" "$domain" "$1" <<'PY'
import smtplib, ssl, sys
port, ca, domain, to = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
msg = ("From: hamail demo <postmaster@%s>\r\nTo: %s\r\nSubject: Welcome to hamail\r\n\r\n"
       "This message came in over SMTP with STARTTLS to hamail-proxy, which found the store\r\n"
       "that owns your account in the LDAP directory and passed it on over LMTP; the 250\r\n"
       "was sent only once that store had fsynced it.\r\n"
       "You are reading it through hamail-proxy too.\r\n"
       % (domain, to))
with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
    c.starttls(context=ssl.create_default_context(cafile=ca))
    c.sendmail("postmaster@" + domain, [to], msg)
PY
}

cmd_start() {
  [[ -x "$backend_bin" && -x "$admin_bin" && -x "$proxy_bin" ]] ||
    die "programs not built in $build (run: cmake/dev.sh build release)"
  [[ -f "$state/slapd/config.ldif" ]] || first_run
  for st in "${stores[@]}"; do write_store_config "$st"; done
  start_slapd
  for st in "${stores[@]}"; do
    admin store show "$st" >/dev/null 2>&1 ||
      admin store add "$st" --host localhost --address 127.0.0.1 --weight 1 >/dev/null
  done
  ensure_account demo "demo@$domain" store-a "Demo User" "$state/secrets/demo-password" \
    --alias "welcome@$domain"
  ensure_account demo2 "demo2@$domain" store-b "Second Demo User" "$state/secrets/demo2-password"
  # The proxy's own account: a cheap hash, checked by a backend at every proxied login.
  ensure_account hamail-proxy "hamail-proxy@$domain" store-a "hamail-proxy" \
    "$state/secrets/proxy-password" --scheme SSHA512
  for st in "${stores[@]}"; do start_backend "$st"; done
  start_proxy
  for pair in "store-a demo@$domain welcome-sent" "store-b demo2@$domain welcome2-sent"; do
    set -- $pair
    if [[ ! -f "$state/$3" ]]; then
      send_welcome "$2"
      touch "$state/$3"
      say "welcome message delivered to $2"
    fi
  done
  local landed landed2
  landed="$(find "$state/store-a/data/accounts" -path '*/demo/*' -type f \( -path '*/new/*' -o -path '*/cur/*' \) | sort | head -1)"
  landed2="$(find "$state/store-b/data/accounts" -path '*/demo2/*' -type f \( -path '*/new/*' -o -path '*/cur/*' \) | sort | head -1)"
  cat > "$state/endpoints.env" <<ENV
# hamail demo endpoints and credentials (KEY=VALUE; written by demo.sh start)
IMAP_HOST=127.0.0.1
IMAP_PORT=$imap_port
IMAP_TLS=starttls
IMAPS_PORT=$imaps_port
POP3_HOST=127.0.0.1
POP3_PORT=$pop3_port
POP3_TLS=starttls
POP3S_PORT=$pop3s_port
SMTP_HOST=127.0.0.1
SMTP_PORT=$smtp_port
SMTP_TLS=starttls
SUBMISSION_PORT=$submission_port
SUBMISSIONS_PORT=$submissions_port
CA_FILE=$state/tls/ca.pem
LDAP_URI=ldap://127.0.0.1:$ldap_port
LDAP_BASE_DN=$suffix
USER1=demo@$domain
PASSWORD1=$(cat "$state/secrets/demo-password")
STORE1=store-a
USER2=demo2@$domain
PASSWORD2=$(cat "$state/secrets/demo2-password")
STORE2=store-b
ENV
  chmod 600 "$state/endpoints.env"
  cat <<INFO

hamail demo is running (state in $state)
  directory   ldap://127.0.0.1:$ldap_port  base $suffix  (admin DN $root_dn, secret in $state/secrets/ldap-admin)
  proxy       IMAP 127.0.0.1:$imap_port (STARTTLS), IMAPS 127.0.0.1:$imaps_port,
              POP3 127.0.0.1:$pop3_port (STLS), POP3S 127.0.0.1:$pop3s_port,
              SMTP 127.0.0.1:$smtp_port (STARTTLS), submission 127.0.0.1:$submission_port (STARTTLS + AUTH),
              submissions 127.0.0.1:$submissions_port (TLS + AUTH); CA certificate $state/tls/ca.pem
  stores      store-a (demo@$domain), store-b (demo2@$domain); store-a's LMTP 127.0.0.1:$lmtp_port
  accounts    demo@$domain (alias welcome@$domain), password in $state/secrets/demo-password
              demo2@$domain, password in $state/secrets/demo2-password
  welcome     ${landed:-"(not found)"}
              ${landed2:-"(not found)"}
  endpoints   $state/endpoints.env (KEY=VALUE: ports, CA file, users and passwords)
  try         curl --ssl-reqd --cacert $state/tls/ca.pem -u demo@$domain:\$(cat $state/secrets/demo-password) 'imap://localhost:$imap_port/INBOX;MAILINDEX=1'
              neomutt -f imaps://demo%40$domain@localhost:$imaps_port/ -e 'set ssl_ca_certificates_file=$state/tls/ca.pem'
              (the other demo account is on the other store: the same proxy serves both)
              swaks --server 127.0.0.1:$smtp_port --to demo2@$domain --tls --tls-ca-path $state/tls/ca.pem
              swaks --server 127.0.0.1:$submission_port --tls --tls-ca-path $state/tls/ca.pem --auth PLAIN \\
                --auth-user demo@$domain --auth-password \$(cat $state/secrets/demo-password) --from demo@$domain --to demo2@$domain
              $admin_bin --config $state/admin.toml account list
  stop        cmake/dev.sh demo-stop
INFO
}

cmd_stop() {
  stop_pid "$state/proxy/run/hamail-proxy.pid" "$proxy_bin" hamail-proxy
  for st in "${stores[@]}"; do
    stop_pid "$state/$st/run/hamail-backend.pid" "$backend_bin" "hamail-backend $st"
  done
  stop_pid "$state/slapd/slapd.pid" /usr/sbin/slapd slapd
}

cmd_status() {
  local rc=0
  if pid_alive "$state/proxy/run/hamail-proxy.pid" "$proxy_bin"; then say "hamail-proxy running"; else say "hamail-proxy stopped"; rc=3; fi
  for st in "${stores[@]}"; do
    if pid_alive "$state/$st/run/hamail-backend.pid" "$backend_bin"; then say "hamail-backend $st running"; else say "hamail-backend $st stopped"; rc=3; fi
  done
  if pid_alive "$state/slapd/slapd.pid" /usr/sbin/slapd; then say "slapd running"; else say "slapd stopped"; rc=3; fi
  return $rc
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
