#!/usr/bin/env python3
"""Delivery benchmark: hamail-backend against Dovecot LMTP and Postfix -> Dovecot.

Drives N parallel SMTP or LMTP connections delivering M messages of a given
size into each peer, one peer after another, each started fresh on loopback in
its own temporary directory, and prints messages/s, p50/p99 latency (from
sending the end-of-data dot to reading the 250) and the ratios between peers.

    python3 tests/bench/delivery_bench.py --connections 16 --messages 20000 --size 4096

Peers (choose with --only, comma separated; groups hamail, dovecot, postfix):
  hamail-lmtp      hamail-backend, LMTP listener, fsync on
  hamail-smtp      hamail-backend, SMTP listener, fsync on
  dovecot-lmtp     Dovecot LMTP alone, Maildir, mail_fsync = always
  postfix-dovecot  Postfix smtpd -> queue -> lmtp client -> Dovecot LMTP
  hamail-lmtp-nofsync  (opt-in calibration only) hamail with fsync = false:
                   shows what the load generator can drive; never a result

Every message is checked afterwards: exactly the number sent must be in the
Maildirs (new/ + cur/), per account, or the run is reported INVALID.

Python 3 standard library only. Needs root for Dovecot and Postfix (they drop
privileges to the users their Debian packages create). See tests/bench/README.md.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

DOMAIN = "bench.test"
SENDER = "bench@client.test"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

ALL_PEERS = ["hamail-lmtp", "dovecot-lmtp", "hamail-smtp", "postfix-dovecot"]
GROUPS = {
    "hamail": ["hamail-lmtp", "hamail-smtp"],
    "dovecot": ["dovecot-lmtp"],
    "postfix": ["postfix-dovecot"],
    "all": ALL_PEERS,
}
CALIBRATION = ["hamail-lmtp-nofsync"]


class BenchError(Exception):
    pass


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# processes: started by us, stopped by pid, checked gone


def proc_starttime(pid):
    """(state, starttime) of a pid from /proc, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[19])


def alive(pid, starttime=None):
    st = proc_starttime(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return starttime is None or st[1] == starttime


def descendants(root):
    """Every live process under pid `root` (by parent links), as (pid, starttime)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(")") + 2:].split()
        children.setdefault(int(rest[1]), []).append((int(entry), int(rest[19])))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def cpu_ticks(pids):
    """{pid: (starttime, utime+stime+cutime+cstime in clock ticks)} for live pids."""
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(")") + 2:].split()
        out[pid] = (int(rest[19]), sum(int(x) for x in rest[11:15]))
    return out


def cpu_seconds_between(before, after):
    """CPU seconds the processes used between two cpu_ticks() samples (a
    process that appeared in between counts from zero; one that ended and was
    not reaped by a sampled parent is lost)."""
    ticks = 0
    for pid, (start, t) in after.items():
        b = before.get(pid)
        ticks += t - (b[1] if b and b[0] == start else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_gone(procs, timeout):
    """Waits until every (pid, starttime) is gone; SIGKILLs (by pid) what is left.
    Returns the pids that had to be killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p, s) for p, s in procs):
        time.sleep(0.05)
    killed = []
    for p, s in procs:
        if alive(p, s):
            killed.append(p)
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p, s) for p, s in procs):
        time.sleep(0.05)
    left = [p for p, s in procs if alive(p, s)]
    if left:
        raise BenchError("processes still running after SIGKILL: %s" % left)
    return killed


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_banner(port, timeout, what, proc_alive=lambda: True):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not proc_alive():
            raise BenchError("%s exited during start-up" % what)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                r = Reader(s)
                code, _ = r.reply()
                if code == 220:
                    s.sendall(b"QUIT\r\n")
                    return
                last = "greeting %d" % code
        except (OSError, EOFError) as e:
            last = str(e)
        time.sleep(0.05)
    raise BenchError("%s did not answer on 127.0.0.1:%d (%s)" % (what, port, last))


# --------------------------------------------------------------------------
# the load generator


class Reader:
    def __init__(self, sock):
        self.s = sock
        self.buf = bytearray()

    def reply(self):
        """One whole (possibly multi-line) reply: (code, text)."""
        lines = []
        while True:
            i = self.buf.find(b"\r\n")
            while i < 0:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError("connection closed after %r" % (lines,))
                self.buf += chunk
                i = self.buf.find(b"\r\n")
            line = bytes(self.buf[:i])
            del self.buf[:i + 2]
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    raise BenchError("bad reply line %r" % line)
                return code, b"\n".join(lines).decode(errors="replace")


FILLER = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" * 2)[:76]


