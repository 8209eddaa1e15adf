#!/usr/bin/env python3
"""IMAP benchmark: hamail-backend against Dovecot imapd, and hamail-proxy against
Dovecot's proxy in front of them, same workloads, one run.

Peers (--only): hamail (hamail-backend), dovecot (Dovecot imapd/pop3d),
hamail-proxy (hamail-proxy in front of a hamail-backend, plain TCP between them)
and dovecot-proxy (a Dovecot instance proxying to a second Dovecot instance).

Each peer is started fresh on loopback in its own temporary directory with A
accounts whose INBOX is pre-filled with M messages (hamail: delivered over
LMTP; Dovecot: written into its Maildirs, then indexed by the warm-up), then
the C++ load generator (tests/bench/imap_bench.cpp, target imap_bench) runs:

  mixed-many   C persistent clients, client i on account i mod A: LOGIN, SELECT,
               then rounds of FETCH BODY.PEEK[HEADER] (10 msgs), FETCH BODY.PEEK[],
               STORE +/-FLAGS, SEARCH UNSEEN, SEARCH FROM x, APPEND, UID STORE
               \\Deleted + UID EXPUNGE of the appended message; commands/s
  mixed-hot    the same with every client on account 0 (one hot mailbox)
  login-1      connection per login: connect, LOGIN, LOGOUT; one client; also
               p50/p99 of connect -> LOGIN OK (the proxies' added login latency)
  login-C      the same with C clients in parallel
  idle-plain   K connections, each logged in, INBOX selected, in IDLE; server
               memory growth / K (hamail: VmRSS of its one process; Dovecot:
               VmRSS summed over the master and every child, and PSS too)
  idle-tls     the same over implicit TLS
  pop3-1       POP3 sessions on the client's own mailbox (P messages): connect,
               USER/PASS, STAT, UIDL, RETR of every message, DELE of the first
               D, QUIT; then (untimed) D messages APPENDed over IMAP so the next
               session finds P again; sessions/s and messages/s; one client
  pop3-C       the same with C clients, one session each per round, in parallel

    sudo python3 tests/bench/imap_bench.py --accounts 20 --messages 200 --duration 30 --idle 2000
    sudo python3 tests/bench/imap_bench.py --only hamail,hamail-proxy --idle 9900

Needs root for Dovecot (it drops to dovecot/dovenull/mail). Python 3 standard
library only; process helpers shared with delivery_bench.py. See tests/bench/README.md.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import platform
import pwd
import resource
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from delivery_bench import (BenchError, alive, descendants, free_port, log,  # noqa: E402
                            proc_starttime, tail, wait_gone, dovecot_version)

DOMAIN = "bench.test"
PASSWORD = "bench"
PROXY_PASSWORD = "proxy-bench-secret"
PEERS = ["hamail", "dovecot", "hamail-proxy", "dovecot-proxy"]


# --proxy-cpus: the CPUs the proxies run on, and the rest for backends and the generator (models a
# frontend tier on its own nodes); empty: everything shares every CPU.
PIN = {}


def pinned(role):
    """preexec_fn for a child of `role` ("proxy" or "rest"), or None when nothing is pinned."""
    if not PIN:
        return None
    cpus = PIN[role]
    return lambda: os.sched_setaffinity(0, cpus)


def accounts(n):
    return ["user%03d" % i for i in range(n)]


def wants_pop3(args):
    return any(w.startswith("pop3") for w in args.workloads.split(","))


def pop3_accounts(args):
    """The POP3 workloads' mailboxes: one per client (pop000 …), filled by the generator."""
    return ["pop%03d" % i for i in range(max(1, args.clients))] if wants_pop3(args) else []


def ssha512(password):
    """{SSHA512}: understood by hamail's file directory and by Dovecot's passwd-file."""
    salt = os.urandom(16)
    return "{SSHA512}" + base64.b64encode(hashlib.sha512(password.encode() + salt).digest() + salt).decode()


