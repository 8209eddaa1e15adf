#!/usr/bin/env bash
# The single-machine demo stack: a real slapd with the hamail schema, one store
# (hamail-backend) on loopback, a demo account placed with hamail-admin, and a
# welcome message delivered to it over SMTP.
#
#   demo.sh start    start (or reuse) the stack; prints where to connect
#   demo.sh stop     stop exactly the processes this demo started (by their pids)
#   demo.sh status   say what is running
#
# Environment:
#   HAMAIL_DEMO_DIR    state directory (default: <repo>/demo-state); a second start reuses it
#   HAMAIL_BUILD_DIR   where the programs are (default: <repo>/build/release)
#   HAMAIL_DEMO_LDAP_PORT, _SMTP_PORT, _SUBMISSION_PORT, _LMTP_PORT
#                      loopback ports (defaults 3890, 2525, 5870, 2424)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="${HAMAIL_DEMO_DIR:-$root/demo-state}"
build="${HAMAIL_BUILD_DIR:-$root/build/release}"
backend_bin="$build/daemons/backend/hamail-backend"
admin_bin="$build/daemons/admin/hamail-admin"
ldap_port="${HAMAIL_DEMO_LDAP_PORT:-3890}"
smtp_port="${HAMAIL_DEMO_SMTP_PORT:-2525}"
submission_port="${HAMAIL_DEMO_SUBMISSION_PORT:-5870}"
lmtp_port="${HAMAIL_DEMO_LMTP_PORT:-2424}"
suffix="dc=hamail,dc=test"
root_dn="cn=admin,$suffix"
domain="hamail.test"
store="store-a"

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
  mkdir -p "$state"/{slapd/slapd.d,slapd/db,secrets,tls,"$store"/data,"$store"/run}
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
  cat > "$state/$store/backend.toml" <<TOML
# hamail-backend for the demo's one store
[store]
name = "$store"
data_dir = "$state/$store/data"
hostname = "localhost"
runtime_dir = "$state/$store/run"

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

[[listener]]
name = "smtp"
protocol = "smtp"
address = "127.0.0.1"
port = $smtp_port
tls = "starttls"

[[listener]]
name = "submission"
protocol = "submission"
address = "127.0.0.1"
port = $submission_port
tls = "starttls"

[[listener]]
name = "lmtp"
protocol = "lmtp"
address = "127.0.0.1"
port = $lmtp_port
tls = "none"
TOML
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
  local pidfile="$state/$store/run/hamail-backend.pid"
  if pid_alive "$pidfile" "$backend_bin"; then
    say "hamail-backend already running (pid $(head -1 "$pidfile"))"
    return
  fi
  for p in "$smtp_port" "$submission_port" "$lmtp_port"; do
    port_free "$p" || die "port $p is in use (see HAMAIL_DEMO_*_PORT)"
  done
  rm -f "$state/$store/run/listeners"
  setsid "$backend_bin" --config "$state/$store/backend.toml" </dev/null >>"$state/$store/backend.log" 2>&1 &
  for _ in $(seq 1 200); do
    [[ -s "$state/$store/run/listeners" ]] && { say "hamail-backend started (pid $(head -1 "$pidfile"))"; return; }
    sleep 0.05
  done
  die "hamail-backend did not start; see $state/$store/backend.log"
}

cmd_start() {
  [[ -x "$backend_bin" && -x "$admin_bin" ]] || die "programs not built in $build (run: cmake/dev.sh build release)"
  [[ -f "$state/slapd/config.ldif" ]] || first_run
  start_slapd
  admin store show "$store" >/dev/null 2>&1 ||
    admin store add "$store" --host localhost --address 127.0.0.1 --smtp-port "$smtp_port" \
      --lmtp-port "$lmtp_port" --weight 1 >/dev/null
  admin account show demo >/dev/null 2>&1 ||
    admin account add demo --address "demo@$domain" --alias "welcome@$domain" --name "Demo User" \
      --password-file "$state/secrets/demo-password" >/dev/null
  start_backend
  if [[ ! -f "$state/welcome-sent" ]]; then
    python3 - "$smtp_port" "$state/tls/ca.pem" "$domain" <<'PY'
import smtplib, ssl, sys
port, ca, domain = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = ("From: hamail demo <postmaster@%s>\r\nTo: demo@%s\r\nSubject: Welcome to hamail\r\n\r\n"
       "This message came in over SMTP with STARTTLS, was routed by the LDAP directory to\r\n"
       "the store that owns your account, and was fsynced before the 250 was sent.\r\n" % (domain, domain))
with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
    c.starttls(context=ssl.create_default_context(cafile=ca))
    c.sendmail("postmaster@" + domain, ["demo@" + domain], msg)
PY
    touch "$state/welcome-sent"
    say "welcome message delivered to demo@$domain"
  fi
  local landed
  landed="$(find "$state/$store/data/accounts" -path '*/demo/*' -type f \( -path '*/new/*' -o -path '*/cur/*' \) | sort | head -1)"
  cat <<INFO

hamail demo is running (state in $state)
  directory   ldap://127.0.0.1:$ldap_port  base $suffix  (admin DN $root_dn, secret in $state/secrets/ldap-admin)
  store       $store: SMTP 127.0.0.1:$smtp_port (STARTTLS), submission 127.0.0.1:$submission_port (STARTTLS + AUTH),
              LMTP 127.0.0.1:$lmtp_port; CA certificate $state/tls/ca.pem
  account     demo@$domain (alias welcome@$domain), password in $state/secrets/demo-password
  welcome     ${landed:-"(not found)"}
  try         swaks --server 127.0.0.1:$smtp_port --to demo@$domain --tls --tls-ca-path $state/tls/ca.pem
              $admin_bin --config $state/admin.toml account list
  stop        cmake/dev.sh demo-stop
INFO
}

cmd_stop() {
  stop_pid "$state/$store/run/hamail-backend.pid" "$backend_bin" hamail-backend
  stop_pid "$state/slapd/slapd.pid" /usr/sbin/slapd slapd
}

cmd_status() {
  local rc=0
  if pid_alive "$state/$store/run/hamail-backend.pid" "$backend_bin"; then say "hamail-backend running"; else say "hamail-backend stopped"; rc=3; fi
  if pid_alive "$state/slapd/slapd.pid" /usr/sbin/slapd; then say "slapd running"; else say "slapd stopped"; rc=3; fi
  return $rc
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