def message_bytes(idx, rcpt, size, run_tag):
    """Exactly `size` octets of message (headers, blank line, body; CRLF line
    ends, lines of at most 78 octets, none starting with a dot). The
    end-of-data line is not part of it."""
    head = ("Return-Path: <%s>\r\nFrom: Bench <%s>\r\nTo: <%s>\r\nSubject: bench message %d\r\n"
            "Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <%s.%d@client.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (SENDER, SENDER, rcpt, idx, run_tag, idx))
    remaining = size - len(head)
    if remaining < 2:
        raise BenchError("--size %d is too small (headers alone take %d octets)" % (size, len(head)))
    full, rest = divmod(remaining, 78)
    if full and rest:  # the last 78 + rest octets as two lines of at least 39
        full -= 1
        rest += 78
        tail_lines = [rest // 2, rest - rest // 2]
    elif rest:
        tail_lines = [rest]
    else:
        tail_lines = []
    body = (FILLER + "\r\n") * full + "".join("x" * (n - 2) + "\r\n" for n in tail_lines)
    data = (head + body).encode()
    assert len(data) == size, (len(data), size)
    return data


class Drive:
    """Delivers messages idx in [first, first+count) over `connections`
    connections, connection c taking first+c, first+c+N, …; message idx goes to
    account idx % accounts. Every connection pipelines MAIL+RCPT+DATA in one
    write, waits for the three replies, then sends the body and the end-of-data
    line and times from that line to the final reply."""

    def __init__(self, port, protocol, connections, first, count, size, accounts, run_tag,
                 timeout=120):
        self.port, self.protocol = port, protocol
        self.connections, self.first, self.count = connections, first, count
        self.size, self.accounts, self.run_tag = size, accounts, run_tag
        self.timeout = timeout
        self.latencies = [[] for _ in range(connections)]
        self.errors = []
        self.lock = threading.Lock()

    def error(self, text):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(text)

    def worker(self, c, ready, go, done):
        lat = self.latencies[c]
        sock = None
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            r = Reader(sock)
            code, text = r.reply()
            if code != 220:
                raise BenchError("greeting: %s" % text)
            sock.sendall(b"LHLO bench-client.test\r\n" if self.protocol == "lmtp"
                         else b"EHLO bench-client.test\r\n")
            code, text = r.reply()
            if code != 250:
                raise BenchError("hello: %s" % text)
            if "PIPELINING" not in text.upper():
                raise BenchError("server does not offer PIPELINING: %s" % text)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            self.error("connection %d setup: %s" % (c, e))
            ready.release()
            done.release()
            if sock:
                sock.close()
            return
        ready.release()
        go.wait()
        perf = time.perf_counter
        sendall = sock.sendall
        try:
            for idx in range(self.first + c, self.first + self.count, self.connections):
                rcpt = "user%03d@%s" % (idx % self.accounts, DOMAIN)
                body = message_bytes(idx, rcpt, self.size, self.run_tag)
                sendall(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, rcpt)).encode())
                for want in (250, 250, 354):
                    code, text = r.reply()
                    if code != want:
                        raise BenchError("message %d: expected %d, got %s" % (idx, want, text))
                sendall(body)
                t0 = perf()
                sendall(b".\r\n")
                code, text = r.reply()
                t1 = perf()
                if code != 250:
                    raise BenchError("message %d after DATA: %s" % (idx, text))
                lat.append(t1 - t0)
            sendall(b"QUIT\r\n")
            try:
                r.reply()
            except (OSError, EOFError):
                pass
        except Exception as e:  # noqa: BLE001
            self.error("connection %d: %s" % (c, e))
        finally:
            sock.close()
            done.release()

    def run(self):
        """Returns (wall seconds from go to the last reply, sorted latencies, the
        load generator's cpu seconds meanwhile, the perf_counter() at go)."""
        ready = threading.Semaphore(0)
        done = threading.Semaphore(0)
        go = threading.Event()
        threads = [threading.Thread(target=self.worker, args=(c, ready, go, done), daemon=True)
                   for c in range(self.connections)]
        for t in threads:
            t.start()
        for _ in threads:
            ready.acquire()
        cpu0 = os.times()
        t0 = time.perf_counter()
        go.set()
        for _ in threads:
            done.acquire()
        wall = time.perf_counter() - t0
        cpu1 = os.times()
        for t in threads:
            t.join()
        lat = sorted(x for per in self.latencies for x in per)
        cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        return wall, lat, cpu, t0


def expected_per_account(total, accounts):
    return [total // accounts + (1 if a < total % accounts else 0) for a in range(accounts)]


def count_maildir(path):
    n = 0
    for sub in ("new", "cur"):
        try:
            with os.scandir(os.path.join(path, sub)) as it:
                for e in it:
                    if not e.name.startswith("."):
                        n += 1
        except FileNotFoundError:
            pass
    return n


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


class CpuSampler:
    """Whole-machine CPU use between start() and stop(), from /proc/stat."""

    @staticmethod
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle, iowait = v[3], v[4]
        return sum(v[:8]), idle, iowait

    def start(self):
        self.a = self.read()

    def stop(self):
        b = self.read()
        total = max(1, b[0] - self.a[0])
        return {"busy": 100.0 * (total - (b[1] - self.a[1]) - (b[2] - self.a[2])) / total,
                "iowait": 100.0 * (b[2] - self.a[2]) / total}


# --------------------------------------------------------------------------
# peers


def accounts_list(n):
    return ["user%03d" % a for a in range(n)]


class HamailPeer:
    def __init__(self, name, workdir, args, fsync=True):
        self.name = name
        self.protocol = "smtp" if name == "hamail-smtp" else "lmtp"
        self.dir = workdir
        self.args = args
        self.fsync = fsync
        self.binary = args.hamail_backend
        self.data_dir = os.path.join(workdir, "data")
        self.runtime_dir = os.path.join(workdir, "run")
        self.log_path = os.path.join(workdir, "backend.log")
        self.proc = None
        self.port = None
        self.maildirs = {}

    def start(self):
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise BenchError("hamail-backend not found at %s (build it, or pass --hamail-backend "
                             "or HAMAIL_BACKEND)" % self.binary)
        accounts = os.path.join(self.dir, "accounts.toml")
        with open(accounts, "w") as f:
            for a in accounts_list(self.args.accounts):
                f.write('[[account]]\nid = "%s"\naddress = "%s@%s"\nstore = "bench"\n\n' % (a, a, DOMAIN))
        config = os.path.join(self.dir, "backend.toml")
        extra = {}
        for item in self.args.hamail_option:
            key, _, value = item.partition("=")
            section, _, name = key.partition(".")
            extra.setdefault(section, []).append("%s = %s\n" % (name, value))
        with open(config, "w") as f:
            f.write('[store]\nname = "bench"\ndata_dir = "%s"\nhostname = "mx.%s"\n'
                    'runtime_dir = "%s"\nfsync = %s\n%s\n'
                    % (self.data_dir, DOMAIN, self.runtime_dir, "true" if self.fsync else "false",
                       "".join(extra.pop("store", []))))
            f.write('[directory]\ntype = "file"\naccounts_file = "%s"\n\n' % accounts)
            f.write('[log]\nlevel = "info"\n%s\n' % "".join(extra.pop("log", [])))
            for section, lines in extra.items():
                f.write("[%s]\n%s\n" % (section, "".join(lines)))
            for name in ("smtp", "lmtp"):
                f.write('[[listener]]\nname = "%s"\nprotocol = "%s"\naddress = "127.0.0.1"\n'
                        'port = 0\ntls = "none"\n\n' % (name, name))
        listeners = os.path.join(self.runtime_dir, "listeners")
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "--config", config], stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        self.starttime = proc_starttime(self.proc.pid)[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("hamail-backend exited with %d:\n%s" % (self.proc.returncode, tail(self.log_path)))
            if os.path.exists(listeners):
                with open(listeners) as f:
                    ports = {line.split()[0]: int(line.split()[3]) for line in f if line.strip()}
                if self.protocol in ports:
                    self.port = ports[self.protocol]
                    break
            time.sleep(0.02)
        else:
            raise BenchError("hamail-backend did not start:\n" + tail(self.log_path))
        wait_banner(self.port, 10, "hamail-backend", lambda: self.proc.poll() is None)

    def server_pids(self):
        return [self.proc.pid] if self.proc else []

    def count(self):
        out = []
        for a in accounts_list(self.args.accounts):
            if a not in self.maildirs:
                found = glob.glob(os.path.join(self.data_dir, "accounts", "*", a))
                if found:
                    self.maildirs[a] = found[0]
            out.append(count_maildir(self.maildirs[a]) if a in self.maildirs else 0)
        return out

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
        if self.proc.poll() is None:
            self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        if killed:
            raise BenchError("hamail-backend did not stop on SIGTERM; killed")
        if rc != 0:
            log("hamail-backend exited with %s" % rc)

    def versions(self):
        try:
            v = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
            built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.stat(self.binary).st_mtime))
        except OSError:
            return "hamail-backend not found at %s" % self.binary
        tree = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
                              text=True).stdout.strip() or "?"
        return "%s (%s, built %s); this repository at run time: %s" % (v, self.binary, built, tree)