def message(account, i, size):
    sender = "sender%d@example.net" % (i % 20)
    head = ("From: %s\r\nTo: %s@%s\r\nSubject: pre-filled message %d\r\nMessage-ID: <pre%d.%s@bench.test>\r\n"
            "Date: Wed, 02 Dec 2026 09:00:00 +0000\r\n\r\n" % (sender, account, DOMAIN, i, i, account))
    body = "lorem ipsum dolor sit amet consectetur adipiscing elit %d\r\n" % i
    text = head + body * max(1, (size - len(head)) // len(body))
    return sender, text


def make_cert(directory):
    key, cert = os.path.join(directory, "server.key"), os.path.join(directory, "server.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    os.chmod(key, 0o644)
    return cert, key


def rss_kib(pid):
    """(VmRSS, Pss) of one process in KiB; (0, 0) when it is gone."""
    rss = pss = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def busy_sample():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def busy_between(a, b):
    total, idle = b[0] - a[0], b[1] - a[1]
    return 100.0 * (total - idle) / total if total else 0.0


class HamailPeer:
    name = "hamail"
    proxy_login = None  # HamailProxyPeer: the proxy's account, trusted by the backend

    def __init__(self, workdir, args):
        self.dir, self.args = workdir, args
        self.binary = args.hamail_backend
        self.log_path = os.path.join(workdir, "backend.log")
        self.proc = None
        self.ports = {}

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise BenchError("hamail-backend not found at %s" % self.binary)
        cert, key = make_cert(self.dir)
        acc = os.path.join(self.dir, "accounts.toml")
        self.accounts_file = acc
        with open(acc, "w") as f:
            for a in accounts(self.args.accounts) + pop3_accounts(self.args):
                f.write('[[account]]\nid = "%s"\naddress = "%s@%s"\nlogin = "%s@%s"\npassword = "%s"\n'
                        'store = "bench"\n\n' % (a, a, DOMAIN, a, DOMAIN, ssha512(PASSWORD)))
            if self.proxy_login:
                # The proxy's own account (HamailProxyPeer): a cheap hash, as docs/frontend.md advises.
                f.write('[[account]]\nid = "%s"\naddress = "%s@%s"\nlogin = "%s"\npassword = "%s"\n'
                        'store = "bench"\n\n' % (self.proxy_login, self.proxy_login, DOMAIN, self.proxy_login,
                                                   ssha512(PROXY_PASSWORD)))
        self.cert, self.key = cert, key
        conf = os.path.join(self.dir, "backend.toml")
        limit = max(1000, self.args.idle + 1000)
        with open(conf, "w") as f:
            f.write('[store]\nname = "bench"\ndata_dir = "%s/data"\nhostname = "mx.%s"\nruntime_dir = "%s/run"\n'
                    'fsync = true\n' % (self.dir, DOMAIN, self.dir))
            if self.args.blocking_threads:
                f.write('blocking_threads = %d\n' % self.args.blocking_threads)
            f.write('\n')
            f.write('[directory]\ntype = "file"\naccounts_file = "%s"\n\n' % acc)
            f.write('[tls]\ncert = "%s"\nkey = "%s"\n\n' % (cert, key))
            f.write('[log]\nlevel = "warning"\n\n')
            f.write('[limits]\nmax_connections = %d\nmax_connections_per_ip = %d\nidle_timeout = "1h"\n\n'
                    % (limit, limit))
            trust = ('trusted_proxies = ["127.0.0.1"]\nproxy_logins = ["%s"]\n' % self.proxy_login
                     if self.proxy_login else "")
            f.write('[imap]\nlogin_without_tls = true\n%s\n' % trust)
            if wants_pop3(self.args):
                f.write('[pop3]\nlogin_without_tls = true\n%s\n' % trust)
            # Password checks may queue for the hashing threads; the default (32)
            # answers NO [UNAVAILABLE] to the 33rd concurrent LOGIN. Room for every client.
            f.write('[auth]\nmax_queued_hashes = %d\n\n' % max(32, 2 * self.args.clients))
            for name, proto, tls in (("lmtp", "lmtp", "none"), ("imap", "imap", "none"),
                                     ("imaps", "imap", "implicit")) + (
                                         (("pop3", "pop3", "none"),) if wants_pop3(self.args) else ()):
                f.write('[[listener]]\nname = "%s"\nprotocol = "%s"\naddress = "127.0.0.1"\nport = 0\n'
                        'tls = "%s"\n' % (name, proto, tls))
                if self.proxy_login:
                    # Every proxied session comes from the proxy's one address.
                    f.write('max_connections = %d\nmax_connections_per_ip = %d\n' % (limit, limit))
                f.write('\n')
        self.conf = conf
        self.launch()

    def launch(self):
        """Starts the daemon on the configuration and data written by start()."""
        listeners = os.path.join(self.dir, "run", "listeners")
        if os.path.exists(listeners):
            os.unlink(listeners)
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "--config", self.conf], stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=pinned("rest"))
        logf.close()
        self.starttime = proc_starttime(self.proc.pid)[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("hamail-backend exited with %d:\n%s" % (self.proc.returncode, tail(self.log_path)))
            if os.path.exists(listeners):
                with open(listeners) as f:
                    self.ports = {line.split()[0]: int(line.split()[3]) for line in f if line.strip()}
                if {"lmtp", "imap", "imaps"} | ({"pop3"} if wants_pop3(self.args) else set()) <= set(self.ports):
                    break
            time.sleep(0.05)
        else:
            raise BenchError("hamail-backend did not start:\n" + tail(self.log_path))

    def prefill(self):
        s = smtplib.LMTP("127.0.0.1", self.ports["lmtp"])
        for a in accounts(self.args.accounts):
            for i in range(self.args.messages):
                sender, text = message(a, i, self.args.size)
                s.sendmail(sender, ["%s@%s" % (a, DOMAIN)], text.encode())
        s.quit()

    def imap_port(self, tls):
        return self.ports["imaps" if tls else "imap"]

    def pop3_port(self):
        return self.ports["pop3"]

    def memory(self):
        rss, pss = rss_kib(self.proc.pid)
        return {"rss_kib": rss, "pss_kib": pss, "processes": 1}

    def stop(self):
        if self.proc is None:
            return
        procs = [(self.proc.pid, self.starttime)]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        killed = wait_gone(procs, 1)
        self.proc.wait()
        self.proc = None
        if killed:
            raise BenchError("hamail-backend did not stop on SIGTERM; killed")

    def version(self):
        v = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout.strip()
        tree = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
                              text=True).stdout.strip()
        return "%s (%s); repository %s" % (v, self.binary, tree)