def dovecot_version():
    try:
        return subprocess.run(["dovecot", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return None


def postfix_version():
    try:
        return subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except OSError:
        return None


class DovecotPeer:
    """`dovecot -F -c <conf>`: its own base_dir, state_dir, log and instance
    name; LMTP only, on 127.0.0.1:<free port>; Maildir under the temp dir owned
    by the Debian user `mail`; mail_fsync = always."""

    def __init__(self, workdir, args):
        self.name = "dovecot-lmtp"
        self.protocol = "lmtp"
        self.dir = workdir
        self.args = args
        self.mail_root = os.path.join(workdir, "mail")
        self.log_path = os.path.join(workdir, "dovecot.log")
        self.proc = None
        self.port = None

    def start(self):
        if os.geteuid() != 0:
            raise BenchError("Dovecot needs root (it drops to users dovecot/dovenull/mail)")
        if not shutil.which("dovecot"):
            raise BenchError("dovecot not installed (apt-get install dovecot-core dovecot-lmtpd)")
        import pwd
        try:
            mail = pwd.getpwnam("mail")
            for user in ("dovecot", "dovenull"):
                pwd.getpwnam(user)
        except KeyError as e:
            raise BenchError("missing system user %s (Debian's dovecot-core creates dovecot/dovenull)" % e)
        self.port = free_port()
        os.makedirs(self.mail_root)
        os.chown(self.mail_root, mail.pw_uid, mail.pw_gid)
        os.chmod(self.mail_root, 0o700)
        users = os.path.join(self.dir, "users")
        with open(users, "w") as f:
            for a in accounts_list(self.args.accounts):
                f.write("%s@%s:{PLAIN}bench::::::\n" % (a, DOMAIN))
        os.chmod(users, 0o644)
        self.instance = "hamail-bench-%d" % os.getpid()
        conf = os.path.join(self.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("""# written by tests/bench/delivery_bench.py
base_dir = {d}/run
state_dir = {d}/state
instance_name = {inst}
log_path = {log}
info_log_path = {log}
protocols = lmtp
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{mail}/%u/Maildir
mail_fsync = always
lmtp_save_to_detail_mailbox = no
hostname = mx.{domain}
postmaster_address = postmaster@{domain}
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  process_min_avail = {procs}
}}
""".format(d=self.dir, inst=self.instance, log=self.log_path, uid=mail.pw_uid, gid=mail.pw_gid,
           mail=self.mail_root, domain=DOMAIN, users=users, port=self.port,
           procs=min(self.args.connections, 100)))
        os.makedirs(os.path.join(self.dir, "run"))
        os.makedirs(os.path.join(self.dir, "state"))
        out = open(os.path.join(self.dir, "dovecot.stderr"), "ab")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", conf], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.starttime = proc_starttime(self.proc.pid)[1]
        try:
            wait_banner(self.port, 30, "dovecot", lambda: self.proc.poll() is None)
        except BenchError as e:
            raise BenchError("%s\n%s\n%s" % (e, tail(os.path.join(self.dir, "dovecot.stderr")),
                                             tail(self.log_path)))

    def server_pids(self):
        return [p for p, _ in descendants(self.proc.pid)] + [self.proc.pid] if self.proc else []

    def count(self):
        return [count_maildir(os.path.join(self.mail_root, "%s@%s" % (a, DOMAIN), "Maildir"))
                for a in accounts_list(self.args.accounts)]

    def stop(self):
        if self.proc is None:
            return
        procs = [(self.proc.pid, self.starttime)] + descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        killed = wait_gone(procs, 10)
        if self.proc.poll() is None:
            self.proc.wait()
        self.proc = None
        if killed:
            raise BenchError("dovecot processes %s did not stop on SIGTERM; killed by pid" % killed)


MASTER_CF = """# written by tests/bench/delivery_bench.py: no chroot anywhere
{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixDovecotPeer:
    """A separate Postfix instance (its own config_directory, queue_directory,
    data_directory; `postfix -c DIR start/stop`) whose smtpd listens on
    127.0.0.1:<free port> and whose virtual_transport is LMTP to a Dovecot
    instance (DovecotPeer) on loopback. Latency is to Postfix's 250 (queued,
    fsynced by cleanup); the end-to-end rate is until Dovecot holds them all."""

    def __init__(self, workdir, args):
        self.name = "postfix-dovecot"
        self.protocol = "smtp"
        self.dir = workdir
        self.args = args
        self.dovecot = DovecotPeer(os.path.join(workdir, "dovecot"), args)
        self.pdir = os.path.join(workdir, "postfix")
        self.etc = os.path.join(self.pdir, "etc")
        self.spool = os.path.join(self.pdir, "spool")
        self.log_path = os.path.join(self.pdir, "maillog")
        self.master = None
        self.port = None

    def postfix(self, *cmd, check=True):
        p = subprocess.run(["postfix", "-c", self.etc] + list(cmd), capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise BenchError("postfix -c %s %s failed (%d): %s%s\n%s" % (
                self.etc, " ".join(cmd), p.returncode, p.stdout, p.stderr, tail(self.log_path)))
        return p

    def start(self):
        if os.geteuid() != 0:
            raise BenchError("Postfix needs root")
        if not shutil.which("postfix"):
            raise BenchError("postfix not installed (apt-get install postfix)")
        os.makedirs(self.dovecot.dir)
        os.chmod(self.dovecot.dir, 0o755)
        self.dovecot.start()
        self.port = free_port()
        for d in (self.etc, self.spool):
            os.makedirs(d)
        os.chmod(self.pdir, 0o755)
        vmap = os.path.join(self.etc, "vmailbox")
        with open(vmap, "w") as f:
            for a in accounts_list(self.args.accounts):
                f.write("%s@%s %s/\n" % (a, DOMAIN, a))
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("""# written by tests/bench/delivery_bench.py
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {pdir}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.{domain}
mydomain = {domain}
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = {domain}
virtual_mailbox_maps = texthash:{vmap}
virtual_transport = lmtp:inet:[127.0.0.1]:{lmtp}
biff = no
append_dot_mydomain = no
readme_directory = no
smtpd_banner = $myhostname ESMTP
maillog_file = {log}
maillog_file_prefixes = {pdir}
""".format(spool=self.spool, pdir=self.pdir, domain=DOMAIN, vmap=vmap, lmtp=self.dovecot.port,
           log=self.log_path))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port="127.0.0.1:%d" % self.port))
        self.postfix("check")
        self.postfix("start")
        pidfile = os.path.join(self.spool, "pid", "master.pid")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
                if alive(pid):
                    self.master = (pid, proc_starttime(pid)[1])
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        else:
            raise BenchError("postfix master did not write %s\n%s" % (pidfile, tail(self.log_path)))
        wait_banner(self.port, 30, "postfix smtpd", lambda: alive(*self.master))

    def server_pids(self):
        if not self.master:
            return []
        return ([self.master[0]] + [p for p, _ in descendants(self.master[0])]
                + self.dovecot.server_pids())

    def count(self):
        return self.dovecot.count()

    def stop(self):
        problems = []
        if self.master:
            procs = [self.master] + descendants(self.master[0])
            p = self.postfix("stop", check=False)
            if p.returncode != 0:
                log("postfix stop: %s%s" % (p.stdout, p.stderr))
                os.kill(self.master[0], signal.SIGTERM)
            try:
                killed = wait_gone(procs, 30)
                if killed:
                    problems.append("postfix processes %s did not stop; killed by pid" % killed)
            except BenchError as e:
                problems.append(str(e))
            self.master = None
        try:
            self.dovecot.stop()
        except BenchError as e:
            problems.append(str(e))
        if problems:
            raise BenchError("; ".join(problems))


def tail(path, n=4000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def make_peer(name, workdir, args):
    if name in ("hamail-lmtp", "hamail-smtp"):
        return HamailPeer(name, workdir, args)
    if name == "hamail-lmtp-nofsync":
        p = HamailPeer("hamail-lmtp", workdir, args, fsync=False)
        p.name = name
        return p
    if name == "dovecot-lmtp":
        return DovecotPeer(workdir, args)
    if name == "postfix-dovecot":
        return PostfixDovecotPeer(workdir, args)
    raise BenchError("unknown peer %s" % name)


# --------------------------------------------------------------------------
# strace: fsync-family syscalls per message (a separate, slower mode)


def parse_strace_summary(path):
    calls = {}
    for line in open(path, errors="replace"):
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
        if m:
            calls[m.group(2)] = int(m.group(1))
    return calls


class Strace:
    """strace attached (by pid) to a peer's processes for the measured phase.
    mode "count": `strace -f -c` (syscall totals); mode "timeline": `strace -f
    -tt -T` of the open and sync calls, to see what is synced, how long each
    sync takes and how many run at the same time."""

    TIMELINE_CALLS = "open,openat,fsync,fdatasync,sync_file_range,syncfs"

    def __init__(self, pids, out, mode):
        self.out, self.mode = out, mode
        args = ["strace", "-f", "-o", out] + (["-c"] if mode == "count" else
                                               ["-tt", "-T", "-e", "trace=" + self.TIMELINE_CALLS])
        for p in pids:
            args += ["-p", str(p)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        time.sleep(1.0)  # attaching takes a moment
        if self.proc.poll() is not None:
            raise BenchError("strace failed: %s" % self.proc.stderr.read().decode(errors="replace"))

    def stop(self):
        """Detaches; returns {syscall: calls} (count) or the tid -> tgid map of
        the traced threads, read while they still exist (timeline)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.mode == "count":
            return parse_strace_summary(self.out)
        tgid = {}
        with open(self.out, errors="replace") as f:
            for line in f:
                tid = int(line.split(None, 1)[0])
                if tid not in tgid:
                    try:
                        with open("/proc/%d/status" % tid) as st:
                            tgid[tid] = int(next(x for x in st if x.startswith("Tgid:")).split()[1])
                    except (OSError, StopIteration):
                        tgid[tid] = tid
        fds = {}  # what long-lived descriptors point at, for syncs of files opened before the trace
        for proc in set(tgid.values()):
            try:
                for fd in os.listdir("/proc/%d/fd" % proc):
                    try:
                        fds[(proc, int(fd))] = os.readlink("/proc/%d/fd/%s" % (proc, fd))
                    except OSError:
                        pass
            except OSError:
                pass
        return tgid, fds


LINE_RE = re.compile(r"^(\d+)\s+(\d+):(\d+):([\d.]+)\s+(.*)$")


def sync_timeline(path, traced, messages):
    """Reads a `strace -f -tt -T` file: for every kind of file synced (message
    file, directory, index or other file by name), the syncs per message, their
    median duration, how many threads/processes issued them and how many ran
    at the same time at most."""
    pending, events = {}, []
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE_RE.match(line.rstrip("\n"))
            if not m:
                continue
            tid = int(m.group(1))
            t = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
            rest = m.group(5)
            if rest.endswith("<unfinished ...>"):
                pending[tid] = (t, rest[:-len("<unfinished ...>")])
                continue
            if rest.startswith("<..."):
                if tid not in pending:
                    continue
                t, head = pending.pop(tid)
                rest = head + rest[rest.index("resumed>") + len("resumed>"):]
            d = re.search(r"<([\d.]+)>$", rest)
            events.append((t, tid, rest, float(d.group(1)) if d else 0.0))
    events.sort()
    tgid, open_fds = traced
    fdpath, kinds = {}, {}
    for t, tid, call, dur in events:
        name = call.split("(", 1)[0]
        proc = tgid.get(tid, tid)
        if name in ("open", "openat"):
            m = re.search(r'"((?:[^"\\]|\\.)*)".*=\s+(\d+)\s', call)
            if m:
                fdpath[(proc, int(m.group(2)))] = m.group(1)
        elif name in ("fsync", "fdatasync", "sync_file_range", "syncfs"):
            m = re.match(r"\w+\((\d+)", call)
            key = (proc, int(m.group(1))) if m else None
            fpath = fdpath.get(key) or open_fds.get(key)
            if fpath is None:
                kind = "(unknown descriptor)"
            elif os.path.isdir(fpath):
                kind = "directory %s/" % os.path.basename(fpath.rstrip("/"))
            elif os.path.basename(os.path.dirname(fpath)) in ("tmp", "new", "cur"):
                kind = "message file"
            else:
                kind = re.sub(r"\.\d+$", "", os.path.basename(fpath))
            k = kinds.setdefault((name, kind), {"n": 0, "durs": [], "iv": [], "who": set()})
            k["n"] += 1
            k["durs"].append(dur)
            k["iv"].append((t, t + dur))
            k["who"].add(tid)
    rows = []
    for (name, kind), k in sorted(kinds.items(), key=lambda kv: -kv[1]["n"]):
        edges = sorted([(a, 1) for a, _ in k["iv"]] + [(b, -1) for _, b in k["iv"]])
        cur = most = 0
        for _, x in edges:
            cur += x
            most = max(most, cur)
        durs = sorted(k["durs"])
        rows.append({"call": name, "kind": kind, "per_message": k["n"] / messages,
                     "p50_ms": durs[len(durs) // 2] * 1000, "issuers": len(k["who"]),
                     "max_concurrent": most})
    all_iv = sorted(iv for k in kinds.values() for iv in k["iv"])
    busy, end = 0.0, None
    for a, b in all_iv:  # wall time with at least one sync in flight
        if end is None or a > end:
            busy += b - a
            end = b
        elif b > end:
            busy += b - end
            end = b
    span = (events[-1][0] - events[0][0]) if events else 0.0
    return {"rows": rows, "sync_busy_s": busy, "span_s": span}


# --------------------------------------------------------------------------
# one peer


def wait_idle(args):
    """Waits (at most --wait-idle seconds) for a 3-second window in which the
    machine's CPUs were busy less than --idle-below percent. Returns the busy
    percentage of the last window."""
    deadline = time.monotonic() + args.wait_idle
    while True:
        c = CpuSampler()
        c.start()
        time.sleep(3)
        busy = c.stop()["busy"]
        if busy < args.idle_below or time.monotonic() >= deadline:
            return busy
        log("machine %.0f%% busy; waiting for it to calm down" % busy)


def run_peer(name, args, root, run_no):
    workdir = os.path.join(root, "%s-%d" % (name, run_no))
    os.makedirs(workdir)
    os.chmod(workdir, 0o755)
    peer = make_peer(name, workdir, args)
    res = {"peer": name, "protocol": peer.protocol, "valid": False, "problems": [], "workdir": workdir}
    os.sync()
    try:
        log("%s: starting in %s" % (name, workdir))
        peer.start()
        tag = "r%d%s" % (run_no, name.replace("-", ""))
        warm = args.warmup
        if warm:
            d = Drive(peer.port, peer.protocol, args.connections, 0, warm, args.size, args.accounts, tag)
            _, _, _, _ = d.run()
            if d.errors:
                raise BenchError("warm-up failed: %s" % "; ".join(d.errors[:5]))
            if name == "postfix-dovecot":
                wait_delivered(peer, warm, args, "warm-up")
        os.sync()
        strace = None
        if (args.syscalls or args.sync_timeline) and name != "postfix-dovecot":
            strace = Strace(peer.server_pids(), os.path.join(workdir, "strace.txt"),
                            "count" if args.syscalls else "timeline")
        if args.wait_idle:
            res["busy_before"] = wait_idle(args)
            res["disturbed"] = res["busy_before"] >= args.idle_below
        log("%s: %d messages over %d connections" % (name, args.messages, args.connections))
        d = Drive(peer.port, peer.protocol, args.connections, warm, args.messages, args.size,
                  args.accounts, tag)
        cpu = CpuSampler()
        cpu.start()
        span0, self0 = time.perf_counter(), os.times()
        srv0 = cpu_ticks(peer.server_pids())
        wall, lat, client_cpu, t0 = d.run()
        e2e_wall = None
        if name == "postfix-dovecot" and not d.errors:
            wait_delivered(peer, warm + args.messages, args, "measured run")
            e2e_wall = time.perf_counter() - t0
        srv1 = cpu_ticks(peer.server_pids())
        self1, span = os.times(), time.perf_counter() - span0
        machine = cpu.stop()
        server_s = cpu_seconds_between(srv0, srv1)
        bench_s = (self1.user - self0.user) + (self1.system - self0.system)
        # CPU nobody in this run accounts for (other users' jobs, plus a little kernel work),
        # in % of one core: what tells a disturbed run.
        others = machine["busy"] * (os.cpu_count() or 1) - 100.0 * (server_s + bench_s) / span
        if strace and strace.mode == "count":
            res["syscalls"] = strace.stop()
        elif strace:
            res["timeline"] = sync_timeline(strace.out, strace.stop(), args.messages)
        res.update({
            "messages": args.messages, "wall": wall, "rate": args.messages / wall,
            "p50": percentile(lat, 50) * 1000, "p99": percentile(lat, 99) * 1000,
            "mean": (sum(lat) / len(lat) * 1000) if lat else float("nan"),
            "max": (lat[-1] * 1000) if lat else float("nan"),
            "replies": len(lat), "client_cpu": 100.0 * client_cpu / wall,
            "server_cpu_ms": 1000.0 * server_s / args.messages,
            "machine_busy": machine["busy"], "machine_iowait": machine["iowait"], "others_cpu": others,
        })
        if others > args.others_max:
            res["disturbed"] = True
        if e2e_wall is not None:
            res["accept_rate"] = res["rate"]
            res["e2e_wall"] = e2e_wall
            res["rate"] = args.messages / e2e_wall
        if d.errors:
            res["problems"] += d.errors[:10]
        if len(lat) != args.messages:
            res["problems"].append("%d of %d messages got a 250" % (len(lat), args.messages))
        # Exactly warm-up + measured messages must be in the Maildirs, per account.
        counts = peer.count()
        want = expected_per_account(warm + args.messages, args.accounts)
        total = sum(counts)
        res["stored"] = total
        res["expected"] = warm + args.messages
        if counts != want:
            wrong = [(accounts_list(args.accounts)[a], counts[a], want[a])
                     for a in range(args.accounts) if counts[a] != want[a]]
            res["problems"].append("stored %d messages, expected %d; %d accounts differ, e.g. %s"
                                   % (total, warm + args.messages, len(wrong), wrong[:3]))
        res["valid"] = not res["problems"]
    except BenchError as e:
        res["problems"].append(str(e))
    finally:
        try:
            peer.stop()
        except BenchError as e:
            res["problems"].append("stop: %s" % e)
            res["valid"] = False
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if res.get("syscalls") is not None and res.get("replies"):
        res["per_message"] = per_message(res["syscalls"], args.messages)
    return res


SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "syncfs", "msync")


def per_message(calls, messages):
    out = {k: calls[k] / messages for k in sorted(calls)}
    out["_sync_total"] = sum(calls.get(k, 0) for k in SYNC_CALLS) / messages
    out["_all"] = sum(calls.values()) / messages
    return out


def wait_delivered(peer, want, args, what):
    """Polls the Maildirs until `want` messages are there; gives up after
    --drain-timeout seconds without progress."""
    last, last_change = -1, time.monotonic()
    while True:
        n = sum(peer.count())
        if n >= want:
            if n > want:
                raise BenchError("%s: %d messages stored, more than the %d sent" % (what, n, want))
            return
        if n != last:
            last, last_change = n, time.monotonic()
        elif time.monotonic() - last_change > args.drain_timeout:
            raise BenchError("%s: only %d of %d messages reached the Maildirs (no progress for %ds)"
                             % (what, n, want, args.drain_timeout))
        time.sleep(0.1)


# --------------------------------------------------------------------------
# report


def machine_facts(root):
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS", "--target", root],
                        capture_output=True, text=True).stdout.strip() or "?"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
        "fs": fs, "data_dir": root, "loadavg": open("/proc/loadavg").read().split()[:3],
        "python": platform.python_version(),
    }


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def report(args, facts, results, versions):
    out = []
    w = out.append
    w("")
    w("hamail delivery benchmark  %s" % facts["date"])
    w("command:  %s" % " ".join(["python3", "tests/bench/delivery_bench.py"] + sys.argv[1:]))
    w("machine:  %s, %d cores, kernel %s, load average at start %s" % (
        facts["cpu"], facts["cores"], facts["kernel"], " ".join(facts["loadavg"])))
    w("data dir: %s on %s (same filesystem for every peer)" % (facts["data_dir"], facts["fs"]))
    w("hamail:   %s" % versions.get("hamail", "-"))
    if args.hamail_option:
        w("          extra settings: %s" % ", ".join(args.hamail_option))
    w("peers:    Dovecot %s; Postfix %s; load generator Python %s" % (
        versions.get("dovecot") or "not installed", versions.get("postfix") or "not installed",
        facts["python"]))
    w("load:     %d connections, %d messages of %d octets, %d accounts, %d warm-up messages, %d round(s)"
      % (args.connections, args.messages, args.size, args.accounts, args.warmup, args.rounds))
    w("")
    hdr = "%-20s %-5s %9s %9s %8s %8s %8s %8s %8s %7s %7s  %s" % (
        "peer", "proto", "msgs/s", "accept/s", "p50 ms", "p99 ms", "max ms", "srv cpu", "cli cpu", "busy",
        "others", "verdict")
    w(hdr)
    w("-" * len(hdr))
    for r in results:
        if "rate" not in r:
            w("%-20s %-5s %9s %9s %8s %8s %8s %8s %8s %7s %7s  %s" % (
                r["peer"], r["protocol"], "-", "-", "-", "-", "-", "-", "-", "-", "-", "FAILED"))
            continue
        w("%-20s %-5s %9.0f %9s %8.2f %8.2f %8.1f %8.3f %7.0f%% %6.0f%% %6.0f%%  %s" % (
            r["peer"] + ("" if args.rounds == 1 else " #%d" % r["round"]), r["protocol"], r["rate"],
            ("%.0f" % r["accept_rate"]) if "accept_rate" in r else "-", r["p50"], r["p99"], r["max"],
            r["server_cpu_ms"], r["client_cpu"], r["machine_busy"], r.get("others_cpu", float("nan")),
            ("ok" if r["valid"] else "INVALID") + (" (disturbed)" if r.get("disturbed") else "")))
    w("")
    w("msgs/s: measured messages / seconds from the first MAIL to the last 250 (postfix-dovecot: until")
    w("Dovecot's Maildirs held them all; accept/s is to Postfix's queued 250). Latency: end-of-data")
    w("dot to 250. srv cpu: CPU ms per message used by the peer's processes (user+system). cli cpu:")
    w("the load generator's CPU (% of one core). busy: the whole machine's CPU busy. others: CPU")
    w("used by processes outside this run (% of one core; ~10-25% is kernel work of the run itself).")
    w("disturbed: started on a busy machine or others > %.0f%%; left out of the ratios." % args.others_max)
    waits = ["%s %.0f%%" % (r["peer"], r["busy_before"]) for r in results if "busy_before" in r]
    if waits:
        w("machine CPU busy in the 3 s before each measured phase: %s" % ", ".join(waits))
    for r in results:
        for p in r["problems"]:
            w("PROBLEM %s: %s" % (r["peer"], p))
    # ratios over valid results (median of rounds)
    best, disturbed = {}, {}
    for r in results:
        if r["valid"]:
            (disturbed if r.get("disturbed") else best).setdefault(r["peer"], []).append(r)
    for peer, runs in disturbed.items():
        if peer not in best:
            best[peer] = runs
            w("NOTE %s: every valid run was disturbed; its ratios use them anyway" % peer)
        else:
            w("NOTE %s: %d disturbed run(s) left out of the ratios" % (peer, len(runs)))
    rate = {k: median([x["rate"] for x in v]) for k, v in best.items()}
    acc = {k: median([x["accept_rate"] for x in v]) for k, v in best.items() if "accept_rate" in v[0]}
    w("")
    traced = args.syscalls or args.sync_timeline
    w("ratios (msgs/s%s%s):" % ("" if args.rounds == 1 else ", medians over rounds",
                               "; UNDER STRACE, NOT RESULTS" if traced else ""))

    def ratio(a, b, label, ra=rate, rb=rate):
        if a in ra and b in rb:
            w("  %-52s %6.2fx" % (label, ra[a] / rb[b]))
        else:
            w("  %-52s   n/a (%s)" % (label, "missing a valid %s run" % (a if a not in ra else b)))

    ratio("hamail-lmtp", "dovecot-lmtp", "hamail LMTP / Dovecot LMTP")
    ratio("hamail-smtp", "postfix-dovecot", "hamail SMTP / Postfix->Dovecot (end-to-end)")
    ratio("hamail-smtp", "postfix-dovecot", "hamail SMTP / Postfix->Dovecot (Postfix accept)", rb=acc)
    ratio("hamail-lmtp", "postfix-dovecot", "hamail LMTP / Postfix->Dovecot (end-to-end)")
    if args.rounds > 1:
        per_round = []
        for rnd in range(1, args.rounds + 1):
            a = [r for r in results if r.get("round") == rnd and r["peer"] == "hamail-lmtp" and r["valid"]]
            b = [r for r in results if r.get("round") == rnd and r["peer"] == "dovecot-lmtp" and r["valid"]]
            if a and b:
                per_round.append("#%d %.2fx%s" % (rnd, a[0]["rate"] / b[0]["rate"],
                                                  " (disturbed)" if a[0].get("disturbed") or b[0].get("disturbed")
                                                  else ""))
        if per_round:
            w("  %-52s %s" % ("hamail LMTP / Dovecot LMTP per round", ", ".join(per_round)))
    if "hamail-lmtp" in rate and "dovecot-lmtp" in rate and not traced:
        x = rate["hamail-lmtp"] / rate["dovecot-lmtp"]
        w("  target hamail LMTP >= 2x Dovecot LMTP at %d connections: %s (%.2fx)"
          % (args.connections, "MET" if x >= 2.0 else "NOT MET", x))
    if any("per_message" in r for r in results):
        w("")
        w("syscalls per message under strace -f -c (throughput figures of this run are NOT results):")
        keys = ["_sync_total", "fsync", "fdatasync", "sync_file_range", "rename", "renameat2", "link",
                "linkat", "openat", "write", "writev", "pwrite64", "read", "futex", "_all"]
        w("  %-14s" % "syscall" + "".join("%16s" % r["peer"] for r in results if "per_message" in r))
        for k in keys:
            vals = [r["per_message"].get(k, 0.0) for r in results if "per_message" in r]
            if any(vals):
                w("  %-14s" % k.strip("_").replace("sync_total", "all syncs") + "".join("%16.2f" % v for v in vals))
    for r in results:
        tl = r.get("timeline")
        if not tl:
            continue
        w("")
        w("%s: syncs under strace -f -tt -T (%.1f s traced; at least one sync in flight %.0f%% of it)"
          % (r["peer"], tl["span_s"], 100.0 * tl["sync_busy_s"] / tl["span_s"] if tl["span_s"] else 0))
        w("  %-10s %-30s %9s %9s %9s %14s" % ("call", "file synced", "per msg", "p50 ms", "issuers",
                                              "max at once"))
        for row in tl["rows"]:
            w("  %-10s %-30s %9.2f %9.2f %9d %14d" % (row["call"], row["kind"][:30], row["per_message"],
                                                      row["p50_ms"], row["issuers"], row["max_concurrent"]))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--messages", type=int, default=20000, help="measured messages per peer")
    ap.add_argument("--size", type=int, default=4096, help="message size in octets")
    ap.add_argument("--accounts", type=int, default=100, help="recipients are spread over this many")
    ap.add_argument("--warmup", type=int, default=None,
                    help="messages delivered (and verified) before measuring; default 25 per connection")
    ap.add_argument("--only", default="all",
                    help="peers or groups, comma separated: %s, or groups %s; opt-in calibration: %s"
                         % (", ".join(ALL_PEERS), ", ".join(GROUPS), ", ".join(CALIBRATION)))
    ap.add_argument("--rounds", type=int, default=1, help="repeat the whole set, interleaved")
    ap.add_argument("--hamail-backend", default=os.environ.get(
        "HAMAIL_BACKEND", os.path.join(REPO, "build/release/daemons/backend/hamail-backend")))
    ap.add_argument("--tmpdir", default=None, help="where the peers' temp dirs go (default: $TMPDIR or /tmp)")
    ap.add_argument("--drain-timeout", type=int, default=120,
                    help="postfix-dovecot: give up after this many seconds without progress")
    ap.add_argument("--syscalls", action="store_true",
                    help="attach strace -f -c to hamail/Dovecot during the measured run and print "
                         "syscalls per message (slows them down: its rates are not results)")
    ap.add_argument("--hamail-option", action="append", default=[], metavar="SECTION.KEY=TOML",
                    help="extra hamail-backend setting, e.g. store.blocking_threads=16 (repeatable; "
                         "for experiments: the headline figures use the defaults)")
    ap.add_argument("--wait-idle", type=int, default=0, metavar="SECONDS",
                    help="before each measured phase wait up to SECONDS for the machine to be idle")
    ap.add_argument("--idle-below", type=float, default=30.0, metavar="PCT",
                    help="with --wait-idle: idle means CPU busy below PCT over 3 s (default 30)")
    ap.add_argument("--sync-timeline", action="store_true",
                    help="attach strace -f -tt -T (open and sync calls only) to hamail/Dovecot during "
                         "the measured run and print, per kind of file synced, syncs per message, "
                         "median duration and how many ran concurrently (rates are not results)")
    ap.add_argument("--others-max", type=float, default=35.0, metavar="PCT",
                    help="a run during which processes outside the run used more than PCT%% of one "
                         "core is marked disturbed and left out of the ratios (default 35)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs")
    args = ap.parse_args()
    if args.warmup is None:
        args.warmup = 25 * args.connections
    if args.connections < 1 or args.messages < args.connections or args.accounts < 1:
        ap.error("need connections >= 1, messages >= connections, accounts >= 1")
    if args.syscalls and args.sync_timeline:
        ap.error("--syscalls and --sync-timeline attach strace differently: use one at a time")
    if args.accounts > 1000:
        ap.error("at most 1000 accounts")
    peers = []
    for item in args.only.split(","):
        item = item.strip()
        for p in GROUPS.get(item, [item]):
            if p not in ALL_PEERS + CALIBRATION:
                ap.error("unknown peer %r" % p)
            if p not in peers:
                peers.append(p)
    args.hamail_backend = os.path.abspath(args.hamail_backend)

    root = tempfile.mkdtemp(prefix="hamail-bench-", dir=args.tmpdir)
    os.chmod(root, 0o755)  # Dovecot and Postfix drop privileges and must traverse it
    facts = machine_facts(root)
    versions = {"dovecot": dovecot_version(), "postfix": postfix_version()}
    if any(p.startswith("hamail") for p in peers):
        versions["hamail"] = HamailPeer("hamail-lmtp", root, args).versions() or "hamail ?"
    results = []
    interrupted = False
    try:
        for rnd in range(1, args.rounds + 1):
            for p in peers:
                r = run_peer(p, args, root, rnd)
                r["round"] = rnd
                results.append(r)
                if "rate" in r:
                    log("%s: %.0f msgs/s, p50 %.2f ms, p99 %.2f ms, %s" % (
                        p, r["rate"], r["p50"], r["p99"], "ok" if r["valid"] else "INVALID"))
                else:
                    log("%s: FAILED: %s" % (p, "; ".join(r["problems"])))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log("kept %s" % root)
    text = report(args, facts, results, versions)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"facts": facts, "versions": versions, "args": vars(args), "results": results}, f,
                      indent=1, default=str)
    if interrupted:
        return 130
    return 0 if results and all(r["valid"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