class DovecotPeer:
    name = "dovecot"
    extra_conf = ""  # DovecotProxyPeer: settings for the backend behind the proxy

    def __init__(self, workdir, args):
        self.dir, self.args = workdir, args
        self.log_path = os.path.join(workdir, "dovecot.log")
        self.mail_root = os.path.join(workdir, "mail")
        self.proc = None

    def start(self):
        if os.geteuid() != 0:
            raise BenchError("Dovecot needs root (it drops to users dovecot/dovenull/mail)")
        if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/imap"):
            raise BenchError("dovecot-imapd not installed (cmake/install-deps.sh --bench)")
        pop3 = wants_pop3(self.args)
        if pop3 and not os.path.exists("/usr/lib/dovecot/pop3"):
            raise BenchError("dovecot-pop3d not installed (cmake/install-deps.sh --bench)")
        mail = pwd.getpwnam("mail")
        self.uid, self.gid = mail.pw_uid, mail.pw_gid
        cert, key = make_cert(self.dir)
        os.makedirs(self.mail_root)
        os.chown(self.mail_root, mail.pw_uid, mail.pw_gid)
        users = os.path.join(self.dir, "users")
        with open(users, "w") as f:
            for a in accounts(self.args.accounts) + pop3_accounts(self.args):
                f.write("%s@%s:%s::::::\n" % (a, DOMAIN, ssha512(PASSWORD)))
        os.chmod(users, 0o644)
        self.plain, self.tls = free_port(), free_port()
        self.pop3 = free_port() if pop3 else None
        limit = self.args.idle + 1000
        # POP3 as configured for the IMAP service: login processes serving many
        # connections, pop3 processes reused, the per-user/IP limit raised.
        pop3_conf = """protocol pop3 {{
  mail_max_userip_connections = {limit}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = {limit3}
}}
service pop3 {{
  service_count = 0
  process_limit = {limit}
}}
""".format(limit=limit, limit3=3 * limit, port=self.pop3) if pop3 else ""
        conf = os.path.join(self.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("""# written by tests/bench/imap_bench.py: Dovecot's high-performance mode
base_dir = {d}/run
state_dir = {d}/state
instance_name = hamail-imap-bench-{pid}
log_path = {log}
info_log_path = /dev/null
protocols = {protocols}
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{mail}/%u/Maildir
mail_fsync = always
default_client_limit = {limit3}
default_process_limit = {limit}
default_vsz_limit = 1G
protocol imap {{
  mail_max_userip_connections = {limit}
}}
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {plain}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = {limit3}
}}
service imap {{
  service_count = 0
  process_limit = {limit}
}}
service anvil {{
  client_limit = {limit3}
}}
service auth {{
  client_limit = {limit3}
}}
service stats {{
  client_limit = {limit3}
}}
{pop3_conf}{extra}""".format(extra=self.extra_conf, protocols="imap pop3" if pop3 else "imap", pop3_conf=pop3_conf,
           d=self.dir, pid=os.getpid(), log=self.log_path, cert=cert, key=key, uid=mail.pw_uid, gid=mail.pw_gid, mail=self.mail_root, users=users, plain=self.plain, tls=self.tls, limit=limit,
           limit3=3 * limit))
        os.makedirs(os.path.join(self.dir, "run"))
        os.makedirs(os.path.join(self.dir, "state"))
        self.conf = conf
        self.launch()

    def launch(self):
        """Starts the master on the configuration and Maildirs written by start()."""
        out = open(os.path.join(self.dir, "dovecot.stderr"), "ab")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=pinned("rest"))
        out.close()
        self.starttime = proc_starttime(self.proc.pid)[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("dovecot exited:\n%s\n%s" % (tail(os.path.join(self.dir, "dovecot.stderr")),
                                                              tail(self.log_path)))
            try:
                with socket.create_connection(("127.0.0.1", self.plain), timeout=5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError("dovecot did not answer:\n" + tail(self.log_path))

    def prefill(self):
        """Writes the messages straight into each Maildir's cur/ (Dovecot's own
        format); the warm-up's SELECTs build the indexes."""
        n = 0
        for a in accounts(self.args.accounts):
            md = os.path.join(self.mail_root, "%s@%s" % (a, DOMAIN), "Maildir")
            for sub in ("", "/cur", "/new", "/tmp"):
                os.makedirs(md + sub, exist_ok=True)
            for i in range(self.args.messages):
                _, text = message(a, i, self.args.size)
                n += 1
                path = os.path.join(md, "cur", "%d.M%dP%d.bench,S=%d:2," % (1700000000 + n, n, os.getpid(),
                                                                            len(text.encode())))
                with open(path, "wb") as f:
                    f.write(text.encode())
        for root, dirs, files in os.walk(self.mail_root):
            for p in [root] + [os.path.join(root, x) for x in files]:
                os.chown(p, self.uid, self.gid)
        subprocess.run(["sync"])

    def imap_port(self, tls):
        return self.tls if tls else self.plain

    def pop3_port(self):
        return self.pop3

    def memory(self):
        pids = [self.proc.pid] + [p for p, _ in descendants(self.proc.pid)]
        rss = pss = 0
        for p in pids:
            r, s = rss_kib(p)
            rss, pss = rss + r, pss + s
        return {"rss_kib": rss, "pss_kib": pss, "processes": len(pids)}

    def stop(self):
        if self.proc is None:
            return
        procs = [(self.proc.pid, self.starttime)] + descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        killed = wait_gone(procs, 20)
        self.proc.wait()
        self.proc = None
        if killed:
            raise BenchError("dovecot processes %s did not stop on SIGTERM; killed by pid" % killed)

    def version(self):
        return "Dovecot " + dovecot_version()


class HamailProxyPeer(HamailPeer):
    """hamail-proxy in front of the HamailPeer backend: the backend trusts the proxy's
    address and account (docs/frontend.md), the proxy reads the same accounts file
    (`[directory] type = "file"`) and has the backend pinned as store "bench", plain
    TCP to it. The generator talks to the proxy's listeners; pre-fill goes to the
    backend's LMTP; memory() is the proxy's process (the backend's beside it)."""
    name = "hamail-proxy"
    proxy_login = "proxy"

    def __init__(self, workdir, args):
        super().__init__(workdir, args)
        self.proxy_binary = args.hamail_proxy
        self.proxy_log = os.path.join(workdir, "proxy.log")
        self.pproc = None
        self.pports = {}

    def start(self):
        if not os.access(self.proxy_binary, os.X_OK):
            raise BenchError("hamail-proxy not found at %s" % self.proxy_binary)
        super().start()  # writes the backend's files and launches backend and proxy

    def write_proxy_config(self):
        secret = os.path.join(self.dir, "proxy.secret")
        with open(secret, "w") as f:
            f.write(PROXY_PASSWORD + "\n")
        os.chmod(secret, 0o600)
        limit = max(1000, self.args.idle + 1000)
        conf = os.path.join(self.dir, "proxy.toml")
        with open(conf, "w") as f:
            f.write('[proxy]\nname = "bench-proxy"\nhostname = "proxy.%s"\nruntime_dir = "%s/proxy-run"\n\n'
                    % (DOMAIN, self.dir))
            f.write('[backend]\nlogin = "%s"\npassword_file = "%s"\ntls = "none"\n\n' % (self.proxy_login, secret))
            f.write('[[backend.store]]\nname = "bench"\naddress = "127.0.0.1"\nimap_port = %d\npop3_port = %d\n'
                    'lmtp_port = %d\n\n' % (self.ports["imap"], self.ports.get("pop3", 110), self.ports["lmtp"]))
            f.write('[directory]\ntype = "file"\naccounts_file = "%s"\n\n' % self.accounts_file)
            f.write('[tls]\ncert = "%s"\nkey = "%s"\n\n' % (self.cert, self.key))
            f.write('[log]\nlevel = "warning"\n\n')
            f.write('[limits]\nmax_connections = %d\nmax_connections_per_ip = %d\n\n' % (limit, limit))
            f.write('[imap]\nlogin_without_tls = true\n\n[pop3]\nlogin_without_tls = true\n\n')
            f.write('[auth]\nmax_queued_hashes = %d\n\n' % max(32, 2 * self.args.clients))
            for name, proto, tls in (("imap", "imap", "none"), ("imaps", "imap", "implicit")) + (
                    (("pop3", "pop3", "none"),) if wants_pop3(self.args) else ()):
                f.write('[[listener]]\nname = "%s"\nprotocol = "%s"\naddress = "127.0.0.1"\nport = 0\n'
                        'tls = "%s"\n\n' % (name, proto, tls))
        self.proxy_conf = conf

    def launch(self):
        super().launch()
        self.write_proxy_config()  # the backend's ports change at every launch
        listeners = os.path.join(self.dir, "proxy-run", "listeners")
        if os.path.exists(listeners):
            os.unlink(listeners)
        logf = open(self.proxy_log, "ab")
        self.pproc = subprocess.Popen([self.proxy_binary, "--config", self.proxy_conf], stdout=logf, stderr=logf,
                                      stdin=subprocess.DEVNULL, start_new_session=True,
                                      preexec_fn=pinned("proxy"))
        logf.close()
        self.pstarttime = proc_starttime(self.pproc.pid)[1]
        want = {"imap", "imaps"} | ({"pop3"} if wants_pop3(self.args) else set())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.pproc.poll() is not None:
                raise BenchError("hamail-proxy exited with %d:\n%s" % (self.pproc.returncode, tail(self.proxy_log)))
            if os.path.exists(listeners):
                with open(listeners) as f:
                    self.pports = {line.split()[0]: int(line.split()[3]) for line in f if line.strip()}
                if want <= set(self.pports):
                    return
            time.sleep(0.05)
        raise BenchError("hamail-proxy did not start:\n" + tail(self.proxy_log))

    def imap_port(self, tls):
        return self.pports["imaps" if tls else "imap"]

    def pop3_port(self):
        return self.pports["pop3"]

    def memory(self):
        rss, pss = rss_kib(self.pproc.pid)
        return {"rss_kib": rss, "pss_kib": pss, "processes": 1, "backend": super().memory()}

    def stop(self):
        err = None
        if self.pproc is not None:
            if self.pproc.poll() is None:
                self.pproc.send_signal(signal.SIGTERM)
                try:
                    self.pproc.wait(60)
                except subprocess.TimeoutExpired:
                    pass
            killed = wait_gone([(self.pproc.pid, self.pstarttime)], 1)
            self.pproc.wait()
            self.pproc = None
            if killed:
                err = "hamail-proxy did not stop on SIGTERM; killed"
        super().stop()
        if err:
            raise BenchError(err)

    def version(self):
        v = subprocess.run([self.proxy_binary, "--version"], capture_output=True, text=True).stdout.strip()
        return "%s (%s) in front of %s" % (v, self.proxy_binary, super().version())


class DovecotProxyPeer(DovecotPeer):
    """A second Dovecot instance as IMAP/POP3 proxy in front of the DovecotPeer
    backend. The proxy checks the password itself (passwd-file, the same {SSHA512}
    hashes) and, with `proxy=y host=127.0.0.1 port=<backend>`, logs in to the
    backend forwarding the client's password, which the backend checks again: two
    hash checks per login, as with hamail-proxy (the user's, then the proxy
    account's). Login processes in high-performance mode (`service_count = 0`,
    `process_min_avail = 2`) carry the proxied sessions. The backend gets
    `login_trusted_networks = 127.0.0.1` (the ID/XCLIENT forwarding the docs
    recommend). memory() sums the proxy instance's processes (the backend's beside it)."""
    name = "dovecot-proxy"
    extra_conf = "login_trusted_networks = 127.0.0.1\n"

    def start(self):
        super().start()  # the backend instance, its Maildirs and ports
        pop3 = wants_pop3(self.args)
        pd = os.path.join(self.dir, "proxy")
        for sub in ("", "/run", "/state"):
            os.makedirs(pd + sub, exist_ok=True)
        self.proxy_log = os.path.join(pd, "dovecot.log")
        users = os.path.join(pd, "users")
        with open(users, "w") as f:
            for a in accounts(self.args.accounts) + pop3_accounts(self.args):
                f.write("%s@%s:%s::::::\n" % (a, DOMAIN, ssha512(PASSWORD)))
        os.chmod(users, 0o644)
        self.pplain, self.ptls = free_port(), free_port()
        self.ppop3 = free_port() if pop3 else None
        limit = self.args.idle + 1000
        # Backend port by protocol (%s: the service, imap or pop3).
        port = "%%{if;%%s;eq;pop3;%d;%d}" % (self.pop3 or 0, self.plain)
        pop3_conf = """service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = {limit3}
}}
""".format(port=self.ppop3, limit3=3 * limit) if pop3 else ""
        conf = os.path.join(pd, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("""# written by tests/bench/imap_bench.py: Dovecot as IMAP/POP3 proxy
base_dir = {d}/run
state_dir = {d}/state
instance_name = hamail-imap-bench-proxy-{pid}
log_path = {log}
info_log_path = /dev/null
protocols = {protocols}
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
default_client_limit = {limit3}
default_process_limit = {limit}
default_vsz_limit = 1G
passdb {{
  driver = passwd-file
  args = {users}
  default_fields = proxy=y host=127.0.0.1 port={port}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {plain}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = {limit3}
}}
service anvil {{
  client_limit = {limit3}
}}
service auth {{
  client_limit = {limit3}
}}
service stats {{
  client_limit = {limit3}
}}
{pop3_conf}""".format(d=pd, pid=os.getpid(), log=self.proxy_log, protocols="imap pop3" if pop3 else "imap",
                       cert=os.path.join(self.dir, "server.pem"), key=os.path.join(self.dir, "server.key"),
                       limit=limit, limit3=3 * limit, users=users, port=port, plain=self.pplain, tls=self.ptls,
                       pop3_conf=pop3_conf))
        self.proxy_conf = conf
        self.proxy_dir = pd
        self.launch_proxy()

    def launch(self):
        super().launch()
        if getattr(self, "proxy_conf", None):
            self.launch_proxy()

    def launch_proxy(self):
        out = open(os.path.join(self.proxy_dir, "dovecot.stderr"), "ab")
        self.pproc = subprocess.Popen(["dovecot", "-F", "-c", self.proxy_conf], stdout=out, stderr=out,
                                      stdin=subprocess.DEVNULL, start_new_session=True,
                                      preexec_fn=pinned("proxy"))
        out.close()
        self.pstarttime = proc_starttime(self.pproc.pid)[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.pproc.poll() is not None:
                raise BenchError("dovecot proxy exited:\n%s\n%s" % (
                    tail(os.path.join(self.proxy_dir, "dovecot.stderr")), tail(self.proxy_log)))
            try:
                with socket.create_connection(("127.0.0.1", self.pplain), timeout=5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError("dovecot proxy did not answer:\n" + tail(self.proxy_log))

    def imap_port(self, tls):
        return self.ptls if tls else self.pplain

    def pop3_port(self):
        return self.ppop3

    def memory(self):
        backend = super().memory()
        pids = [self.pproc.pid] + [p for p, _ in descendants(self.pproc.pid)]
        rss = pss = 0
        for p in pids:
            r, s = rss_kib(p)
            rss, pss = rss + r, pss + s
        return {"rss_kib": rss, "pss_kib": pss, "processes": len(pids), "backend": backend}

    def stop(self):
        err = None
        if getattr(self, "pproc", None) is not None:
            procs = [(self.pproc.pid, self.pstarttime)] + descendants(self.pproc.pid)
            if self.pproc.poll() is None:
                self.pproc.send_signal(signal.SIGTERM)
                try:
                    self.pproc.wait(60)
                except subprocess.TimeoutExpired:
                    pass
            killed = wait_gone(procs, 20)
            self.pproc.wait()
            self.pproc = None
            if killed:
                err = "dovecot proxy processes %s did not stop on SIGTERM; killed by pid" % killed
        super().stop()
        if err:
            raise BenchError(err)

    def version(self):
        return "Dovecot %s as proxy in front of Dovecot %s" % ((dovecot_version(),) * 2)


PEER_CLASSES = {"hamail": HamailPeer, "dovecot": DovecotPeer, "hamail-proxy": HamailProxyPeer,
                "dovecot-proxy": DovecotProxyPeer}


def generator(args, peer, workload, *extra, tls=False, stdin=None):
    cmd = [args.imap_bench, workload, "--port", str(peer.imap_port(tls)), "--accounts", str(args.accounts),
           "--messages", str(args.messages), "--size", str(args.size), "--password", PASSWORD,
           "--domain", DOMAIN] + [str(x) for x in extra] + (["--tls"] if tls else [])
    return cmd


def run_timed(args, peer, workload, *extra):
    cmd = generator(args, peer, workload, *extra)
    b0 = busy_sample()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration * 4 + 120,
                       preexec_fn=pinned("rest"))
    busy = busy_between(b0, busy_sample())
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError("imap_bench %s failed (%d): %s %s" % (workload, p.returncode, p.stdout, p.stderr))
    out["busy_pct"] = busy
    out["valid"] = out["failures"] == 0 and out["client_errors"] == 0
    return out


def run_pop3(args, peer, clients):
    """The POP3 workload with `clients` clients on mailboxes pop000 …; the
    generator tops them up over IMAP APPEND first (untimed)."""
    cmd = [args.imap_bench, "pop3", "--port", str(peer.imap_port(False)), "--pop3-port", str(peer.pop3_port()),
           "--clients", str(clients), "--accounts", str(max(1, args.clients)), "--user-prefix", "pop",
           "--messages", str(args.pop3_messages), "--size", str(args.size), "--dele", str(args.pop3_dele),
           "--duration", str(args.duration), "--password", PASSWORD, "--domain", DOMAIN]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration * 10 + 300,
                       preexec_fn=pinned("rest"))
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError("imap_bench pop3 failed (%d): %s %s" % (p.returncode, p.stdout, p.stderr))
    out["valid"] = out["failures"] == 0 and out["client_errors"] == 0 and out["sessions"] > 0
    return out


def idle_count(args, name):
    """Connections of the idle workloads for a peer: --dovecot-idle for the Dovecot
    peers (one imap process per connection), --idle otherwise."""
    return args.dovecot_idle if name.startswith("dovecot") and args.dovecot_idle else args.idle


def run_idle(args, peer, tls):
    k_wanted = idle_count(args, peer.name)
    subprocess.run(["sync"])
    time.sleep(1)
    before = peer.memory()
    p = subprocess.Popen(generator(args, peer, "idle", "--connections", k_wanted, "--clients", 16, tls=tls),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=pinned("rest"))
    line = p.stdout.readline()
    try:
        out = json.loads(line)
    except ValueError:
        p.kill()
        raise BenchError("imap_bench idle failed: %s %s" % (line, p.stderr.read()))
    time.sleep(2)
    after = peer.memory()
    p.stdin.write("\n")
    p.stdin.flush()
    rest, err = p.communicate(timeout=600)
    k = max(1, out["ready"])
    out.update({"before": before, "after": after,
                "rss_per_conn_kib": (after["rss_kib"] - before["rss_kib"]) / k,
                "pss_per_conn_kib": (after["pss_kib"] - before["pss_kib"]) / k,
                "valid": out["ready"] == k_wanted and not out["error"] and p.returncode == 0,
                "close": rest.strip()})
    return out


def run_peer(name, args, root):
    workdir = tempfile.mkdtemp(prefix="imap-bench-%s-" % name, dir=root)
    os.chmod(workdir, 0o755)
    peer = PEER_CLASSES[name](workdir, args)
    res = {"version": None}
    try:
        log("%s: starting in %s" % (name, workdir))
        peer.start()
        res["version"] = peer.version()
        t0 = time.monotonic()
        peer.prefill()
        log("%s: pre-filled %d x %d messages in %.1f s" % (name, args.accounts, args.messages, time.monotonic() - t0))
        log("%s: warm-up %d s" % (name, args.warmup))
        res["warmup"] = run_timed(args, peer, "mixed", "--clients", args.clients, "--duration", args.warmup)
        wanted = args.workloads.split(",")
        for key, workload, extra in (
                ("mixed-many", "mixed", ["--clients", args.clients]),
                ("mixed-hot", "mixed", ["--clients", args.clients, "--hot"]),
                ("login-1", "login", ["--clients", 1]),
                ("login-C", "login", ["--clients", args.clients])):
            if key not in wanted:
                continue
            key = key.replace("-C", "-%d" % args.clients)
            subprocess.run(["sync"])
            log("%s: %s for %d s" % (name, key, args.duration))
            res[key] = run_timed(args, peer, workload, "--duration", args.duration, *extra)
            log("%s: %s: %.0f commands/s, %.0f ops/s, %s" % (name, key, res[key]["commands_per_s"],
                                                            res[key]["operations_per_s"],
                                                            "ok" if res[key]["valid"] else
                                                            "INVALID: " + res[key]["first_error"]))
        for key, clients in (("pop3-1", 1), ("pop3-C", args.clients)):
            if key not in wanted:
                continue
            key = key.replace("-C", "-%d" % args.clients)
            subprocess.run(["sync"])
            log("%s: %s for %d s of sessions" % (name, key, args.duration))
            res[key] = run_pop3(args, peer, clients)
            r = res[key]
            log("%s: %s: %.1f sessions/s, %.1f messages/s, %d rounds, %.0f s wall, %s" % (
                name, key, r["sessions_per_s"], r["messages_per_s"], r["rounds"], r["wall_seconds"],
                "ok" if r["valid"] else "INVALID: " + r["first_error"]))
        for tls in (False, True):
            key = "idle-tls" if tls else "idle-plain"
            if key not in wanted:
                continue
            # A fresh start, so no connection finds processes or memory an
            # earlier workload left behind (Dovecot keeps idle imap processes).
            peer.stop()
            peer.launch()
            log("%s: %s, %d connections" % (name, key, idle_count(args, name)))
            res[key] = run_idle(args, peer, tls)
            log("%s: %s: %.1f KiB RSS per connection (%d ready in %.1f s)" % (
                name, key, res[key]["rss_per_conn_kib"], res[key]["ready"], res[key]["seconds_to_open"]))
    except BenchError as e:
        res["error"] = str(e)
        log("%s: ERROR %s" % (name, e))
    finally:
        try:
            peer.stop()
        except BenchError as e:
            res["stop_error"] = str(e)
            log("%s: %s" % (name, e))
        if args.keep:
            log("%s: kept %s" % (name, workdir))
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return res


def fs_of(path):
    """Filesystem type and device of the mount holding path."""
    best = ("?", "?", "")
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if os.path.realpath(path).startswith(mnt) and len(mnt) >= len(best[2]):
                best = (fstype, dev, mnt)
    return "%s on %s" % (best[0], best[1])


SHORT = {"hamail": "h", "dovecot": "d", "hamail-proxy": "hp", "dovecot-proxy": "dp"}
# Ratio columns: (numerator, denominator) peers; for memory the inverse (lower is better).
RATIOS = (("hamail", "dovecot"), ("hamail-proxy", "hamail"), ("hamail-proxy", "dovecot-proxy"))


def report(args, results):
    names = [n for n in PEERS if n in results]
    lines = []
    p = lines.append
    p("")
    p("IMAP benchmark, %s UTC, %s, %d cores (shared with whatever else runs)" % (
        datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), platform.node(), os.cpu_count()))
    p("command: %s" % " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]))
    p("load average at start %s; data under %s (%s)" % (args.load_at_start, args.tmpdir, fs_of(args.tmpdir)))
    if PIN:
        p("pinned: proxies on CPU %s; backends and the generator on CPU %s (every peer)" % (
            ",".join(map(str, sorted(PIN["proxy"]))), ",".join(map(str, sorted(PIN["rest"])))))
    p("accounts %d x %d messages of %d octets; %d clients; %d s per workload; idle connections: %s" % (
        args.accounts, args.messages, args.size, args.clients, args.duration,
        ", ".join("%s %d" % (n, idle_count(args, n)) for n in names)))
    for name in names:
        p("%-13s %s" % (name, results[name].get("version")))
    p("")
    ratios = [(a, b) for a, b in RATIOS if a in results and b in results]
    p("%-12s %-16s %s %s   %s" % (
        "workload", "figure", " ".join("%13s" % n for n in names),
        " ".join("%7s" % ("%s/%s" % (SHORT[a], SHORT[b])) for a, b in ratios),
        "gen cpu %% of machine (%s), busy %%" % "/".join(SHORT[n] for n in names)))

    def val(r, key, field):
        x = r.get(key)
        if not x:
            return None
        return x.get(field) if x.get("valid") else "INVALID"

    def fmt(v, kind):
        if isinstance(v, float):
            return ("%13.3f" if kind == "latency" else "%13.1f") % v
        return "%13s" % (v or "-")

    login_c = "login-%d" % args.clients
    for key, field, label, kind in (
            ("mixed-many", "commands_per_s", "commands/s", "rate"),
            ("mixed-hot", "commands_per_s", "commands/s", "rate"),
            ("login-1", "operations_per_s", "logins/s", "rate"),
            ("login-1", "p50_ms", "login p50 ms", "latency"),
            ("login-1", "p99_ms", "login p99 ms", "latency"),
            (login_c, "operations_per_s", "logins/s", "rate"),
            (login_c, "p50_ms", "login p50 ms", "latency"),
            (login_c, "p99_ms", "login p99 ms", "latency"),
            ("pop3-1", "sessions_per_s", "POP3 sessions/s", "rate"),
            ("pop3-1", "messages_per_s", "POP3 RETRs/s", "rate"),
            ("pop3-%d" % args.clients, "sessions_per_s", "POP3 sessions/s", "rate"),
            ("pop3-%d" % args.clients, "messages_per_s", "POP3 RETRs/s", "rate"),
            ("idle-plain", "rss_per_conn_kib", "KiB RSS/conn", "memory"),
            ("idle-plain", "pss_per_conn_kib", "KiB PSS/conn", "memory"),
            ("idle-tls", "rss_per_conn_kib", "KiB RSS/conn", "memory"),
            ("idle-tls", "pss_per_conn_kib", "KiB PSS/conn", "memory")):
        vals = {n: val(results[n], key, field) for n in names}
        if all(v is None for v in vals.values()):
            continue
        cols = []
        for a, b in ratios:
            x, y = vals[a], vals[b]
            ok = isinstance(x, float) and isinstance(y, float) and x and y
            # Memory: only the proxies' own processes are comparable with each other.
            if kind == "memory" and ("proxy" in a) != ("proxy" in b):
                ok = False
            cols.append("%7.2f" % (x / y if kind == "rate" else y / x) if ok and kind != "latency" else "%7s" % "-")
        cpu = ""
        if kind == "rate" and field != "messages_per_s":
            cpu = "%s, %s" % tuple("/".join(("%.0f" % results[n][key][f]) if results[n].get(key) else "-"
                                            for n in names) for f in ("cpu_pct_of_machine", "busy_pct"))
        p("%-12s %-16s %s %s   %s" % (key, label, " ".join(fmt(vals[n], kind) for n in names), " ".join(cols), cpu))
    p("")
    p("ratios: rates a/b, memory b/a (> 1: the first better); memory of a proxy peer is its proxy's "
      "processes only, so only proxy/proxy memory ratios are shown")
    for name in ("hamail-proxy", "dovecot-proxy"):
        r = results.get(name, {})
        for key in ("idle-plain", "idle-tls"):
            if r.get(key) and r[key].get("valid"):
                be, af = r[key]["before"]["backend"], r[key]["after"]["backend"]
                k = max(1, r[key]["ready"])
                p("%s %s: behind the proxy the backend grew %.1f KiB RSS (%.1f PSS) per connection "
                  "(%d backend processes)" % (name, key, (af["rss_kib"] - be["rss_kib"]) / k,
                                              (af["pss_kib"] - be["pss_kib"]) / k, af["processes"]))
    # The targets.
    p("")

    def rate(name, key, field):
        v = val(results.get(name, {}), key, field)
        return v if isinstance(v, float) else None

    def verdict(ok):
        return "met" if ok else "MISSED"

    hp, hd = "hamail-proxy", "hamail"
    for key, field in (("mixed-many", "commands_per_s"), ("mixed-hot", "commands_per_s"),
                       ("login-1", "operations_per_s"), (login_c, "operations_per_s"),
                       ("pop3-1", "sessions_per_s"), ("pop3-%d" % args.clients, "sessions_per_s")):
        x, y, z = rate(hp, key, field), rate(hd, key, field), rate("dovecot-proxy", key, field)
        if x and y:
            p("target %-10s hamail-proxy/hamail        >= 0.9: %5.2f  %s" % (key, x / y, verdict(x / y >= 0.9)))
        if x and z:
            p("target %-10s hamail-proxy/dovecot-proxy >= 1.2: %5.2f  %s" % (key, x / z, verdict(x / z >= 1.2)))
    for key in ("login-1", login_c):
        for proxy, direct in ((hp, hd), ("dovecot-proxy", "dovecot")):
            a50, d50 = rate(proxy, key, "p50_ms"), rate(direct, key, "p50_ms")
            a99, d99 = rate(proxy, key, "p99_ms"), rate(direct, key, "p99_ms")
            if a50 is not None and d50 is not None:
                line = "%s %s: added login latency p50 = proxy p50 - direct p50 = %.3f - %.3f = %.3f ms" % (
                    proxy, key, a50, d50, a50 - d50)
                if a99 is not None and d99 is not None:
                    line += "; p99 %.3f - %.3f = %.3f ms" % (a99, d99, a99 - d99)
                if proxy == hp and key == "login-1":
                    line += "  (target p50 <= 1 ms: %s)" % verdict(a50 - d50 <= 1.0)
                p(line)
    for key, limit in (("idle-plain", 32), ("idle-tls", None)):
        v = rate(hp, key, "rss_per_conn_kib")
        if v is not None:
            p("hamail-proxy %s: %.1f KiB RSS per idle proxied connection at %d connections%s" % (
                key, v, results[hp][key]["ready"],
                "  (target <= %d KiB at 10,000: %s)" % (limit, verdict(v <= limit)) if limit else ""))
    for key in ("pop3-1", "pop3-%d" % args.clients):
        runs = [(n, results[n][key]) for n in names if results[n].get(key)]
        if runs:
            p("%s: %d messages of %d octets per mailbox, %d DELEs per session; per session messages/octets "
              "(min, max): %s; rounds %s; wall s %s" % (
                  key, args.pop3_messages, args.size, args.pop3_dele,
                  " / ".join("%s %s %s" % (n, r["session_messages"], r["session_octets"]) for n, r in runs),
                  " / ".join(str(r["rounds"]) for _, r in runs),
                  " / ".join("%.0f" % r["wall_seconds"] for _, r in runs)))
    for m in args.mismatches:
        p("MISMATCH %s" % m)
    for name in names:
        for key, r in results.get(name, {}).items():
            if isinstance(r, dict) and not r.get("valid", True):
                p("INVALID %s %s: %s" % (name, key, r.get("first_error") or r.get("error") or r))
        if results.get(name, {}).get("error"):
            p("ERROR %s: %s" % (name, results[name]["error"]))
        if results.get(name, {}).get("stop_error"):
            p("STOP %s: %s" % (name, results[name]["stop_error"]))
    print("\n".join(lines), flush=True)


def pop3_mismatches(args, results):
    """The POP3 sanity check across peers: every session of both servers must
    have seen the same number of messages and octets (the generator already
    checks each session against --pop3-messages x --size)."""
    out = []
    for key in ("pop3-1", "pop3-%d" % args.clients):
        runs = [(n, results[n][key]) for n in PEERS if results.get(n, {}).get(key)]
        shapes = {(tuple(r["session_messages"]), tuple(r["session_octets"])) for _, r in runs if r["sessions"]}
        if len(shapes) > 1 or any(a[0] != a[1] for s in shapes for a in s):
            out.append("%s: per-session messages/octets differ: %s" % (key, ", ".join(
                "%s %s %s" % (n, r["session_messages"], r["session_octets"]) for n, r in runs)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--messages", type=int, default=200, help="pre-filled messages per INBOX")
    ap.add_argument("--size", type=int, default=4096, help="octets per message")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=int, default=30, help="seconds per measured workload")
    ap.add_argument("--warmup", type=int, default=5, help="seconds of mixed workload before measuring")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections for the memory workloads")
    ap.add_argument("--dovecot-idle", type=int, default=0,
                    help="idle connections for the Dovecot peers (default: --idle)")
    ap.add_argument("--only", default=",".join(PEERS), help="comma separated peers: " + ", ".join(PEERS))
    ap.add_argument("--workloads", default="mixed-many,mixed-hot,login-1,login-C,pop3-1,pop3-C,idle-plain,idle-tls",
                    help="comma separated subset (login-C, pop3-C: the parallel workloads)")
    ap.add_argument("--pop3-messages", type=int, default=30, help="messages per POP3 mailbox")
    ap.add_argument("--pop3-dele", type=int, default=2, help="DELEs per POP3 session (refilled afterwards)")
    ap.add_argument("--hamail-backend", default=os.environ.get(
        "HAMAIL_BACKEND", os.path.join(REPO, "build/release/daemons/backend/hamail-backend")))
    ap.add_argument("--hamail-proxy", default=os.environ.get(
        "HAMAIL_PROXY", os.path.join(REPO, "build/release/daemons/proxy/hamail-proxy")))
    ap.add_argument("--imap-bench", default=os.environ.get(
        "IMAP_BENCH", os.path.join(REPO, "build/release/tests/bench/imap_bench")))
    ap.add_argument("--tmpdir", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--blocking-threads", type=int, default=0,
                    help="hamail [store] blocking_threads (default: the daemon's default)")
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--proxy-cpus", default="",
                    help="comma separated CPUs for the proxies (hamail-proxy, Dovecot's proxy); the "
                         "backends and the generator get the other CPUs, in every peer's run")
    args = ap.parse_args()
    if args.proxy_cpus:
        proxy = {int(x) for x in args.proxy_cpus.split(",")}
        rest = os.sched_getaffinity(0) - proxy
        if not rest or not proxy <= os.sched_getaffinity(0):
            raise SystemExit("--proxy-cpus %s: leave at least one of CPUs %s to the rest"
                             % (args.proxy_cpus, sorted(os.sched_getaffinity(0))))
        PIN.update(proxy=proxy, rest=rest)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # A proxied connection holds two descriptors in the proxy and one each in the backend and the
    # generator: 10,000 of them need more than a typical hard limit of 20,000. Root with
    # CAP_SYS_RESOURCE may raise it (up to fs.nr_open); everyone else keeps the hard limit.
    want = max(hard, 4 * args.idle + 10000)
    if os.geteuid() == 0 and want > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            hard = want
        except (ValueError, OSError) as e:
            log("cannot raise the descriptor limit to %d: %s" % (want, e))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers and the generator
    only = args.only.split(",")
    unknown = [x for x in only if x not in PEERS]
    if unknown:
        raise SystemExit("--only: unknown peers %s (known: %s)" % (",".join(unknown), ",".join(PEERS)))
    if "idle-plain" in args.workloads or "idle-tls" in args.workloads:
        for name in only:
            # A proxy holds two descriptors per session (client and backend).
            need = idle_count(args, name) * (2 if name == "hamail-proxy" else 1) + 200
            if need > hard:
                raise SystemExit("%s: --idle %d needs %d descriptors in one process, more than the hard "
                                 "RLIMIT_NOFILE (%d) allows" % (name, idle_count(args, name), need, hard))
    if not os.access(args.imap_bench, os.X_OK):
        raise SystemExit("imap_bench not found at %s (cmake --build --preset release --target imap_bench)"
                         % args.imap_bench)
    args.load_at_start = " ".join("%.2f" % x for x in os.getloadavg())
    results = {}
    for name in [x for x in PEERS if x in only]:
        results[name] = run_peer(name, args, args.tmpdir)
    args.mismatches = pop3_mismatches(args, results)
    report(args, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    ok = not args.mismatches and all(not r.get("error") and all(v.get("valid", True) for v in r.values() if isinstance(v, dict))
             for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
